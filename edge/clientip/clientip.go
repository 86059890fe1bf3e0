// Package clientip finds the address of the fan behind a request: the TCP
// peer, or, when the peer is a trusted proxy, the right-most untrusted entry
// of X-Forwarded-For. Entries left of that one can be forged by the client,
// so they are never read.
//
// Every address this package returns is unmapped (an IPv4-mapped IPv6 address
// becomes IPv4) and has no IPv6 zone, so callers can compare and group
// addresses without normalising them again.
package clientip

import (
	"fmt"
	"net/netip"
	"strings"
)

// Limits on the X-Forwarded-For work done per request. A header longer than
// MaxHeaderLen is treated as malformed, and From examines at most MaxEntries
// elements, counting empty ones, from the right.
const (
	MaxHeaderLen = 4096
	MaxEntries   = 32
)

// ParseTrusted parses a comma-separated list of trusted proxy prefixes such as
// "127.0.0.1/32, 10.0.0.0/8, ::1/128". A bare address means a single host
// (/32 or /128). Spaces around entries and empty entries are ignored, so ""
// returns no prefixes. Host bits are cleared ("10.1.2.3/8" becomes
// 10.0.0.0/8), and an IPv4-mapped prefix of /96 or longer becomes the
// matching IPv4 prefix.
func ParseTrusted(list string) ([]netip.Prefix, error) {
	var prefixes []netip.Prefix
	for entry := range strings.SplitSeq(list, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}

		p, err := parsePrefix(entry)
		if err != nil {
			return nil, fmt.Errorf("parse trusted proxy %q: %w", entry, err)
		}
		prefixes = append(prefixes, p)
	}
	return prefixes, nil
}

func parsePrefix(entry string) (netip.Prefix, error) {
	if !strings.Contains(entry, "/") {
		addr, err := netip.ParseAddr(entry)
		if err != nil {
			return netip.Prefix{}, err
		}
		if addr.Zone() != "" {
			return netip.Prefix{}, fmt.Errorf("zone %q not allowed in a trusted proxy address", addr.Zone())
		}
		addr = addr.Unmap()
		return netip.PrefixFrom(addr, addr.BitLen()), nil
	}

	p, err := netip.ParsePrefix(entry)
	if err != nil {
		return netip.Prefix{}, err
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
	}
	return p.Masked(), nil
}

// From returns the client address of a request that arrived from peer with
// the given X-Forwarded-For header value.
//
// If peer is not in trusted, From returns peer. Otherwise it walks the header
// from the right, skipping empty elements, and returns the first address not
// in trusted. If every examined address is trusted, it returns the left-most
// address examined. It returns peer when the header is empty, longer than
// MaxHeaderLen, or contains an element it cannot parse before an untrusted
// address is found. An element may carry a port ("1.2.3.4:5678",
// "[::1]:80").
func From(peer netip.Addr, xForwardedFor string, trusted []netip.Prefix) netip.Addr {
	peer = normalize(peer)
	if !contains(trusted, peer) {
		return peer
	}
	if xForwardedFor == "" || len(xForwardedFor) > MaxHeaderLen {
		return peer
	}

	// Walk right to left. Each trusted hop appended the address it saw, so
	// the first untrusted address is the one a trusted proxy vouches for.
	var leftmost netip.Addr
	rest := xForwardedFor
	for range MaxEntries {
		var element string
		comma := strings.LastIndexByte(rest, ',')
		if comma < 0 {
			element = rest
		} else {
			element = rest[comma+1:]
		}

		element = strings.TrimSpace(element)
		if element != "" {
			addr, ok := parseElement(element)
			if !ok {
				return peer
			}
			if !contains(trusted, addr) {
				return addr
			}
			leftmost = addr
		}

		if comma < 0 {
			break
		}
		rest = rest[:comma]
	}

	if !leftmost.IsValid() {
		return peer
	}
	return leftmost
}

// parseElement parses one X-Forwarded-For element: an address, an address
// with a port, or a bracketed IPv6 address with or without a port.
func parseElement(element string) (netip.Addr, bool) {
	if element[0] == '[' {
		if element[len(element)-1] == ']' {
			addr, err := netip.ParseAddr(element[1 : len(element)-1])
			if err != nil || !addr.Is6() {
				return netip.Addr{}, false
			}
			return normalize(addr), true
		}
		ap, err := netip.ParseAddrPort(element)
		if err != nil {
			return netip.Addr{}, false
		}
		return normalize(ap.Addr()), true
	}

	// One colon can only be IPv4 with a port. An IPv6 address has at least two.
	if strings.Count(element, ":") == 1 {
		ap, err := netip.ParseAddrPort(element)
		if err != nil {
			return netip.Addr{}, false
		}
		return normalize(ap.Addr()), true
	}

	addr, err := netip.ParseAddr(element)
	if err != nil {
		return netip.Addr{}, false
	}
	return normalize(addr), true
}

// normalize unmaps an IPv4-mapped address and drops any zone, because
// netip.Prefix.Contains never matches an address with a zone.
func normalize(addr netip.Addr) netip.Addr {
	return addr.Unmap().WithZone("")
}

func contains(prefixes []netip.Prefix, addr netip.Addr) bool {
	for _, p := range prefixes {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}
