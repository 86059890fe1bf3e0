package botfilter_test

import (
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/taquilla/taquilla/edge/botfilter"
	"github.com/taquilla/taquilla/shared/waitroom"
)

var (
	t0      = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)
	testKey = []byte("0123456789abcdef0123456789abcdef")
)

const (
	testSale   = "rosalia-bcn-2026"
	testClient = "203.0.113.0/24"
	testTTL    = 5 * time.Minute
)

func newTestPoW() *botfilter.PoW {
	return botfilter.NewPoW(testKey, testTTL)
}

// mustVerify fails the test unless Verify accepts the solution.
func mustVerify(tb testing.TB, p *botfilter.PoW, challenge, nonce string, now time.Time) {
	tb.Helper()
	if err := p.Verify(testSale, testClient, challenge, nonce, 0, now); err != nil {
		tb.Fatalf("Verify(%q, %q) = %v, want nil", challenge, nonce, err)
	}
}

func TestPoW_Issue(t *testing.T) {
	p := newTestPoW()
	ch := p.Issue(testSale, testClient, 12, t0)

	if ch.Difficulty != 12 {
		t.Errorf("Difficulty = %d, want 12", ch.Difficulty)
	}
	if want := t0.Add(testTTL); !ch.ExpiresAt.Equal(want) {
		t.Errorf("ExpiresAt = %v, want %v", ch.ExpiresAt, want)
	}
	if len(ch.Challenge) != botfilter.ChallengeLen || len(ch.Challenge) > botfilter.MaxChallengeLen {
		t.Errorf("len(Challenge) = %d, want %d (at most %d)", len(ch.Challenge), botfilter.ChallengeLen, botfilter.MaxChallengeLen)
	}
	if escaped := url.QueryEscape(ch.Challenge); escaped != ch.Challenge {
		t.Errorf("Challenge %q needs escaping in a URL: %q", ch.Challenge, escaped)
	}
	if other := p.Issue(testSale, testClient, 12, t0); other.Challenge == ch.Challenge {
		t.Errorf("two Issue calls returned the same challenge %q", ch.Challenge)
	}
}

func TestPoW_Issue_longInputs(t *testing.T) {
	p := newTestPoW()
	long := strings.Repeat("x", 10_000)
	ch := p.Issue(long, long, 0, t0)
	if len(ch.Challenge) != botfilter.ChallengeLen {
		t.Errorf("len(Challenge) = %d for long inputs, want %d", len(ch.Challenge), botfilter.ChallengeLen)
	}
	if err := p.Verify(long, long, ch.Challenge, "0", 0, t0); err != nil {
		t.Errorf("Verify with long inputs = %v, want nil", err)
	}
}

func TestPoW_Issue_clampsDifficulty(t *testing.T) {
	p := newTestPoW()
	tests := []struct{ in, want int }{{-3, 0}, {0, 0}, {32, 32}, {40, 32}}
	for _, tt := range tests {
		if got := p.Issue(testSale, testClient, tt.in, t0).Difficulty; got != tt.want {
			t.Errorf("Issue(difficulty %d).Difficulty = %d, want %d", tt.in, got, tt.want)
		}
	}
}

// tamper returns challenge with one character of the given part replaced,
// keeping it valid base64url.
func tamper(challenge string, inTag bool) string {
	payload, tag, _ := strings.Cut(challenge, ".")
	flip := func(s string) string {
		b := []byte(s)
		if b[5] == 'A' {
			b[5] = 'B'
		} else {
			b[5] = 'A'
		}
		return string(b)
	}
	if inTag {
		return payload + "." + flip(tag)
	}
	return flip(payload) + "." + tag
}

// withPayloadByte returns challenge with payload byte i set to v. The tag
// no longer matches.
func withPayloadByte(challenge string, i int, v byte) string {
	encoded, tag, _ := strings.Cut(challenge, ".")
	payload, err := base64.RawURLEncoding.DecodeString(encoded)
	if err != nil {
		panic(err)
	}
	payload[i] = v
	return base64.RawURLEncoding.EncodeToString(payload) + "." + tag
}

// nonCanonical returns challenge with the unused low bits of the payload's
// last base64 character set, which decodes to the same bytes under a
// lenient decoder.
func nonCanonical(challenge string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	encoded, tag, _ := strings.Cut(challenge, ".")
	last := strings.IndexByte(alphabet, encoded[len(encoded)-1])
	return encoded[:len(encoded)-1] + string(alphabet[last|1]) + "." + tag
}

func TestPoW_Verify(t *testing.T) {
	p := newTestPoW()
	issue := func(difficulty int) string { return p.Issue(testSale, testClient, difficulty, t0).Challenge }
	ch8 := issue(8)
	nonce8 := botfilter.Solve(ch8, 8)
	zeroCh := issue(0)
	// A 300-byte challenge of valid base64url characters.
	tooLong := strings.Repeat("A", 200) + "." + strings.Repeat("A", 99)

	tests := []struct {
		name          string
		sale, client  string
		challenge     string
		nonce         string
		minDifficulty int
		now           time.Time
		want          *waitroom.Error
	}{
		{"ok", testSale, testClient, ch8, nonce8, 8, t0.Add(time.Minute), nil},
		{"difficulty_zero_accepts_0", testSale, testClient, zeroCh, "0", 0, t0, nil},
		{"wrong_sale", "other-sale", testClient, ch8, nonce8, 0, t0, botfilter.ErrChallengeWrongSale},
		{"other_client", testSale, "198.51.100.0/24", ch8, nonce8, 0, t0, botfilter.ErrChallengeOtherClient},
		{"expired", testSale, testClient, ch8, nonce8, 0, t0.Add(testTTL), botfilter.ErrChallengeExpired},
		{"tampered_tag", testSale, testClient, tamper(ch8, true), nonce8, 0, t0, botfilter.ErrChallengeSignature},
		{"tampered_payload", testSale, testClient, tamper(ch8, false), nonce8, 0, t0, botfilter.ErrChallengeSignature},
		{"other_key", testSale, testClient, botfilter.NewPoW([]byte("another key"), testTTL).Issue(testSale, testClient, 0, t0).Challenge, "0", 0, t0, botfilter.ErrChallengeSignature},
		{"difficulty_raised", testSale, testClient, ch8, nonce8, 9, t0, botfilter.ErrDifficultyTooLow},
		{"wrong_solution", testSale, testClient, issue(16), "0", 0, t0, botfilter.ErrNonceWrong},
		{"empty_nonce", testSale, testClient, zeroCh, "", 0, t0, botfilter.ErrNonceMalformed},
		{"nonce_21_digits", testSale, testClient, zeroCh, strings.Repeat("1", 21), 0, t0, botfilter.ErrNonceMalformed},
		{"nonce_negative", testSale, testClient, zeroCh, "-1", 0, t0, botfilter.ErrNonceMalformed},
		{"nonce_space", testSale, testClient, zeroCh, " 1", 0, t0, botfilter.ErrNonceMalformed},
		{"nonce_hex", testSale, testClient, zeroCh, "0x1f", 0, t0, botfilter.ErrNonceMalformed},
		{"nonce_unicode_digit", testSale, testClient, zeroCh, "١", 0, t0, botfilter.ErrNonceMalformed},
		{"empty_challenge", testSale, testClient, "", "0", 0, t0, botfilter.ErrChallengeMalformed},
		{"no_dot", testSale, testClient, strings.Replace(ch8, ".", "", 1), nonce8, 0, t0, botfilter.ErrChallengeMalformed},
		{"two_dots", testSale, testClient, ch8 + ".AA", nonce8, 0, t0, botfilter.ErrChallengeMalformed},
		{"padded_base64", testSale, testClient, ch8 + "=", nonce8, 0, t0, botfilter.ErrChallengeMalformed},
		{"non_canonical_base64", testSale, testClient, nonCanonical(ch8), nonce8, 0, t0, botfilter.ErrChallengeMalformed},
		{"bad_version", testSale, testClient, withPayloadByte(ch8, 0, 2), nonce8, 0, t0, botfilter.ErrChallengeMalformed},
		{"difficulty_over_max", testSale, testClient, withPayloadByte(ch8, 1, botfilter.MaxDifficulty+1), nonce8, 0, t0, botfilter.ErrChallengeMalformed},
		{"tag_too_short", testSale, testClient, ch8[:len(ch8)-4], nonce8, 0, t0, botfilter.ErrChallengeMalformed},
		{"too_long", testSale, testClient, tooLong, "0", 0, t0, botfilter.ErrChallengeMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fresh := botfilter.NewPoW(testKey, testTTL) // same key, empty spent set
			err := fresh.Verify(tt.sale, tt.client, tt.challenge, tt.nonce, tt.minDifficulty, tt.now)
			if tt.want == nil {
				if err != nil {
					t.Errorf("Verify(%q, %q) = %v, want nil", tt.challenge, tt.nonce, err)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("Verify(%q, %q) = %v, want %v", tt.challenge, tt.nonce, err, tt.want)
			}
		})
	}
}

func TestPoW_Verify_errorCodes(t *testing.T) {
	tests := []struct {
		err  *waitroom.Error
		code string
	}{
		{botfilter.ErrChallengeMalformed, waitroom.EINVALID},
		{botfilter.ErrChallengeWrongSale, waitroom.EINVALID},
		{botfilter.ErrDifficultyTooLow, waitroom.EINVALID},
		{botfilter.ErrNonceMalformed, waitroom.EINVALID},
		{botfilter.ErrNonceWrong, waitroom.EINVALID},
		{botfilter.ErrChallengeOtherClient, waitroom.EUNAUTHORIZED},
		{botfilter.ErrChallengeSignature, waitroom.EUNAUTHORIZED},
		{botfilter.ErrChallengeExpired, waitroom.EUNAUTHORIZED},
		{botfilter.ErrChallengeUsed, waitroom.ECONFLICT},
		{botfilter.ErrSpentSetFull, waitroom.EUNAVAILABLE},
	}
	for _, tt := range tests {
		if got := waitroom.ErrorCode(tt.err); got != tt.code {
			t.Errorf("ErrorCode(%q) = %q, want %q", tt.err.Message, got, tt.code)
		}
		if !strings.HasPrefix(tt.err.Message, "proof of work: ") {
			t.Errorf("message %q does not start with \"proof of work: \"", tt.err.Message)
		}
	}
}

func TestPoW_Verify_replay(t *testing.T) {
	p := newTestPoW()
	ch := p.Issue(testSale, testClient, 4, t0).Challenge
	nonce := botfilter.Solve(ch, 4)

	mustVerify(t, p, ch, nonce, t0)
	if err := p.Verify(testSale, testClient, ch, nonce, 0, t0.Add(time.Second)); !errors.Is(err, botfilter.ErrChallengeUsed) {
		t.Errorf("second Verify = %v, want %v", err, botfilter.ErrChallengeUsed)
	}
}

func TestPoW_Verify_replayOtherNonce(t *testing.T) {
	// At difficulty 0 every nonce solves, so only the spent set stops "1".
	p := newTestPoW()
	ch := p.Issue(testSale, testClient, 0, t0).Challenge

	mustVerify(t, p, ch, "0", t0)
	if err := p.Verify(testSale, testClient, ch, "1", 0, t0); !errors.Is(err, botfilter.ErrChallengeUsed) {
		t.Errorf("Verify with another nonce = %v, want %v", err, botfilter.ErrChallengeUsed)
	}
}

func TestPoW_Verify_failureDoesNotSpend(t *testing.T) {
	p := newTestPoW()
	ch := p.Issue(testSale, testClient, 16, t0).Challenge
	solution := botfilter.Solve(ch, 16)
	wrong := "0"
	if solution == "0" {
		wrong = "1" // fails with probability 1 - 2^-16
	}

	if err := p.Verify(testSale, testClient, ch, wrong, 0, t0); !errors.Is(err, botfilter.ErrNonceWrong) {
		t.Fatalf("Verify with nonce %q = %v, want %v", wrong, err, botfilter.ErrNonceWrong)
	}
	if err := p.Verify(testSale, testClient, ch, solution, 17, t0); !errors.Is(err, botfilter.ErrDifficultyTooLow) {
		t.Fatalf("Verify with a raised difficulty = %v, want %v", err, botfilter.ErrDifficultyTooLow)
	}
	mustVerify(t, p, ch, solution, t0)
}

func TestPoW_Verify_spentSetFull(t *testing.T) {
	p := newTestPoW()
	botfilter.SetMaxSpent(p, 3)

	// Fill the set with challenges that expire at t0+5m.
	for range 3 {
		mustVerify(t, p, p.Issue(testSale, testClient, 0, t0).Challenge, "0", t0)
	}

	// A fourth is rejected as unavailable, not accepted without a record.
	late := p.Issue(testSale, testClient, 0, t0.Add(time.Minute)).Challenge
	if err := p.Verify(testSale, testClient, late, "0", 0, t0.Add(time.Minute)); !errors.Is(err, botfilter.ErrSpentSetFull) {
		t.Fatalf("Verify on a full set = %v, want %v", err, botfilter.ErrSpentSetFull)
	}

	// Once the first three expire, they make room.
	mustVerify(t, p, late, "0", t0.Add(testTTL))
	if err := p.Verify(testSale, testClient, late, "0", 0, t0.Add(testTTL)); !errors.Is(err, botfilter.ErrChallengeUsed) {
		t.Errorf("replay after the purge = %v, want %v", err, botfilter.ErrChallengeUsed)
	}
}

func TestPoW_Verify_spentSetPurgeRateLimited(t *testing.T) {
	p := newTestPoW()
	botfilter.SetMaxSpent(p, 1)
	short := botfilter.NewPoW(testKey, time.Second) // same key, shorter ttl

	// The first spend expires at t0+1s.
	mustVerify(t, p, short.Issue(testSale, testClient, 0, t0).Challenge, "0", t0)

	// At t0+1s the full set purges the first spend and takes the second,
	// which expires at t0+1.5s.
	mustVerify(t, p, short.Issue(testSale, testClient, 0, t0.Add(500*time.Millisecond)).Challenge, "0", t0.Add(time.Second))

	// At t0+1.6s the second spend has expired, but the last purge was only
	// 600ms ago, so the set stays full.
	ch := p.Issue(testSale, testClient, 0, t0.Add(1500*time.Millisecond)).Challenge
	if err := p.Verify(testSale, testClient, ch, "0", 0, t0.Add(1600*time.Millisecond)); !errors.Is(err, botfilter.ErrSpentSetFull) {
		t.Errorf("Verify within the purge interval = %v, want %v", err, botfilter.ErrSpentSetFull)
	}
	mustVerify(t, p, ch, "0", t0.Add(2*time.Second))
}

func TestNewPoW_panics(t *testing.T) {
	tests := []struct {
		name string
		key  []byte
		ttl  time.Duration
	}{
		{"empty_key", nil, time.Minute},
		{"zero_ttl", testKey, 0},
		{"negative_ttl", testKey, -time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Errorf("NewPoW(%q, %v) did not panic", tt.key, tt.ttl)
				}
			}()
			botfilter.NewPoW(tt.key, tt.ttl)
		})
	}
}

func TestNewPoW_copiesKey(t *testing.T) {
	key := append([]byte(nil), testKey...)
	p := botfilter.NewPoW(key, testTTL)
	ch := p.Issue(testSale, testClient, 0, t0).Challenge
	key[0] ^= 0xff
	mustVerify(t, p, ch, "0", t0)
}

func TestSolve(t *testing.T) {
	for _, difficulty := range []int{0, 1, 8, 12} {
		ch := "test-challenge"
		nonce := botfilter.Solve(ch, difficulty)
		sum := sha256.Sum256([]byte(ch + ":" + nonce))
		if got := botfilter.LeadingZeroBits(sum); got < difficulty {
			t.Errorf("Solve(%q, %d) = %q with %d leading zero bits", ch, difficulty, nonce, got)
		}
		if difficulty == 0 && nonce != "0" {
			t.Errorf("Solve(%q, 0) = %q, want \"0\"", ch, nonce)
		}
	}
}

func TestSolve_smallest(t *testing.T) {
	ch := "smallest"
	nonce := botfilter.Solve(ch, 6)
	for i := 0; ; i++ {
		candidate := itoa(i)
		if candidate == nonce {
			break
		}
		sum := sha256.Sum256([]byte(ch + ":" + candidate))
		if botfilter.LeadingZeroBits(sum) >= 6 {
			t.Fatalf("Solve(%q, 6) = %q, but %q is smaller and solves it", ch, nonce, candidate)
		}
		if i > 1<<20 {
			t.Fatalf("Solve(%q, 6) = %q, not found among the first 2^20 nonces", ch, nonce)
		}
	}
}

func TestSolve_outOfRange(t *testing.T) {
	if got := botfilter.Solve("x", botfilter.MaxDifficulty+1); got != "" {
		t.Errorf("Solve(difficulty %d) = %q, want \"\"", botfilter.MaxDifficulty+1, got)
	}
	if got := botfilter.Solve("x", -1); got != "0" {
		t.Errorf("Solve(difficulty -1) = %q, want \"0\"", got)
	}
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var b []byte
	for ; i > 0; i /= 10 {
		b = append([]byte{byte('0' + i%10)}, b...)
	}
	return string(b)
}

func TestLeadingZeroBits(t *testing.T) {
	tests := []struct {
		name  string
		bytes []byte // the leading bytes; the rest are 0xff
		want  int
	}{
		{"none", []byte{0x80}, 0},
		{"one", []byte{0x40}, 1},
		{"seven", []byte{0x01}, 7},
		{"eight", []byte{0x00, 0xff}, 8},
		{"twelve", []byte{0x00, 0x0f}, 12},
		{"twenty", []byte{0x00, 0x00, 0x0f}, 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var sum [32]byte
			for i := range sum {
				sum[i] = 0xff
			}
			copy(sum[:], tt.bytes)
			if got := botfilter.LeadingZeroBits(sum); got != tt.want {
				t.Errorf("LeadingZeroBits(%x) = %d, want %d", sum, got, tt.want)
			}
		})
	}

	if got := botfilter.LeadingZeroBits([32]byte{}); got != 256 {
		t.Errorf("LeadingZeroBits(zero) = %d, want 256", got)
	}
}

// TestChallenge_browserRule checks the rule the fan page uses: SHA-256 of the
// UTF-8 string challenge + ":" + nonce, counted in leading zero bits.
func TestChallenge_browserRule(t *testing.T) {
	p := newTestPoW()
	ch := p.Issue(testSale, testClient, 10, t0).Challenge
	nonce := botfilter.Solve(ch, 10)

	sum := sha256.Sum256([]byte(ch + ":" + nonce))
	if got := botfilter.LeadingZeroBits(sum); got < 10 {
		t.Fatalf("SHA-256(%q) has %d leading zero bits, want at least 10", ch+":"+nonce, got)
	}
	if _, err := base64.RawURLEncoding.DecodeString(strings.ReplaceAll(ch, ".", "")); err != nil {
		t.Errorf("challenge %q is not base64url around its dot: %v", ch, err)
	}
	mustVerify(t, p, ch, nonce, t0)
}
