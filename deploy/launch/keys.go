package launch

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/taquilla/taquilla/shared/identity"
)

// loadOrCreateSecret returns the hex-encoded secret stored at path, creating
// it with n random bytes (mode 0600) on first use.
func loadOrCreateSecret(path string, n int) ([]byte, error) {
	body, err := os.ReadFile(path)
	if err == nil {
		b, err := hex.DecodeString(strings.TrimSpace(string(body)))
		if err != nil || len(b) != n {
			return nil, fmt.Errorf("key file %s: want %d hex-encoded bytes", path, n)
		}
		return b, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create key dir: %w", err)
	}
	if err := os.WriteFile(path, []byte(hex.EncodeToString(b)+"\n"), 0o600); err != nil {
		return nil, fmt.Errorf("write key file: %w", err)
	}
	return b, nil
}

// tokenKey returns the Ed25519 key that signs tickets and admissions.
func tokenKey(dir string) (ed25519.PrivateKey, error) {
	seed, err := loadOrCreateSecret(filepath.Join(dir, "token.key"), ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// devPromoterKey returns the development promoter's signing key, stored
// as a hex seed in dir/promoter.key and created on first use, and writes
// its public key to dir/promoter.pub in the form -promoter-keys reads. The
// one-process system signs with it in place of a promoter's login when no
// promoter keys are configured.
func devPromoterKey(dir string) (ed25519.PrivateKey, error) {
	seed, err := loadOrCreateSecret(filepath.Join(dir, "promoter.key"), ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	key := ed25519.NewKeyFromSeed(seed)
	pub := identity.EncodePublicKey(key.Public().(ed25519.PublicKey)) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "promoter.pub"), []byte(pub), 0o644); err != nil {
		return nil, fmt.Errorf("write promoter public key: %w", err)
	}
	return key, nil
}
