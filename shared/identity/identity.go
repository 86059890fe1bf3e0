// Package identity verifies the fan identities that promoters assert. A
// promoter's login signs a compact JWS (RFC 7515) with EdDSA over Ed25519
// whose claims name the fan (iss, sub), the sale (aud) and a time window
// (iat, exp and an optional nbf). Edges verify it with the promoters' public
// keys and derive the fan account from it, so a sale that requires an
// identity gives each fan account one place, from any device or region.
package identity

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/taquilla/taquilla/shared/waitroom"
)

const (
	// AnySale is the audience of an identity valid for every sale of the
	// deployment; otherwise the audience is one sale id.
	AnySale = "taquilla"
	// MaxLen bounds an encoded identity, in bytes. Verify rejects a longer
	// one unparsed. A token from Sign with a short iss and sub is about
	// 310 bytes.
	MaxLen = 2048
	// MaxClaimLen bounds iss and sub, in bytes.
	MaxClaimLen = 256
	// Skew is the clock difference tolerated between the promoter's login
	// and the edge, on each of iat, nbf and exp.
	Skew = time.Minute
)

// Errors of Verify, and ErrRequired. All are EUNAUTHORIZED, so the edge
// returns 401. Their messages start with "identity", which lets the fan
// page tell them from other 401s, and say what to do next.
var (
	// ErrRequired means the sale requires an identity and the join has none.
	ErrRequired = &waitroom.Error{Code: waitroom.EUNAUTHORIZED, Message: "identity required: this sale needs a fan identity from the promoter's login, so sign in with the promoter and join again"}
	// ErrInvalid means the identity is malformed, too long, not EdDSA, or
	// its signature does not verify with any promoter key.
	ErrInvalid = &waitroom.Error{Code: waitroom.EUNAUTHORIZED, Message: "identity invalid: it is malformed or not signed by a known promoter key, so sign in with the promoter again"}
	// ErrExpired means the identity's exp has passed.
	ErrExpired = &waitroom.Error{Code: waitroom.EUNAUTHORIZED, Message: "identity expired: sign in with the promoter again"}
	// ErrNotYetValid means the identity's nbf or iat is in the future.
	ErrNotYetValid = &waitroom.Error{Code: waitroom.EUNAUTHORIZED, Message: "identity not valid yet: check the clock of the promoter's login"}
	// ErrWrongSale means the identity's audience is neither the sale nor AnySale.
	ErrWrongSale = &waitroom.Error{Code: waitroom.EUNAUTHORIZED, Message: "identity is for another sale: sign in with the promoter for this sale"}
	// ErrNoKeys means the edge has no promoter keys, so it can verify no identity.
	ErrNoKeys = &waitroom.Error{Code: waitroom.EUNAUTHORIZED, Message: "identity cannot be verified: this edge has no promoter keys configured"}
)

// Claims is the set of facts that a promoter asserts about a fan.
type Claims struct {
	// Issuer names the promoter (iss).
	Issuer string
	// Subject is the fan's account id at the promoter (sub).
	Subject string
	// Audience lists sale ids, or AnySale (aud).
	Audience []string
	// IssuedAt and Expires are required; NotBefore is optional (zero).
	IssuedAt  time.Time
	Expires   time.Time
	NotBefore time.Time
}

// Account returns the fan account of c: the first 12 bytes of a SHA-256 of
// iss and sub, in hex. The stream, tickets and per-fan limits carry this
// instead of the promoter's own account id.
func (c Claims) Account() string {
	sum := sha256.Sum256([]byte("taquilla-fan\x00" + c.Issuer + "\x00" + c.Subject))
	return hex.EncodeToString(sum[:12])
}

// KeyID returns the "kid" that Sign puts in the header for pub: the first 8
// bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

var algorithms = []jose.SignatureAlgorithm{jose.EdDSA}

// Sign returns c as a compact JWS signed with key, with "kid" set to
// KeyID of its public key. It is what a promoter's login does; Taquilla uses
// it for the development promoter and in tests.
func Sign(key ed25519.PrivateKey, c Claims) (string, error) {
	pub := key.Public().(ed25519.PublicKey)
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader("kid", KeyID(pub))
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.EdDSA, Key: key}, opts)
	if err != nil {
		return "", fmt.Errorf("sign identity: %w", err)
	}
	claims := jwt.Claims{
		Issuer:   c.Issuer,
		Subject:  c.Subject,
		Audience: jwt.Audience(c.Audience),
		IssuedAt: jwt.NewNumericDate(c.IssuedAt),
		Expiry:   jwt.NewNumericDate(c.Expires),
	}
	if !c.NotBefore.IsZero() {
		claims.NotBefore = jwt.NewNumericDate(c.NotBefore)
	}
	tok, err := jwt.Signed(signer).Claims(claims).Serialize()
	if err != nil {
		return "", fmt.Errorf("sign identity: %w", err)
	}
	return tok, nil
}

// Verifier checks identities against a set of promoter public keys.
type Verifier struct {
	keys map[string]ed25519.PublicKey // by KeyID
	list []ed25519.PublicKey          // in the order given, for tokens without "kid"
}

// NewVerifier returns a Verifier that accepts identities signed by any of
// keys.
func NewVerifier(keys ...ed25519.PublicKey) *Verifier {
	v := &Verifier{keys: make(map[string]ed25519.PublicKey, len(keys))}
	for _, k := range keys {
		id := KeyID(k)
		if _, ok := v.keys[id]; ok {
			continue
		}
		v.keys[id] = k
		v.list = append(v.list, k)
	}
	return v
}

// Keys returns the number of distinct promoter keys.
func (v *Verifier) Keys() int { return len(v.list) }

// Verify checks tok's signature, claims and time window at now for sale,
// allowing Skew on each time, and returns its claims. The audience must
// contain sale or AnySale. Errors are ErrInvalid, ErrExpired,
// ErrNotYetValid, ErrWrongSale and ErrNoKeys.
func (v *Verifier) Verify(tok, sale string, now time.Time) (Claims, error) {
	if len(v.list) == 0 {
		return Claims{}, ErrNoKeys
	}
	if tok == "" || len(tok) > MaxLen {
		return Claims{}, ErrInvalid
	}
	jws, err := jwt.ParseSigned(tok, algorithms)
	if err != nil || len(jws.Headers) != 1 {
		return Claims{}, ErrInvalid
	}

	// The "kid" picks the key. Without one, each key is tried: promoters
	// have one or two, so a forged token costs at most that many checks.
	keys := v.list
	if kid := jws.Headers[0].KeyID; kid != "" {
		k, ok := v.keys[kid]
		if !ok {
			return Claims{}, ErrInvalid
		}
		keys = []ed25519.PublicKey{k}
	}
	var claims jwt.Claims
	verified := false
	for _, k := range keys {
		if err := jws.Claims(k, &claims); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return Claims{}, ErrInvalid
	}
	return check(claims, sale, now)
}

// check validates the claims of a token whose signature verified.
func check(claims jwt.Claims, sale string, now time.Time) (Claims, error) {
	if claims.Issuer == "" || claims.Subject == "" || len(claims.Issuer) > MaxClaimLen || len(claims.Subject) > MaxClaimLen {
		return Claims{}, ErrInvalid
	}
	if claims.IssuedAt == nil || claims.Expiry == nil || len(claims.Audience) == 0 {
		return Claims{}, ErrInvalid
	}
	err := claims.ValidateWithLeeway(jwt.Expected{AnyAudience: jwt.Audience{sale, AnySale}, Time: now}, Skew)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return Claims{}, ErrExpired
	case errors.Is(err, jwt.ErrNotValidYet), errors.Is(err, jwt.ErrIssuedInTheFuture):
		return Claims{}, ErrNotYetValid
	case errors.Is(err, jwt.ErrInvalidAudience):
		return Claims{}, ErrWrongSale
	case err != nil:
		return Claims{}, ErrInvalid
	}
	c := Claims{
		Issuer:    claims.Issuer,
		Subject:   claims.Subject,
		Audience:  []string(claims.Audience),
		IssuedAt:  claims.IssuedAt.Time(),
		Expires:   claims.Expiry.Time(),
		NotBefore: claims.NotBefore.Time(),
	}
	return c, nil
}
