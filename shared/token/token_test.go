package token_test

import (
	"crypto/ed25519"
	"strings"
	"testing"
	"time"

	"github.com/taquilla/taquilla/shared/token"
	"github.com/taquilla/taquilla/shared/waitroom"
)

var now = time.Date(2026, 12, 11, 9, 0, 0, 0, time.UTC)

func mustKey(tb testing.TB) ed25519.PrivateKey {
	tb.Helper()
	k, err := token.NewKey()
	if err != nil {
		tb.Fatal(err)
	}
	return k
}

func TestVerify(t *testing.T) {
	key, other := mustKey(t), mustKey(t)
	signer := token.NewSigner(key)
	v := token.NewVerifier(key.Public().(ed25519.PublicKey))
	ticket := signer.Sign(token.NewTicket("lux-mad-0330", "s_1", "general", now))
	admit := signer.Sign(token.NewAdmission("lux-mad-0330", "s_1", now, now.Add(10*time.Minute)))
	forged := token.NewSigner(other).Sign(token.NewTicket("lux-mad-0330", "s_1", "general", now))
	payload, sig, _ := strings.Cut(ticket, ".")
	otherPayload, _, _ := strings.Cut(signer.Sign(token.NewTicket("lux-mad-0330", "s_2", "general", now)), ".")

	tests := []struct {
		name string
		tok  string
		kind string
		at   time.Time
		code string
	}{
		{"ok_ticket", ticket, token.KindTicket, now, ""},
		{"ok_admit", admit, token.KindAdmit, now.Add(time.Minute), ""},
		{"err_expired_admit", admit, token.KindAdmit, now.Add(10 * time.Minute), waitroom.EUNAUTHORIZED},
		{"err_wrong_kind", ticket, token.KindAdmit, now, waitroom.EUNAUTHORIZED},
		{"err_forged", forged, token.KindTicket, now, waitroom.EUNAUTHORIZED},
		{"err_moved_signature", otherPayload + "." + sig, token.KindTicket, now, waitroom.EUNAUTHORIZED},
		{"err_truncated", payload, token.KindTicket, now, waitroom.EUNAUTHORIZED},
		{"err_empty", "", token.KindTicket, now, waitroom.EUNAUTHORIZED},
		{"err_oversized", strings.Repeat("a", token.MaxLen+1), token.KindTicket, now, waitroom.EUNAUTHORIZED},
		{"err_from_future", ticket, token.KindTicket, now.Add(-time.Hour), waitroom.EUNAUTHORIZED},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(tt.tok, tt.kind, tt.at)
			if got := waitroom.ErrorCode(err); got != tt.code {
				t.Fatalf("Verify = %v, want code %q", err, tt.code)
			}
			if err == nil && (c.Sale != "lux-mad-0330" || c.Session != "s_1") {
				t.Errorf("claims = %+v", c)
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	signer := token.NewSigner(key)
	v := token.NewVerifier(key.Public().(ed25519.PublicKey))
	f.Add(signer.Sign(token.NewTicket("a", "s", "general", now)))
	f.Add("e30.AAAA")
	f.Add("..")
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(tok, token.KindTicket, now)
		if err != nil {
			if waitroom.ErrorCode(err) != waitroom.EUNAUTHORIZED {
				t.Fatalf("Verify error code = %q, want unauthorized", waitroom.ErrorCode(err))
			}
			return
		}
		if c.Sale == "" || c.Session == "" {
			t.Fatalf("accepted token without sale or session: %+v", c)
		}
	})
}

func BenchmarkVerifier_Verify(b *testing.B) {
	key := mustKey(b)
	v := token.NewVerifier(key.Public().(ed25519.PublicKey))
	tok := token.NewSigner(key).Sign(token.NewAdmission("lux-mad-0330", "s_1", now, now.Add(time.Hour)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(tok, token.KindAdmit, now); err != nil {
			b.Fatal(err)
		}
	}
}
