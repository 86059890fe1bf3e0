package coreapp

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"sort"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/taquilla/taquilla/core/admission"
	"github.com/taquilla/taquilla/shared/natsq"
	"github.com/taquilla/taquilla/shared/queue"
	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

// SeedBucket is the KV bucket where the core keeps the shuffle seeds it
// committed to until it reveals them. Only core replicas may read it: a
// seed known before the opening would let someone pick sessions that sort
// first.
const SeedBucket = "TAQ_SHUFFLE_SEEDS"

// MaxCodesPerRequest bounds the access codes of one codes request, so its
// stream message stays under the size limit.
const MaxCodesPerRequest = 500

func (c *Core) seeds(ctx context.Context) (jetstream.KeyValue, error) {
	kv, err := c.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket:      SeedBucket,
		Description: "Taquilla shuffle seeds, secret until each opening",
		Storage:     jetstream.FileStorage,
		Replicas:    max(c.cfg.Stream.Replicas, 1),
	})
	if err != nil {
		return nil, fmt.Errorf("seed bucket: %w", err)
	}
	return kv, nil
}

func seedKey(saleID, commitment string) string { return saleID + "." + commitment }

// seed returns the seed behind a commitment; it is an admission.SeedFunc.
func (c *Core) seed(ctx context.Context, saleID, commitment string) (string, error) {
	kv, err := c.seeds(ctx)
	if err != nil {
		return "", err
	}
	e, err := kv.Get(ctx, seedKey(saleID, commitment))
	if err != nil {
		return "", fmt.Errorf("seed of %s: %w", commitment, err)
	}
	return string(e.Value()), nil
}

// Schedule sets a sale's opening time. The first schedule of a round draws
// a secret seed, keeps it in the seed bucket and publishes its commitment;
// a later one only moves the time. Fans who join until the opening wait in
// the pre-queue.
func (c *Core) Schedule(ctx context.Context, saleID string, at time.Time, by string) error {
	f := c.Follower(saleID)
	if f == nil {
		return notFound(saleID)
	}
	now := time.Now()
	if !at.After(now) || at.After(now.AddDate(1, 0, 0)) {
		return waitroom.Errorf(waitroom.EINVALID, "the opening must be in the future and within a year, got %s", at.Format(time.RFC3339))
	}
	var commitment string
	var scheduled bool
	f.Do(func(st *queue.State) { _, commitment, scheduled = st.Scheduled() })
	if !scheduled {
		seed := make([]byte, 32)
		if _, err := rand.Read(seed); err != nil {
			return fmt.Errorf("draw seed: %w", err)
		}
		commitment = queue.Commitment(seed)
		kv, err := c.seeds(ctx)
		if err != nil {
			return err
		}
		if _, err := kv.Create(ctx, seedKey(saleID, commitment), []byte(hex.EncodeToString(seed))); err != nil {
			return fmt.Errorf("store seed: %w", err)
		}
	}
	m := wire.QueueMsg{Kind: wire.KindSchedule, OpensAt: at.UTC(), Commitment: commitment, By: by}
	ack, err := natsq.Publish(ctx, c.js, saleID, m, "")
	if err != nil {
		return err
	}
	return f.WaitFor(ctx, ack.Sequence)
}

// Open opens a scheduled sale now and reveals its seed.
func (c *Core) Open(ctx context.Context, saleID, by string) error {
	f := c.Follower(saleID)
	if f == nil {
		return notFound(saleID)
	}
	var commitment string
	var scheduled bool
	f.Do(func(st *queue.State) { _, commitment, scheduled = st.Scheduled() })
	if !scheduled {
		return waitroom.Errorf(waitroom.EINVALID, "sale %q has no scheduled opening; it is open already", saleID)
	}
	seed, err := c.seed(ctx, saleID, commitment)
	if err != nil {
		return err
	}
	return admission.Open(ctx, c.js, f, commitment, seed, by)
}

// SetLane sets the share of a lane, adding the lane if it is new. The
// shares of all lanes but the general one may add up to 100 at most; the
// general lane gets the rest.
func (c *Core) SetLane(ctx context.Context, saleID, lane string, share int, by string) error {
	f := c.Follower(saleID)
	if f == nil {
		return notFound(saleID)
	}
	if !wire.ValidLaneName(lane) || lane == wire.DefaultLane {
		return waitroom.Errorf(waitroom.EINVALID, "lane names are 1 to 24 lowercase letters, digits and '-', and %q gets the rest of the shares", wire.DefaultLane)
	}
	if share < 0 || share > 100 {
		return waitroom.Errorf(waitroom.EINVALID, "a share is 0 to 100 percent, got %d", share)
	}
	var shares map[string]int
	f.Do(func(st *queue.State) { shares = st.Shares() })
	delete(shares, wire.DefaultLane)
	shares[lane] = share
	sum := 0
	lanes := make([]wire.LaneConfig, 0, len(shares))
	for n, v := range shares {
		sum += v
		lanes = append(lanes, wire.LaneConfig{Name: n, Share: v})
	}
	if sum > 100 {
		return waitroom.Errorf(waitroom.EINVALID, "the lanes' shares would add up to %d%%; lower another lane first", sum)
	}
	sort.Slice(lanes, func(i, j int) bool { return lanes[i].Name < lanes[j].Name })
	ack, err := natsq.Publish(ctx, c.js, saleID, wire.QueueMsg{Kind: wire.KindLanes, Lanes: lanes, By: by}, "")
	if err != nil {
		return err
	}
	return f.WaitFor(ctx, ack.Sequence)
}

// AddCodes adds hashed access codes (wire.CodeHash) to a lane, each valid
// for uses joins. A code added again gets the new number of uses.
func (c *Core) AddCodes(ctx context.Context, saleID, lane string, hashes []string, uses int, by string) error {
	f := c.Follower(saleID)
	if f == nil {
		return notFound(saleID)
	}
	var shares map[string]int
	f.Do(func(st *queue.State) { shares = st.Shares() })
	if _, ok := shares[lane]; !ok || lane == wire.DefaultLane {
		return waitroom.Errorf(waitroom.EINVALID, "no lane %q in sale %q; add it with taquilla ctl lane first", lane, saleID)
	}
	if uses < 1 || uses > 1_000_000 {
		return waitroom.Errorf(waitroom.EINVALID, "uses per code is 1 to 1000000, got %d", uses)
	}
	if len(hashes) == 0 || len(hashes) > MaxCodesPerRequest {
		return waitroom.Errorf(waitroom.EINVALID, "send 1 to %d codes per request, got %d", MaxCodesPerRequest, len(hashes))
	}
	codes := make([]wire.AccessCode, len(hashes))
	for i, h := range hashes {
		if b, err := hex.DecodeString(h); err != nil || len(b) != 32 {
			return waitroom.Errorf(waitroom.EINVALID, "code %d is not a hex SHA-256 hash", i+1)
		}
		codes[i] = wire.AccessCode{Hash: h, Lane: lane, Uses: uses}
	}
	ack, err := natsq.Publish(ctx, c.js, saleID, wire.QueueMsg{Kind: wire.KindCodes, Codes: codes, By: by}, "")
	if err != nil {
		return err
	}
	return f.WaitFor(ctx, ack.Sequence)
}

func notFound(saleID string) error {
	return waitroom.Errorf(waitroom.ENOTFOUND, "sale %q not found; taquilla ctl sales lists the sales", saleID)
}
