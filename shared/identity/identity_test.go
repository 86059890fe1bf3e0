package identity_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/taquilla/taquilla/shared/identity"
	"github.com/taquilla/taquilla/shared/waitroom"
)

const sale = "lux-mad-0330"

var now = time.Date(2025, 12, 11, 9, 0, 0, 0, time.UTC)

// testKey returns a fixed promoter key, so signed seeds stay valid.
func testKey(b byte) ed25519.PrivateKey {
	seed := make([]byte, ed25519.SeedSize)
	for i := range seed {
		seed[i] = b
	}
	return ed25519.NewKeyFromSeed(seed)
}

func claims(aud ...string) identity.Claims {
	return identity.Claims{Issuer: "https://login.promoter.example", Subject: "fan-1234", Audience: aud,
		IssuedAt: now.Add(-time.Minute), Expires: now.Add(time.Hour)}
}

func mustSign(t *testing.T, key ed25519.PrivateKey, c identity.Claims) string {
	t.Helper()
	tok, err := identity.Sign(key, c)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	return tok
}

// resign replaces a token's payload with body and signs it again without a
// library, as a promoter on another stack would.
func resign(key ed25519.PrivateKey, header, body string) string {
	b64 := base64.RawURLEncoding
	input := b64.EncodeToString([]byte(header)) + "." + b64.EncodeToString([]byte(body))
	return input + "." + b64.EncodeToString(ed25519.Sign(key, []byte(input)))
}

func TestVerify(t *testing.T) {
	key, other := testKey(1), testKey(2)
	v := identity.NewVerifier(key.Public().(ed25519.PublicKey))
	valid := mustSign(t, key, claims(sale))

	withNotBefore := claims(sale)
	withNotBefore.NotBefore = now.Add(5 * time.Minute)
	expired := claims(sale)
	expired.IssuedAt, expired.Expires = now.Add(-2*time.Hour), now.Add(-2*time.Minute)
	justExpired := claims(sale)
	justExpired.Expires = now.Add(-30 * time.Second)
	future := claims(sale)
	future.IssuedAt = now.Add(2 * time.Minute)
	noSubject := claims(sale)
	noSubject.Subject = ""
	longSubject := claims(sale)
	longSubject.Subject = strings.Repeat("x", identity.MaxClaimLen+1)
	noIssuedAt := claims(sale)
	noIssuedAt.IssuedAt = time.Time{}
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"x","sub":"y","aud":"`+sale+`","iat":1,"exp":99999999999}`)) + "." + parts[2]

	tests := []struct {
		name string
		tok  string
		want error
	}{
		{"ok", valid, nil},
		{"ok_any_sale", mustSign(t, key, claims(identity.AnySale)), nil},
		{"ok_audience_list", mustSign(t, key, claims("lux-bcn-0413", sale)), nil},
		{"ok_within_skew", mustSign(t, key, justExpired), nil},
		{"ok_without_kid", resign(key, `{"alg":"EdDSA"}`, `{"iss":"p","sub":"f","aud":"`+sale+`","iat":1765443600,"exp":1765447200}`), nil},
		{"err_forged", mustSign(t, other, claims(sale)), identity.ErrInvalid},
		{"err_forged_without_kid", resign(other, `{"alg":"EdDSA"}`, `{"iss":"p","sub":"f","aud":"`+sale+`","iat":1765443600,"exp":1765447200}`), identity.ErrInvalid},
		{"err_tampered_payload", tampered, identity.ErrInvalid},
		{"err_expired", mustSign(t, key, expired), identity.ErrExpired},
		{"err_wrong_sale", mustSign(t, key, claims("lux-bcn-0413")), identity.ErrWrongSale},
		{"err_not_before", mustSign(t, key, withNotBefore), identity.ErrNotYetValid},
		{"err_issued_in_future", mustSign(t, key, future), identity.ErrNotYetValid},
		{"err_no_subject", mustSign(t, key, noSubject), identity.ErrInvalid},
		{"err_long_subject", mustSign(t, key, longSubject), identity.ErrInvalid},
		{"err_no_issued_at", mustSign(t, key, noIssuedAt), identity.ErrInvalid},
		{"err_no_audience", mustSign(t, key, claims()), identity.ErrInvalid},
		{"err_no_expiry", resign(key, `{"alg":"EdDSA"}`, `{"iss":"p","sub":"f","aud":"`+sale+`","iat":1765443600}`), identity.ErrInvalid},
		{"err_alg_none", resign(key, `{"alg":"none"}`, `{"iss":"p","sub":"f","aud":"`+sale+`","iat":1765443600,"exp":1765447200}`), identity.ErrInvalid},
		{"err_alg_hs256", resign(key, `{"alg":"HS256"}`, `{"iss":"p","sub":"f","aud":"`+sale+`","iat":1765443600,"exp":1765447200}`), identity.ErrInvalid},
		{"err_unknown_kid", resign(key, `{"alg":"EdDSA","kid":"0000000000000000"}`, `{"iss":"p","sub":"f","aud":"`+sale+`","iat":1765443600,"exp":1765447200}`), identity.ErrInvalid},
		{"err_empty", "", identity.ErrInvalid},
		{"err_too_long", valid + strings.Repeat("A", identity.MaxLen), identity.ErrInvalid},
		{"err_not_jws", "not.a.token", identity.ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(tt.tok, sale, now)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
			if err != nil {
				if code := waitroom.ErrorCode(err); code != waitroom.EUNAUTHORIZED {
					t.Errorf("ErrorCode = %q, want %q", code, waitroom.EUNAUTHORIZED)
				}
				return
			}
			if c.Subject == "" || c.Issuer == "" {
				t.Errorf("claims %+v lack iss or sub", c)
			}
		})
	}
}

func TestVerify_noKeys(t *testing.T) {
	tok := mustSign(t, testKey(1), claims(sale))
	if _, err := identity.NewVerifier().Verify(tok, sale, now); !errors.Is(err, identity.ErrNoKeys) {
		t.Fatalf("Verify = %v, want %v", err, identity.ErrNoKeys)
	}
}

func TestVerify_secondKey(t *testing.T) {
	first, second := testKey(1), testKey(2)
	v := identity.NewVerifier(first.Public().(ed25519.PublicKey), second.Public().(ed25519.PublicKey))
	c, err := v.Verify(mustSign(t, second, claims(sale)), sale, now)
	if err != nil {
		t.Fatalf("Verify = %v, want nil", err)
	}
	if c.Subject != "fan-1234" {
		t.Errorf("Subject = %q, want %q", c.Subject, "fan-1234")
	}
}

func TestSign_header(t *testing.T) {
	key := testKey(1)
	tok := mustSign(t, key, claims(sale))
	head, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]string
	if err := json.Unmarshal(head, &h); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"alg": "EdDSA", "kid": identity.KeyID(key.Public().(ed25519.PublicKey)), "typ": "JWT"}
	for k, w := range want {
		if h[k] != w {
			t.Errorf("header %s = %q, want %q", k, h[k], w)
		}
	}
}

func TestClaims_Account(t *testing.T) {
	a := identity.Claims{Issuer: "promoter", Subject: "fan-1"}
	tests := []struct {
		name  string
		other identity.Claims
		same  bool
	}{
		{"same_fan_other_times", identity.Claims{Issuer: "promoter", Subject: "fan-1", Expires: now}, true},
		{"other_subject", identity.Claims{Issuer: "promoter", Subject: "fan-2"}, false},
		{"other_issuer", identity.Claims{Issuer: "promoter2", Subject: "fan-1"}, false},
		{"separator_not_ambiguous", identity.Claims{Issuer: "promoterfan-1", Subject: ""}, false},
	}
	if got := a.Account(); len(got) != 24 {
		t.Errorf("Account() = %q, want 24 hex digits", got)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := a.Account() == tt.other.Account(); got != tt.same {
				t.Errorf("Account() equal = %v, want %v", got, tt.same)
			}
		})
	}
}

func TestParsePublicKeys(t *testing.T) {
	pub := testKey(1).Public().(ed25519.PublicKey)
	pub2 := testKey(2).Public().(ed25519.PublicKey)
	file := "# promoter keys\n" + identity.EncodePublicKey(pub) + "\n\n  " + base64.StdEncoding.EncodeToString(pub2) + "  \r\n"
	keys, err := identity.ParsePublicKeys([]byte(file))
	if err != nil {
		t.Fatalf("ParsePublicKeys: %v", err)
	}
	if len(keys) != 2 || !keys[0].Equal(pub) || !keys[1].Equal(pub2) {
		t.Fatalf("ParsePublicKeys = %x, want %x and %x", keys, pub, pub2)
	}

	bad := []struct {
		name, file, want string
	}{
		{"not_base64", "not base64!\n", "line 1: invalid key: not base64"},
		{"short", identity.EncodePublicKey(pub) + "\n" + base64.StdEncoding.EncodeToString(pub[:16]) + "\n", "line 2: invalid key: 16 bytes"},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			_, err := identity.ParsePublicKeys([]byte(tt.file))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("ParsePublicKeys(%q) = %v, want an error containing %q", tt.file, err, tt.want)
			}
		})
	}
}

func TestParsePrivateKey(t *testing.T) {
	key := testKey(3)
	got, err := identity.ParsePrivateKey([]byte(strings.Repeat("03", ed25519.SeedSize) + "\n"))
	if err != nil {
		t.Fatalf("ParsePrivateKey: %v", err)
	}
	if !got.Equal(key) {
		t.Errorf("ParsePrivateKey returned another key")
	}
	if _, err := identity.ParsePrivateKey([]byte("0303")); err == nil {
		t.Errorf("ParsePrivateKey(short seed) = nil error, want one")
	}
}
