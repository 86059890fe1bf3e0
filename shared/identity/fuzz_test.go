package identity_test

import (
	"crypto/ed25519"
	"errors"
	"testing"

	"github.com/taquilla/taquilla/shared/identity"
	"github.com/taquilla/taquilla/shared/waitroom"
)

// FuzzVerify feeds arbitrary strings to the parser. Verify must never panic,
// must reject with one of its own errors, and must accept only tokens that
// carry a subject, an issuer and a window that contains the verification
// time. More seeds, signed by testKey(1), are in testdata/fuzz/FuzzVerify.
func FuzzVerify(f *testing.F) {
	key := testKey(1)
	v := identity.NewVerifier(key.Public().(ed25519.PublicKey))
	valid, err := identity.Sign(key, claims(sale))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add("")
	f.Add("e30.e30.")

	known := []error{identity.ErrInvalid, identity.ErrExpired, identity.ErrNotYetValid, identity.ErrWrongSale}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(tok, sale, now)
		if err != nil {
			if waitroom.ErrorCode(err) != waitroom.EUNAUTHORIZED {
				t.Fatalf("Verify(%q) = %v, want an unauthorized error", tok, err)
			}
			for _, k := range known {
				if errors.Is(err, k) {
					return
				}
			}
			t.Fatalf("Verify(%q) = %v, not one of the documented errors", tok, err)
		}
		if len(tok) > identity.MaxLen {
			t.Fatalf("Verify accepted a token of %d bytes, over MaxLen %d", len(tok), identity.MaxLen)
		}
		if c.Issuer == "" || c.Subject == "" {
			t.Fatalf("Verify(%q) accepted claims without iss or sub: %+v", tok, c)
		}
		if now.Add(identity.Skew).Before(c.IssuedAt) || now.Add(-identity.Skew).After(c.Expires) {
			t.Fatalf("Verify(%q) accepted claims outside their window: %+v", tok, c)
		}
		again, err := v.Verify(tok, sale, now)
		if err != nil || again.Account() != c.Account() {
			t.Fatalf("Verify(%q) is not deterministic: %+v, %v", tok, again, err)
		}
	})
}
