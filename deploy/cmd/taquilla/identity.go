package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/taquilla/taquilla/shared/identity"
	"github.com/taquilla/taquilla/shared/wire"
)

const identityUsage = `Usage: taquilla identity sign --key FILE --sub ID --aud SALE [--ttl 1h] [--iss NAME]

Prints a fan identity signed as a promoter's login signs one: a compact JWS
(EdDSA) to send as "identity" when joining a queue. Every join with the same
--iss and --sub gets the same place. taquilla run writes a development
promoter key to DATA_DIR/keys/promoter.key when no -promoter-keys are set.

Flags:
`

// runIdentity runs `taquilla identity sign`.
func runIdentity(args []string, now time.Time, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("taquilla identity sign", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyFile := fs.String("key", "", "promoter signing key: an Ed25519 seed in hex (required)")
	sub := fs.String("sub", "", "the fan's account id at the promoter (required)")
	aud := fs.String("aud", "", `sale id the identity is valid for, or "`+identity.AnySale+`" for every sale (required)`)
	ttl := fs.Duration("ttl", time.Hour, "how long the identity stays valid")
	iss := fs.String("iss", "taquilla-dev-promoter", "promoter name, the token's issuer")
	fs.Usage = func() {
		fmt.Fprint(stderr, identityUsage)
		fs.PrintDefaults()
	}
	if len(args) == 0 || args[0] != "sign" {
		fs.Usage()
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			return nil
		}
		return errors.New(`missing command: use "taquilla identity sign"`)
	}
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}

	var errs []error
	if *keyFile == "" || *sub == "" || *aud == "" {
		errs = append(errs, errors.New("--key, --sub and --aud are required"))
	}
	if *aud != "" && *aud != identity.AnySale && !wire.ValidSaleID(*aud) {
		errs = append(errs, fmt.Errorf("--aud %q is not a sale id", *aud))
	}
	if *ttl <= 0 {
		errs = append(errs, fmt.Errorf("--ttl must be positive, got %s", *ttl))
	}
	if len(*sub) > identity.MaxClaimLen || len(*iss) > identity.MaxClaimLen || *iss == "" {
		errs = append(errs, fmt.Errorf("--sub and --iss must be 1 to %d bytes", identity.MaxClaimLen))
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}

	key, err := identity.LoadPrivateKey(*keyFile)
	if err != nil {
		return err
	}
	tok, err := identity.Sign(key, identity.Claims{Issuer: *iss, Subject: *sub, Audience: []string{*aud},
		IssuedAt: now, Expires: now.Add(*ttl)})
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, tok)
	return nil
}

// identityArgs turns the flags of `ctl identity --sale SALE
// --required=BOOL` into the positional arguments SALE and 1 or 0. Both
// flags are required, so that a forgotten --required never turns the
// requirement off.
func identityArgs(args []string, stderr io.Writer) ([]string, error) {
	fs := flag.NewFlagSet("taquilla ctl identity", flag.ContinueOnError)
	fs.SetOutput(stderr)
	sale := fs.String("sale", "", "sale id")
	required := fs.Bool("required", false, "true requires a promoter-signed fan identity to join, false does not")
	if err := fs.Parse(args); err != nil {
		return nil, fmt.Errorf("identity: %w", err)
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	if !set["sale"] || !set["required"] || fs.NArg() > 0 {
		return nil, errors.New("identity takes --sale SALE --required=true|false")
	}
	if *required {
		return []string{*sale, "1"}, nil
	}
	return []string{*sale, "0"}, nil
}

// identityRule describes a sale's identity setting for `ctl stats`.
func identityRule(c wire.Control) string {
	if c.IdentityRequired {
		return "required to join"
	}
	return "not required"
}
