// Package botfilter makes automated joins expensive and flags requests that
// no browser sends. It does no I/O and reads no clock: callers pass now.
//
// The proof of work is stateless for the issuer: a challenge carries its own
// difficulty and expiry under an HMAC-SHA256 tag, so any edge that holds the
// key can verify it. Only the set of spent challenges is local state, kept
// until the challenges expire.
package botfilter

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"hash"
	"strings"
	"time"

	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

// Limits of the proof of work.
const (
	// MaxDifficulty is the highest difficulty, in leading zero bits, that
	// Issue emits and Verify accepts.
	MaxDifficulty = 32
	// MaxChallengeLen bounds a challenge string. Verify rejects longer ones
	// before decoding them. Issue emits ChallengeLen bytes.
	MaxChallengeLen = 256
	// MaxNonceLen is the maximum number of decimal digits in a nonce.
	MaxNonceLen = 20
)

// A challenge is base64url(payload) + "." + base64url(tag), unpadded, where
// payload is:
//
//	offset size
//	0      1    format version, 1
//	1      1    difficulty in leading zero bits
//	2      8    expiry, Unix milliseconds, big-endian
//	10     12   random bytes, so that every challenge is unique
//	22     8    first 8 bytes of SHA-256(sale)
//	30     8    first 8 bytes of SHA-256(clientKey)
//
// and tag is HMAC-SHA256(key, payload || len(sale) || sale || len(clientKey)
// || clientKey) with unsigned varint lengths. The tag binds the full sale
// and client key. The two short hashes in the payload only let Verify tell a
// wrong sale or client from a forged challenge.
const (
	challengeVersion = 1

	offDifficulty = 1
	offExpires    = 2
	offRandom     = 10
	offSaleHash   = 22
	offClientHash = 30
	payloadLen    = 38
	tagLen        = sha256.Size
)

var b64 = base64.RawURLEncoding.Strict()

// ChallengeLen is the length of every challenge string that Issue returns:
// the unpadded base64 lengths of the payload and the tag, and the dot.
const ChallengeLen = (payloadLen*8+5)/6 + 1 + (tagLen*8+5)/6

// Errors that Verify returns. Their messages are safe to show to the fan.
var (
	ErrChallengeMalformed   = &waitroom.Error{Code: waitroom.EINVALID, Message: "proof of work: challenge is malformed; fetch a new one"}
	ErrChallengeWrongSale   = &waitroom.Error{Code: waitroom.EINVALID, Message: "proof of work: challenge is for another sale; fetch a new one for this sale"}
	ErrChallengeOtherClient = &waitroom.Error{Code: waitroom.EUNAUTHORIZED, Message: "proof of work: challenge was issued to another network address; fetch a new one"}
	ErrChallengeSignature   = &waitroom.Error{Code: waitroom.EUNAUTHORIZED, Message: "proof of work: challenge signature is invalid; fetch a new one"}
	ErrChallengeExpired     = &waitroom.Error{Code: waitroom.EUNAUTHORIZED, Message: "proof of work: challenge expired; fetch a new one"}
	ErrDifficultyTooLow     = &waitroom.Error{Code: waitroom.EINVALID, Message: "proof of work: the required difficulty was raised; fetch a new challenge"}
	ErrNonceMalformed       = &waitroom.Error{Code: waitroom.EINVALID, Message: "proof of work: nonce must be 1 to 20 decimal digits"}
	ErrNonceWrong           = &waitroom.Error{Code: waitroom.EINVALID, Message: "proof of work: nonce does not solve the challenge"}
	ErrChallengeUsed        = &waitroom.Error{Code: waitroom.ECONFLICT, Message: "proof of work: challenge already used; fetch a new one"}
	ErrSpentSetFull         = &waitroom.Error{Code: waitroom.EUNAVAILABLE, Message: "proof of work: too many recent joins to check; retry in a few seconds"}
)

// PoW issues and verifies proof-of-work challenges bound to a sale and a
// client key. It is safe for concurrent use.
type PoW struct {
	key   []byte
	ttl   time.Duration
	spent spentSet
}

// NewPoW returns a PoW that signs challenges with key and issues them valid
// for ttl. The key should be at least 32 random bytes, and every edge that
// verifies the same sale's challenges needs the same key. NewPoW panics if
// key is empty or ttl is not positive, because either would make every
// challenge forgeable or expired.
func NewPoW(key []byte, ttl time.Duration) *PoW {
	if len(key) == 0 {
		panic("botfilter: NewPoW needs a non-empty key")
	}
	if ttl <= 0 {
		panic("botfilter: NewPoW needs a positive ttl, got " + ttl.String())
	}
	return &PoW{
		key:   append([]byte(nil), key...),
		ttl:   ttl,
		spent: newSpentSet(DefaultMaxSpent),
	}
}

// Issue returns a new challenge for sale and clientKey at difficulty leading
// zero bits, valid from now for the PoW's ttl. A difficulty outside
// 0..MaxDifficulty is clamped into that range.
func (p *PoW) Issue(sale, clientKey string, difficulty int, now time.Time) wire.Challenge {
	difficulty = min(max(difficulty, 0), MaxDifficulty)
	expires := now.Add(p.ttl).UnixMilli()

	var payload [payloadLen]byte
	payload[0] = challengeVersion
	payload[offDifficulty] = byte(difficulty)
	binary.BigEndian.PutUint64(payload[offExpires:], uint64(expires))
	_, _ = rand.Read(payload[offRandom:offSaleHash]) // crypto/rand.Read never returns an error since Go 1.24
	copy(payload[offSaleHash:], shortHash(sale))
	copy(payload[offClientHash:], shortHash(clientKey))

	tag := p.tag(payload[:], sale, clientKey)
	return wire.Challenge{
		Challenge:  b64.EncodeToString(payload[:]) + "." + b64.EncodeToString(tag),
		Difficulty: difficulty,
		ExpiresAt:  time.UnixMilli(expires).UTC(),
	}
}

// Verify checks that nonce solves challenge and that the challenge is
// genuine, unexpired, issued for sale and clientKey at a difficulty of at
// least minDifficulty, and not spent before. On success it marks the
// challenge spent until it expires.
//
// Every error is one of the Err* values of this package, with these codes:
//
//   - EINVALID: a malformed challenge or nonce, a wrong sale, a difficulty
//     below minDifficulty, or a nonce that does not solve the challenge.
//   - EUNAUTHORIZED: a bad signature, another client key, or an expired
//     challenge.
//   - ECONFLICT: the challenge was spent before.
//   - EUNAVAILABLE: the set of spent challenges is full. Retry later.
func (p *PoW) Verify(sale, clientKey, challenge, nonce string, minDifficulty int, now time.Time) error {
	payload, tag, ok := decodeChallenge(challenge)
	if !ok {
		return ErrChallengeMalformed
	}
	if !validNonce(nonce) {
		return ErrNonceMalformed
	}

	if !hmac.Equal(tag[:], p.tag(payload[:], sale, clientKey)) {
		return classifyTagMismatch(payload, sale, clientKey)
	}

	expires := int64(binary.BigEndian.Uint64(payload[offExpires:]))
	if now.UnixMilli() >= expires {
		return ErrChallengeExpired
	}
	difficulty := int(payload[offDifficulty])
	if difficulty < minDifficulty {
		return ErrDifficultyTooLow
	}
	if !solves(challenge, nonce, difficulty) {
		return ErrNonceWrong
	}

	// Every payload has 96 random bits, so the tag names one challenge, and
	// its first 128 bits are enough to tell challenges apart.
	var id spentID
	copy(id[:], tag[:])
	return p.spent.spend(id, expires, now.UnixMilli())
}

// tag returns the HMAC-SHA256 tag of payload bound to sale and clientKey.
func (p *PoW) tag(payload []byte, sale, clientKey string) []byte {
	mac := hmac.New(sha256.New, p.key)
	mac.Write(payload)
	writeLengthPrefixed(mac, sale)
	writeLengthPrefixed(mac, clientKey)
	return mac.Sum(nil)
}

func writeLengthPrefixed(h hash.Hash, s string) {
	var n [binary.MaxVarintLen64]byte
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(s)))])
	h.Write([]byte(s))
}

// classifyTagMismatch returns the error for a tag that did not verify.
// The short hashes are not signed on their own, but all three outcomes reject
// the challenge, so a forged hash can only change which error the forger gets.
func classifyTagMismatch(payload *[payloadLen]byte, sale, clientKey string) error {
	if string(payload[offSaleHash:offClientHash]) != string(shortHash(sale)) {
		return ErrChallengeWrongSale
	}
	if string(payload[offClientHash:payloadLen]) != string(shortHash(clientKey)) {
		return ErrChallengeOtherClient
	}
	return ErrChallengeSignature
}

func shortHash(s string) []byte {
	sum := sha256.Sum256([]byte(s))
	return sum[:8]
}

// decodeChallenge splits and decodes a challenge, and checks the fields that
// need no key: the version and the difficulty range.
func decodeChallenge(challenge string) (payload *[payloadLen]byte, tag *[tagLen]byte, ok bool) {
	if len(challenge) > MaxChallengeLen {
		return nil, nil, false
	}
	encodedPayload, encodedTag, found := strings.Cut(challenge, ".")
	if !found {
		return nil, nil, false
	}
	if b64.DecodedLen(len(encodedPayload)) != payloadLen || b64.DecodedLen(len(encodedTag)) != tagLen {
		return nil, nil, false
	}

	payload, tag = new([payloadLen]byte), new([tagLen]byte)
	if _, err := b64.Decode(payload[:], []byte(encodedPayload)); err != nil {
		return nil, nil, false
	}
	if _, err := b64.Decode(tag[:], []byte(encodedTag)); err != nil {
		return nil, nil, false
	}
	if payload[0] != challengeVersion || payload[offDifficulty] > MaxDifficulty {
		return nil, nil, false
	}
	return payload, tag, true
}

func validNonce(nonce string) bool {
	if len(nonce) == 0 || len(nonce) > MaxNonceLen {
		return false
	}
	for i := range len(nonce) {
		if nonce[i] < '0' || nonce[i] > '9' {
			return false
		}
	}
	return true
}
