package botfilter_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/taquilla/taquilla/edge/botfilter"
	"github.com/taquilla/taquilla/shared/waitroom"
)

// FuzzVerify checks that Verify never panics on arbitrary input, returns
// only *waitroom.Error values, accepts only real solutions, and rejects a
// second use of any challenge it accepted. The issued_* seeds under
// testdata/fuzz/FuzzVerify were issued with testKey for testSale and
// testClient at t0, so they verify. Changing those values turns them into
// rejected inputs.
func FuzzVerify(f *testing.F) {
	seed := newTestPoW()
	for _, difficulty := range []int{0, 4, 8} {
		ch := seed.Issue(testSale, testClient, difficulty, t0).Challenge
		f.Add(ch, botfilter.Solve(ch, difficulty))
	}
	f.Add("", "")
	f.Add("AQ.AA", "0")

	f.Fuzz(func(t *testing.T, challenge, nonce string) {
		p := newTestPoW() // an empty spent set for every input
		err := p.Verify(testSale, testClient, challenge, nonce, 0, t0)
		if err != nil {
			var werr *waitroom.Error
			if !errors.As(err, &werr) {
				t.Fatalf("Verify(%q, %q) = %T %v, want a *waitroom.Error", challenge, nonce, err, err)
			}
			return
		}

		// Accepted: an independent decoder must agree that the challenge is
		// genuine, unexpired and solved, and a replay must fail.
		if reason := checkAccepted(challenge, nonce); reason != "" {
			t.Fatalf("Verify(%q, %q) accepted it, but %s", challenge, nonce, reason)
		}
		if err := p.Verify(testSale, testClient, challenge, nonce, 0, t0); !errors.Is(err, botfilter.ErrChallengeUsed) {
			t.Fatalf("replay of Verify(%q, %q) = %v, want %v", challenge, nonce, err, botfilter.ErrChallengeUsed)
		}
	})
}

// checkAccepted decodes challenge by the format documented in pow.go and
// returns why Verify should not have accepted it with nonce, or "".
func checkAccepted(challenge, nonce string) string {
	encodedPayload, encodedTag, _ := strings.Cut(challenge, ".")
	payload, err := base64.RawURLEncoding.DecodeString(encodedPayload)
	if err != nil || len(payload) != 38 {
		return "its payload does not decode to 38 bytes"
	}
	tag, err := base64.RawURLEncoding.DecodeString(encodedTag)
	if err != nil {
		return "its tag does not decode"
	}

	mac := hmac.New(sha256.New, testKey)
	mac.Write(payload)
	for _, s := range []string{testSale, testClient} {
		mac.Write(binary.AppendUvarint(nil, uint64(len(s))))
		mac.Write([]byte(s))
	}
	if !hmac.Equal(tag, mac.Sum(nil)) {
		return "its tag is not the HMAC of its payload"
	}

	if payload[0] != 1 {
		return fmt.Sprintf("its version is %d", payload[0])
	}
	if expires := int64(binary.BigEndian.Uint64(payload[2:10])); t0.UnixMilli() >= expires {
		return "it expired"
	}
	difficulty := int(payload[1])
	if got := botfilter.LeadingZeroBits(sha256.Sum256([]byte(challenge + ":" + nonce))); got < difficulty {
		return fmt.Sprintf("the hash has %d leading zero bits, below its difficulty %d", got, difficulty)
	}
	for _, c := range []byte(nonce) {
		if c < '0' || c > '9' {
			return "the nonce has a character that is not a decimal digit"
		}
	}
	return ""
}
