package clientip_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/taquilla/taquilla/edge/clientip"
)

// FuzzFrom checks that From never panics and returns either the normalised
// peer or an address that some header element spells, with or without a port.
func FuzzFrom(f *testing.F) {
	f.Add("127.0.0.1", "203.0.113.9, 10.0.0.1")
	f.Add("10.0.0.2", "[2001:db8::9]:443,, ::ffff:192.0.2.1:80")
	f.Add("::1", "fe80::1%eth0, garbage")
	f.Add("198.51.100.1", "203.0.113.9")
	trusted := mustParseTrusted(f, testTrusted)

	f.Fuzz(func(t *testing.T, peerText, xff string) {
		peer, err := netip.ParseAddr(peerText)
		if err != nil {
			peer = netip.MustParseAddr("127.0.0.1")
		}
		normalPeer := peer.Unmap().WithZone("")

		got := clientip.From(peer, xff, trusted)
		if got.Is4In6() || got.Zone() != "" {
			t.Fatalf("From(%v, %q) = %v, want an unmapped address without zone", peer, xff, got)
		}
		if again := clientip.From(peer, xff, trusted); again != got {
			t.Fatalf("From(%v, %q) returned %v, then %v", peer, xff, got, again)
		}
		if got == normalPeer {
			return
		}
		if !inHeader(xff, got) {
			t.Fatalf("From(%v, %q) = %v, which is neither the peer nor in the header", peer, xff, got)
		}
	})
}

// inHeader reports whether some element of xff parses to addr. It parses on
// its own, more loosely than From, so the check does not trust From's parser.
func inHeader(xff string, addr netip.Addr) bool {
	for element := range strings.SplitSeq(xff, ",") {
		element = strings.TrimSpace(element)
		candidates := []string{element, strings.Trim(element, "[]")}
		if i := strings.LastIndexByte(element, ':'); i >= 0 {
			candidates = append(candidates, strings.Trim(element[:i], "[]"))
		}
		for _, c := range candidates {
			parsed, err := netip.ParseAddr(c)
			if err == nil && parsed.Unmap().WithZone("") == addr {
				return true
			}
		}
	}
	return false
}
