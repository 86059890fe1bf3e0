// Package token mints and verifies Taquilla's signed tokens: the queue ticket
// that proves a fan owns a place in a queue, and the admission token that lets
// an admitted fan into the store. Tokens are Ed25519-signed, so the core and
// other regions' edges need only public keys to verify them.
//
// A token is base64url(JSON claims) + "." + base64url(signature), unpadded.
// The signature covers the encoded claims exactly as sent.
//
// TODO: bind tokens to a key that the fan's browser holds (a
// non-extractable WebCrypto key proving possession on each request); until
// then a copied ticket or admission token works for whoever holds it.
package token

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/taquilla/taquilla/shared/waitroom"
)

// Token kinds.
const (
	KindTicket = "ticket" // a place in a queue
	KindAdmit  = "admit"  // an admission to the store
)

// MaxLen bounds an encoded token; anything longer is rejected before decoding.
const MaxLen = 1024

var b64 = base64.RawURLEncoding

// Claims is what a token asserts.
type Claims struct {
	Kind    string `json:"k"`
	Sale    string `json:"sale"`
	Session string `json:"sid"`
	Lane    string `json:"lane,omitempty"`
	// Fan is the fan account that per-fan limits count against: the
	// promoter-asserted identity when the sale requires one, else empty
	// (the session is then the account).
	Fan string `json:"fan,omitempty"`
	// IssuedAt and Expires are Unix seconds.
	IssuedAt int64  `json:"iat"`
	Expires  int64  `json:"exp"`
	KeyID    string `json:"kid"`
}

// KeyID returns the identifier of a public key: the first 8 bytes of its
// SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Signer mints tokens with one private key.
type Signer struct {
	key ed25519.PrivateKey
	kid string
}

// NewSigner returns a Signer for key.
func NewSigner(key ed25519.PrivateKey) *Signer {
	return &Signer{key: key, kid: KeyID(key.Public().(ed25519.PublicKey))}
}

// Sign returns the encoded, signed token for c. It sets c.KeyID.
func (s *Signer) Sign(c Claims) string {
	c.KeyID = s.kid
	body, _ := json.Marshal(c) // Claims holds only strings and ints
	payload := b64.EncodeToString(body)
	sig := ed25519.Sign(s.key, []byte(payload))
	return payload + "." + b64.EncodeToString(sig)
}

// PublicKey returns the key that verifies this signer's tokens.
func (s *Signer) PublicKey() ed25519.PublicKey {
	return s.key.Public().(ed25519.PublicKey)
}

// Verifier checks tokens against a set of public keys.
type Verifier struct {
	keys map[string]ed25519.PublicKey
}

// NewVerifier returns a Verifier that accepts tokens signed by any of keys.
func NewVerifier(keys ...ed25519.PublicKey) *Verifier {
	v := &Verifier{keys: make(map[string]ed25519.PublicKey, len(keys))}
	for _, k := range keys {
		v.keys[KeyID(k)] = k
	}
	return v
}

// Verify checks tok's signature, kind and time window at now and returns its
// claims. Errors are waitroom.ErrTokenInvalid or waitroom.ErrTokenExpired.
func (v *Verifier) Verify(tok, kind string, now time.Time) (Claims, error) {
	c, err := v.parse(tok)
	if err != nil {
		return Claims{}, err
	}
	if c.Kind != kind {
		return Claims{}, waitroom.Errorf(waitroom.EUNAUTHORIZED, "this is %s, but the request needs %s", kindName(c.Kind), kindName(kind))
	}
	unix := now.Unix()
	if unix < c.IssuedAt-60 { // tolerate a minute of clock skew between edges
		return Claims{}, waitroom.ErrTokenInvalid
	}
	if unix >= c.Expires {
		return Claims{}, waitroom.ErrTokenExpired
	}
	return c, nil
}

func (v *Verifier) parse(tok string) (Claims, error) {
	if len(tok) == 0 || len(tok) > MaxLen {
		return Claims{}, waitroom.ErrTokenInvalid
	}
	payload, sigText, ok := strings.Cut(tok, ".")
	if !ok {
		return Claims{}, waitroom.ErrTokenInvalid
	}
	sig, err := b64.DecodeString(sigText)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return Claims{}, waitroom.ErrTokenInvalid
	}
	body, err := b64.DecodeString(payload)
	if err != nil {
		return Claims{}, waitroom.ErrTokenInvalid
	}
	var c Claims
	if err := json.Unmarshal(body, &c); err != nil {
		return Claims{}, waitroom.ErrTokenInvalid
	}
	key, ok := v.keys[c.KeyID]
	if !ok || !ed25519.Verify(key, []byte(payload), sig) {
		return Claims{}, waitroom.ErrTokenInvalid
	}
	if c.Sale == "" || c.Session == "" {
		return Claims{}, waitroom.ErrTokenInvalid
	}
	return c, nil
}

// kindName names a token kind for error messages.
func kindName(k string) string {
	switch k {
	case KindTicket:
		return "a queue ticket"
	case KindAdmit:
		return "an admission token"
	}
	return "an unknown kind of token"
}

// NewKey returns a new Ed25519 private key.
func NewKey() (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		return nil, fmt.Errorf("generate ed25519 key: %w", err)
	}
	return priv, nil
}

// Lifetimes of the two kinds of token.
const (
	// TicketTTL covers the longest plausible wait in a queue plus shopping.
	TicketTTL = 12 * time.Hour
)

// NewTicket returns the claims of a queue ticket issued at now.
func NewTicket(sale, session, lane string, now time.Time) Claims {
	return Claims{Kind: KindTicket, Sale: sale, Session: session, Lane: lane,
		IssuedAt: now.Unix(), Expires: now.Add(TicketTTL).Unix()}
}

// Account returns the key that per-fan limits count against: Fan when set,
// otherwise the session.
func (c Claims) Account() string {
	if c.Fan != "" {
		return c.Fan
	}
	return "session:" + c.Session
}

// NewAdmission returns the claims of an admission token valid until ends.
func NewAdmission(sale, session string, now, ends time.Time) Claims {
	return Claims{Kind: KindAdmit, Sale: sale, Session: session,
		IssuedAt: now.Unix(), Expires: ends.Unix()}
}
