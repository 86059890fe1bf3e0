package postgres

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

// HoldParams are the settings of one hold attempt, chosen outside the
// transaction so every rerun uses the same values.
type HoldParams struct {
	HoldID     string
	Now        time.Time
	ExpiresAt  time.Time
	MaxTickets int
	// Seed spreads best-available choices of concurrent buyers.
	Seed uint64
}

// maxCollisions bounds how often one hold request picks best-available
// seats again after another buyer took some of them first.
const maxCollisions = 8

// errCollision means another buyer took a chosen seat between the choice
// and the update; the caller chooses again.
var errCollision = errors.New("chosen seats taken by another buyer")

// CreateHold reserves seats for a session in one serializable transaction:
// all of them or none. The places count against the fan account req.Fan,
// which must be set. A retry with the same idempotency key returns the hold
// the first call made.
//
// Best-available seats are chosen from a READ COMMITTED snapshot before the
// transaction, and the transaction only updates the chosen rows by primary
// key, checking that they are still AVAILABLE. A scan inside a SERIALIZABLE
// transaction would leave PostgreSQL predicate locks on the whole section,
// and every other buyer of that section would then abort at commit although
// they wanted different seats. This way a retry happens when two buyers
// really chose the same seat.
func (db *DB) CreateHold(ctx context.Context, req waitroom.HoldRequest, p HoldParams) (*waitroom.Hold, error) {
	if req.Fan == "" {
		return nil, fmt.Errorf("create hold: missing fan account for session %s", req.Session)
	}
	seed := p.Seed
	for attempt := 0; ; attempt++ {
		ids := req.SeatIDs
		var view *seatView
		if len(ids) == 0 {
			var err error
			if ids, view, err = db.chooseBest(ctx, req, 4<<(2*attempt), seed); err != nil {
				if waitroom.ErrorCode(err) == waitroom.ESOLDOUT {
					// A retry of a request that already made its hold
					// finds nothing left, so return that hold.
					if h, ferr := db.holdByKey(ctx, req.Session, req.IdempotencyKey); ferr == nil && h != nil {
						return h, nil
					}
				}
				return nil, fmt.Errorf("create hold: %w", err)
			}
		}
		h, err := db.takeHold(ctx, req, ids, p)
		view.settle(ids, err == nil)
		if errors.Is(err, errCollision) && len(req.SeatIDs) == 0 && attempt < maxCollisions {
			db.collisions.Add(1)
			seed = seed*6364136223846793005 + 1442695040888963407
			continue
		}
		if errors.Is(err, errCollision) {
			db.collisions.Add(1)
			err = waitroom.ErrSeatTaken
		}
		if err != nil {
			return nil, fmt.Errorf("create hold: %w", err)
		}
		return h, nil
	}
}

// chooseBest picks best-available seats in the requested section, or in
// the sections of the requested price tier nearest the stage first, from
// the section's seat view (see seatView). It returns the view the seats
// came from, to be settled once the hold is made or failed.
func (db *DB) chooseBest(ctx context.Context, req waitroom.HoldRequest, spread int, seed uint64) ([]string, *seatView, error) {
	// Reads are single READ COMMITTED statements on the pool: the seats are
	// checked again, by primary key, in the hold's transaction.
	sections := []string{req.Section}
	if req.Tier != "" {
		var err error
		if sections, err = tierSections(ctx, db.Pool, req.SaleID, req.Tier, seed); err != nil {
			return nil, nil, err
		}
	}
	rng := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	for _, section := range sections {
		ids, view, err := db.pickBest(ctx, req.SaleID, section, req.Quantity, spread, req.AllowSplit, rng)
		if waitroom.ErrorCode(err) == waitroom.ESOLDOUT {
			continue
		}
		return ids, view, err
	}
	return nil, nil, waitroom.ErrSoldOut
}

// tierSections lists the sections of a price tier nearest the stage first;
// sections of equal rank come in a random order, so buyers of one tier
// spread over them.
func tierSections(ctx context.Context, tx querier, saleID, tier string, seed uint64) ([]string, error) {
	rows, err := tx.Query(ctx, `SELECT id, rank FROM sections WHERE sale_id = $1 AND tier_id = $2 ORDER BY rank`, saleID, tier)
	if err != nil {
		return nil, fmt.Errorf("find sections of tier: %w", err)
	}
	type ranked struct {
		id   string
		rank int
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ranked, error) {
		var x ranked
		err := r.Scan(&x.id, &x.rank)
		return x, err
	})
	if err != nil {
		return nil, fmt.Errorf("find sections of tier: %w", err)
	}
	if len(list) == 0 {
		return nil, waitroom.Errorf(waitroom.ENOTFOUND, "no price tier %q in this show", tier)
	}
	rng := rand.New(rand.NewPCG(seed, 17))
	rng.Shuffle(len(list), func(i, j int) { list[i], list[j] = list[j], list[i] })
	sort.SliceStable(list, func(i, j int) bool { return list[i].rank < list[j].rank })
	ids := make([]string, len(list))
	for i, x := range list {
		ids[i] = x.id
	}
	return ids, nil
}

func (db *DB) holdByKey(ctx context.Context, session, key string) (*waitroom.Hold, error) {
	return holdByIdemKey(ctx, db.Pool, session, key)
}

// errKeyUsed means a hold with the request's idempotency key was committed
// by a concurrent request.
var errKeyUsed = errors.New("idempotency key already used")

// takeHold moves the chosen seats to HELD and records the hold, in one
// serializable transaction whose statements go to the server as one
// pipelined batch. A unique index enforces the idempotency key inside the
// transaction. The key is looked up only when the transaction fails, so a
// retried request gets the hold that its first attempt made: its seats then
// look taken, its fan at the limit, or its key used.
func (db *DB) takeHold(ctx context.Context, req waitroom.HoldRequest, ids []string, p HoldParams) (*waitroom.Hold, error) {
	limit, err := db.racyLimitCheck(ctx, req.SaleID, req.Fan, len(ids), p.MaxTickets)
	if err != nil {
		return nil, err
	}
	var seats []waitroom.Seat
	err = db.groupTx(ctx, func(b *pgx.Batch) {
		queueTakeHold(b, req, ids, p, limit)
	}, func(br pgx.BatchResults) error {
		var err error
		seats, err = readTaken(br)
		return err
	})
	switch {
	case constraint(err) == "fan_tickets_within_limit":
		err = db.limitError(ctx, req.SaleID, req.Fan, limit)
	case constraint(err) == "holds_seats_complete":
		err = errCollision
	case SQLState(err) == "23505":
		err = errKeyUsed
	}
	if errors.Is(err, errKeyUsed) || errors.Is(err, errCollision) || waitroom.ErrorCode(err) == waitroom.ECONFLICT {
		// A request with this key may have committed before, such as one
		// whose COMMIT outcome was unknown, or a retry after a lost reply.
		// Its hold is returned. Other errors, such as an unknown COMMIT
		// outcome, are returned as they are.
		if h, ferr := db.holdByKey(ctx, req.Session, req.IdempotencyKey); ferr == nil && h != nil {
			return h, nil
		}
	}
	if err != nil {
		return nil, err
	}
	if len(seats) != len(ids) {
		// holds_seats_complete makes this impossible.
		return nil, fmt.Errorf("hold %s committed with %d of %d seats", p.HoldID, len(seats), len(ids))
	}
	h := &waitroom.Hold{ID: p.HoldID, SaleID: req.SaleID, Session: req.Session, Fan: req.Fan, State: waitroom.HoldHeld,
		Seats: seats, ExpiresAt: p.ExpiresAt}
	for _, s := range seats {
		h.TotalCents += s.PriceCents
	}
	return h, nil
}

// queueTakeHold adds the hold transaction's statement to a batch: one
// statement that counts the fan's places, takes the seats, and records the
// hold, its deadline and its pending payment. The payment is recorded this
// early because this transaction writes and flushes anyway, while a
// payment recorded by checkout or by the pay request would cost one more
// flush per sale. Every rule is enforced by the statement itself,
// because the COMMIT goes in the same round trip (see pipeTx):
//   - the count row's check (fan_tickets_within_limit) refuses places over
//     the limit;
//   - the hold's seat count is counted from the seats this statement took,
//     so a seat another buyer took first fails holds_seats_complete;
//   - the hold's fan is the count row's, so a hold is never made without
//     its count;
//   - the unique index on (session, idem_key) refuses a second hold for one
//     key.
//
// The count row is the fan account's own, created by the fan's first hold,
// so only requests of the same fan contend on it, from any of its
// sessions. Because the check and the increment are one statement in the
// serializable transaction, two sessions of one fan cannot both pass the
// limit. The upsert reads no index range, so it adds no predicate lock that
// other fans' first holds could conflict with: in the sale benchmark, where
// every buyer is a new fan, reruns stayed at about 0.02 per sale.
func queueTakeHold(b *pgx.Batch, req waitroom.HoldRequest, ids []string, p HoldParams, limit int) {
	fanCTE, fan := ``, `$4::TEXT`
	args := []any{p.HoldID, req.SaleID, req.Session, req.Fan, req.IdempotencyKey, ids, p.ExpiresAt, p.Now}
	if limit > 0 {
		fanCTE = `fan AS (
			INSERT INTO fan_tickets (sale_id, fan, tickets, max_tickets) VALUES ($2, $4, $9, $10)
			ON CONFLICT (sale_id, fan) DO UPDATE SET tickets = fan_tickets.tickets + EXCLUDED.tickets, max_tickets = EXCLUDED.max_tickets
			RETURNING fan
		), `
		fan = `(SELECT fan FROM fan)`
		args = append(args, len(ids), limit)
	}
	b.Queue(`WITH `+fanCTE+`taken AS (
			UPDATE seats SET state = 'HELD', hold_id = $1 WHERE sale_id = $2 AND id = ANY($6) AND state = 'AVAILABLE'
			RETURNING id, section_id, row_label, number, price_cents, row_no
		), hold AS (
			INSERT INTO holds (id, sale_id, session, fan, idem_key, state, total_cents, seat_count, seat_ids, expires_at, created_at, updated_at)
			SELECT $1, $2, $3, `+fan+`, $5, 'HELD', coalesce(sum(price_cents), 0), count(*), $6, $7, $8, $8 FROM taken
			RETURNING id, expires_at, total_cents
		), deadline AS (
			INSERT INTO hold_deadlines (hold_id, expires_at) SELECT id, expires_at FROM hold
		), payment AS (
			INSERT INTO payments (id, hold_id, state, amount_cents, created_at, updated_at)
			SELECT 'p_' || id, id, 'pending', total_cents, $8, $8 FROM hold
		)
		SELECT id, section_id, row_label, number, price_cents, row_no FROM taken`, args...)
}

// readTaken reads the result of queueTakeHold's statement: the seats taken.
func readTaken(br pgx.BatchResults) ([]waitroom.Seat, error) {
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("take seats: %w", err)
	}
	return collectTaken(rows)
}

// limitError explains a hold refused by the ticket limit, with the places
// the fan has now.
func (db *DB) limitError(ctx context.Context, saleID, fan string, limit int) error {
	var have int
	err := db.Pool.QueryRow(ctx, `SELECT tickets FROM fan_tickets WHERE sale_id = $1 AND fan = $2`, saleID, fan).Scan(&have)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return fmt.Errorf("read ticket count of fan %s after the limit rejected a hold: %w", fan, err)
	}
	return waitroom.Errorf(waitroom.ECONFLICT, "ticket limit is %d per fan for this show; you have %d", limit, have)
}

func holdByIdemKey(ctx context.Context, tx querier, session, key string) (*waitroom.Hold, error) {
	var id string
	err := tx.QueryRow(ctx, `SELECT id FROM holds WHERE session = $1 AND idem_key = $2`, session, key).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find hold by idempotency key: %w", err)
	}
	return loadHold(ctx, tx, id)
}

// uncountTickets gives back the places of a hold that ended without a sale,
// or whose order was cancelled, to the fan account the hold counted against.
func uncountTickets(ctx context.Context, tx pgx.Tx, h *waitroom.Hold) error {
	_, err := tx.Exec(ctx, `UPDATE fan_tickets SET tickets = tickets - $3 WHERE sale_id = $1 AND fan = $2 AND tickets >= $3`,
		h.SaleID, h.Fan, len(h.Seats))
	if err != nil {
		return fmt.Errorf("give back tickets: %w", err)
	}
	return nil
}

// collectTaken reads the seats that the hold's UPDATE moved from AVAILABLE
// to HELD.
func collectTaken(rows pgx.Rows) ([]waitroom.Seat, error) {
	type placed struct {
		seat waitroom.Seat
		row  int
	}
	list, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (placed, error) {
		var p placed
		err := r.Scan(&p.seat.ID, &p.seat.Section, &p.seat.Row, &p.seat.Number, &p.seat.PriceCents, &p.row)
		return p, err
	})
	if err != nil {
		return nil, fmt.Errorf("take seats: %w", err)
	}
	// RETURNING has no order; list seats as every later read does.
	sort.Slice(list, func(i, j int) bool {
		a, b := list[i], list[j]
		if a.seat.Section != b.seat.Section {
			return a.seat.Section < b.seat.Section
		}
		if a.row != b.row {
			return a.row < b.row
		}
		return a.seat.Number < b.seat.Number
	})
	seats := make([]waitroom.Seat, len(list))
	for i, p := range list {
		seats[i] = p.seat
	}
	return seats, nil
}

func scanSeat(r pgx.CollectableRow) (waitroom.Seat, error) {
	var s waitroom.Seat
	err := r.Scan(&s.ID, &s.Section, &s.Row, &s.Number, &s.PriceCents)
	return s, err
}

func loadHold(ctx context.Context, tx querier, id string) (*waitroom.Hold, error) {
	// The hold row and its seats go as one batch, one round trip. The seat
	// query takes the hold's sale and seat list from subqueries, so it
	// reads seats by primary key like the two separate queries would.
	b := &pgx.Batch{}
	queueHold(b, id, true)
	br := tx.SendBatch(ctx, b)
	h, err := readHold(br, id, true)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("load hold: %w", cerr)
	}
	return h, err
}

// queueHold adds the queries of a hold to a batch, with its seats when
// seats is true; readHold reads them.
func queueHold(b *pgx.Batch, id string, seats bool) {
	b.Queue(`SELECT sale_id, session, fan, state, total_cents, expires_at, order_id FROM holds WHERE id = $1`, id)
	if seats {
		b.Queue(`SELECT id, section_id, row_label, number, price_cents FROM seats
			WHERE sale_id = (SELECT sale_id FROM holds WHERE id = $1)
			AND id = ANY((SELECT seat_ids FROM holds WHERE id = $1)::TEXT[]) AND hold_id = $1
			ORDER BY section_id, row_no, number`, id)
	}
}

func readHold(br pgx.BatchResults, id string, seats bool) (*waitroom.Hold, error) {
	h := &waitroom.Hold{ID: id}
	var orderID *string
	err := br.QueryRow().Scan(&h.SaleID, &h.Session, &h.Fan, &h.State, &h.TotalCents, &h.ExpiresAt, &orderID)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, waitroom.Errorf(waitroom.ENOTFOUND, "no hold %q", id)
	}
	if err != nil {
		return nil, fmt.Errorf("load hold: %w", err)
	}
	if orderID != nil {
		h.OrderID = *orderID
	}
	if !seats {
		return h, nil
	}
	// Seats of a released hold are no longer linked to it; its seat list is
	// then empty.
	rows, err := br.Query()
	if err != nil {
		return nil, fmt.Errorf("load hold seats: %w", err)
	}
	if h.Seats, err = pgx.CollectRows(rows, scanSeat); err != nil {
		return nil, fmt.Errorf("load hold seats: %w", err)
	}
	return h, nil
}

// linkedSeats returns those of seatIDs still linked to holdID, by primary
// key, in seat order.
func linkedSeats(ctx context.Context, tx querier, saleID, holdID string, seatIDs []string) ([]waitroom.Seat, error) {
	rows, err := tx.Query(ctx, `SELECT id, section_id, row_label, number, price_cents FROM seats
		WHERE sale_id = $1 AND id = ANY($2) AND hold_id = $3 ORDER BY section_id, row_no, number`, saleID, seatIDs, holdID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, scanSeat)
}

// seatIDs returns the ids of a hold's seats.
func seatIDs(h *waitroom.Hold) []string {
	ids := make([]string, len(h.Seats))
	for i, s := range h.Seats {
		ids[i] = s.ID
	}
	return ids
}

// ownedHold loads a hold and checks that it belongs to session; a hold of
// another session reads as not found, so ids cannot be probed.
func ownedHold(ctx context.Context, tx querier, id, session string) (*waitroom.Hold, error) {
	h, err := loadHold(ctx, tx, id)
	if err != nil {
		return nil, err
	}
	if h.Session != session {
		return nil, waitroom.Errorf(waitroom.ENOTFOUND, "no hold %q", id)
	}
	return h, nil
}

// CheckoutHold moves a held cart into payment, with a new expiry. Calling it
// again on a hold in checkout returns the hold unchanged. lowerDeadline is
// true when expires may come before the cart's own expiry (checkout time
// shorter than cart time), so the sweeper's deadline must move down first.
func (db *DB) CheckoutHold(ctx context.Context, holdID, session string, now, expires time.Time, lowerDeadline bool) (*waitroom.Hold, error) {
	if lowerDeadline {
		// Keep the sweeper's deadline a lower bound of the hold's expiry.
		// Done first and in READ COMMITTED: an early deadline only makes
		// the sweeper look again sooner. A later expiry needs nothing: the
		// sweeper finds it at the old deadline and moves the deadline on.
		err := db.execReadCommitted(ctx, `UPDATE hold_deadlines SET expires_at = LEAST(expires_at, $2) WHERE hold_id = $1`, holdID, expires)
		if err != nil {
			return nil, fmt.Errorf("checkout hold %s: lower deadline: %w", holdID, err)
		}
	}
	h, err := db.checkoutHeld(ctx, holdID, session, now, expires)
	if err != nil || h != nil {
		return h, err
	}
	// The hold was not a live cart of session. Return it when it is already
	// in checkout, or an error that explains why not. A hold never goes back
	// to HELD, so a snapshot read decides.
	h, err = ownedHold(ctx, db.Pool, holdID, session)
	switch {
	case err != nil:
	case h.State == waitroom.HoldCheckout:
		return h, nil
	case h.State == waitroom.HoldHeld:
		err = waitroom.ErrHoldExpired
	default:
		err = waitroom.Errorf(waitroom.ECONFLICT, "hold is %s and cannot go to checkout", h.State)
	}
	return nil, fmt.Errorf("checkout hold %s: %w", holdID, err)
}

// checkoutHeld moves a live cart of session to checkout in one pipelined
// transaction (see pipeTx) and returns it. It returns nil when the hold is
// not a live cart of session, because both statements then change nothing.
// The seats move first, so the hold's update can count them, and a hold
// whose seats did not all move fails holds_seats_complete.
//
// The checkout is remembered with its payment (checkoutCache), so paying it
// needs no round trip before the provider is charged. At expiry the sweeper
// finds the payment and asks the provider before it releases the seats.
func (db *DB) checkoutHeld(ctx context.Context, holdID, session string, now, expires time.Time) (*waitroom.Hold, error) {
	const live = `id = $1 AND session = $2 AND state = 'HELD' AND expires_at > $3`
	var seats []waitroom.Seat
	var h *waitroom.Hold
	var amount int64

	// The hold's transaction recorded its pending payment. After the COMMIT,
	// in the same round trip and in READ COMMITTED, the payment is read, or
	// recorded for a hold made before holds recorded it. That write stays
	// out of the serializable transaction: there it would make concurrent
	// checkouts and sales abort each other on the payments index pages. A
	// payment that exists already costs no WAL flush here.
	record := &then{
		queue: func(b *pgx.Batch) {
			b.Queue(`WITH made AS (
					INSERT INTO payments (id, hold_id, state, amount_cents, created_at, updated_at)
					SELECT $1, id, 'pending', total_cents, $3, $3 FROM holds WHERE id = $2 AND state = 'CHECKOUT'
					ON CONFLICT (id) DO NOTHING RETURNING amount_cents
				)
				SELECT amount_cents FROM made
				UNION ALL SELECT amount_cents FROM payments WHERE id = $1 AND state = 'pending'`, PaymentID(holdID), holdID, now)
		},
		read: func(br pgx.BatchResults) error { return br.QueryRow().Scan(&amount) },
	}

	err := db.groupTxThen(ctx, func(b *pgx.Batch) {
		b.Queue(`UPDATE seats SET state = 'CHECKOUT'
			WHERE sale_id = (SELECT sale_id FROM holds WHERE `+live+`)
			AND id = ANY((SELECT seat_ids FROM holds WHERE `+live+`)::TEXT[]) AND hold_id = $1 AND state = 'HELD'
			RETURNING id, section_id, row_label, number, price_cents, row_no`, holdID, session, now)
		b.Queue(`UPDATE holds SET state = 'CHECKOUT', expires_at = $4, updated_at = $3,
			seat_count = (SELECT count(*) FROM seats s WHERE s.sale_id = holds.sale_id AND s.id = ANY(holds.seat_ids)
				AND s.hold_id = holds.id AND s.state = 'CHECKOUT')
			WHERE `+live+` RETURNING sale_id, fan, total_cents`, holdID, session, now, expires)
	}, func(br pgx.BatchResults) error {
		h, seats = nil, nil
		rows, err := br.Query()
		if err != nil {
			return fmt.Errorf("update seats: %w", err)
		}
		if seats, err = collectTaken(rows); err != nil {
			return err
		}
		x := &waitroom.Hold{ID: holdID, Session: session, State: waitroom.HoldCheckout, ExpiresAt: expires}
		err = br.QueryRow().Scan(&x.SaleID, &x.Fan, &x.TotalCents)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("update hold: %w", err)
		}
		h = x
		return nil
	}, record)
	if err != nil {
		return nil, fmt.Errorf("checkout hold %s: %w", holdID, err)
	}
	if h == nil {
		return nil, nil
	}

	h.Seats = seats
	if record.err == nil {
		pay := &waitroom.Payment{ID: PaymentID(holdID), HoldID: holdID, State: waitroom.PaymentPending, AmountCents: amount, UpdatedAt: now}
		hold := *h
		db.checkouts.put(&Started{Payment: pay, Hold: &hold})
	} else if !errors.Is(record.err, pgx.ErrNoRows) {
		// BeginPayment records it when the fan pays.
		db.log.Warn("checkout made without its payment record", logkey.HoldID, holdID, logkey.Err, record.err)
	}
	return h, nil
}

// ReleaseHold gives a hold's seats back. Only a held cart can be released by
// its fan; a hold in checkout ends through its payment or its expiry.
func (db *DB) ReleaseHold(ctx context.Context, holdID, session string, now time.Time) (*waitroom.Hold, error) {
	var out *waitroom.Hold
	err := db.InTx(ctx, func(tx pgx.Tx) error {
		h, err := ownedHold(ctx, tx, holdID, session)
		if err != nil {
			return err
		}
		switch h.State {
		case waitroom.HoldReleased, waitroom.HoldExpired:
			out = h
			return nil
		case waitroom.HoldHeld:
		default:
			return waitroom.Errorf(waitroom.ECONFLICT, "hold is %s and cannot be released", h.State)
		}
		if err := freeSeats(ctx, tx, h, waitroom.HoldReleased, now); err != nil {
			return err
		}
		out, err = loadHold(ctx, tx, holdID)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("release hold %s: %w", holdID, err)
	}
	return out, nil
}

// freeSeats returns a live hold's seats to AVAILABLE, gives the fan's
// ticket count back, and sets the hold's final state.
func freeSeats(ctx context.Context, tx pgx.Tx, h *waitroom.Hold, state string, now time.Time) error {
	if h.State == waitroom.HoldHeld {
		// A cart ends before checkout: its payment was never charged.
		if _, err := tx.Exec(ctx, `UPDATE payments SET state = 'void', updated_at = $2 WHERE id = $1 AND state = 'pending'`,
			PaymentID(h.ID), now); err != nil {
			return fmt.Errorf("void payment: %w", err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE seats SET state = 'AVAILABLE', hold_id = NULL WHERE sale_id = $1 AND id = ANY($2) AND hold_id = $3 AND state <> 'SOLD'`,
		h.SaleID, seatIDs(h), h.ID); err != nil {
		return fmt.Errorf("free seats: %w", err)
	}
	if err := uncountTickets(ctx, tx, h); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE holds SET state = $2, updated_at = $3 WHERE id = $1`, h.ID, state, now); err != nil {
		return fmt.Errorf("update hold: %w", err)
	}
	return addEvent(ctx, tx, wire.InventoryEvent{ID: "released:" + h.ID, Kind: wire.EventReleased, SaleID: h.SaleID,
		HoldID: h.ID, Seats: seatIDs(h), Reason: state, At: now})
}

// FindHoldByID returns a hold of session.
func (db *DB) FindHoldByID(ctx context.Context, holdID, session string) (*waitroom.Hold, error) {
	var out *waitroom.Hold
	err := db.ReadTx(ctx, func(tx pgx.Tx) error {
		var err error
		out, err = ownedHold(ctx, tx, holdID, session)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("find hold %s: %w", holdID, err)
	}
	return out, nil
}
