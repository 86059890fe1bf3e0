package identity

import (
	"bytes"
	"crypto/ed25519"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// ParsePublicKeys reads promoter public keys, one a line, each the 32 bytes
// of an Ed25519 public key in base64: raw URL (as EncodePublicKey writes) or
// standard, with or without padding. Blank lines and lines starting with #
// are skipped. It reports every bad line at once, by line number.
func ParsePublicKeys(data []byte) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	var errs []error
	for i, line := range bytes.Split(data, []byte("\n")) {
		text := strings.TrimSpace(string(line))
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		k, err := decodePublicKey(text)
		if err != nil {
			errs = append(errs, fmt.Errorf("line %d: %w", i+1, err))
			continue
		}
		keys = append(keys, k)
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return keys, nil
}

func decodePublicKey(text string) (ed25519.PublicKey, error) {
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
		b, err := enc.DecodeString(text)
		if err != nil {
			continue
		}
		if len(b) != ed25519.PublicKeySize {
			return nil, fmt.Errorf("invalid key: %d bytes, want an Ed25519 public key of %d", len(b), ed25519.PublicKeySize)
		}
		return ed25519.PublicKey(b), nil
	}
	return nil, errors.New("invalid key: not base64")
}

// LoadPublicKeys reads a file of promoter public keys (see ParsePublicKeys)
// and fails when it contains none.
func LoadPublicKeys(path string) ([]ed25519.PublicKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read promoter keys: %w", err)
	}
	keys, err := ParsePublicKeys(data)
	if err != nil {
		return nil, fmt.Errorf("promoter keys %s: %w", path, err)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("promoter keys %s: no key in the file", path)
	}
	return keys, nil
}

// EncodePublicKey returns pub in unpadded base64url, the form
// ParsePublicKeys reads first.
func EncodePublicKey(pub ed25519.PublicKey) string {
	return base64.RawURLEncoding.EncodeToString(pub)
}

// ParsePrivateKey reads a promoter's signing key: the 32-byte Ed25519 seed
// in hex, as `taquilla run` writes the development promoter's key.
func ParsePrivateKey(data []byte) (ed25519.PrivateKey, error) {
	seed, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("invalid key: want an Ed25519 seed of %d bytes in hex", ed25519.SeedSize)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// LoadPrivateKey reads a promoter's signing key file (see ParsePrivateKey).
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read promoter key: %w", err)
	}
	key, err := ParsePrivateKey(data)
	if err != nil {
		return nil, fmt.Errorf("promoter key %s: %w", path, err)
	}
	return key, nil
}
