package clientip_test

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/taquilla/taquilla/edge/clientip"
)

const testTrusted = "127.0.0.1, 10.0.0.0/8, ::1/128, fd00::/8"

func mustParseTrusted(tb testing.TB, list string) []netip.Prefix {
	tb.Helper()
	prefixes, err := clientip.ParseTrusted(list)
	if err != nil {
		tb.Fatalf("ParseTrusted(%q): %v", list, err)
	}
	return prefixes
}

func TestParseTrusted(t *testing.T) {
	tests := []struct {
		name string
		list string
		want []string
	}{
		{"empty", "", nil},
		{"only_commas_and_spaces", " , ,", nil},
		{"prefixes", "127.0.0.1/32,10.0.0.0/8,::1/128", []string{"127.0.0.1/32", "10.0.0.0/8", "::1/128"}},
		{"spaces", " 127.0.0.1/32 ,  10.0.0.0/8 ", []string{"127.0.0.1/32", "10.0.0.0/8"}},
		{"bare_ipv4", "192.0.2.7", []string{"192.0.2.7/32"}},
		{"bare_ipv6", "2001:db8::1", []string{"2001:db8::1/128"}},
		{"host_bits_cleared", "10.1.2.3/8", []string{"10.0.0.0/8"}},
		{"mapped_prefix", "::ffff:10.0.0.0/104", []string{"10.0.0.0/8"}},
		{"bare_mapped", "::ffff:192.0.2.7", []string{"192.0.2.7/32"}},
		{"trailing_comma", "10.0.0.0/8,", []string{"10.0.0.0/8"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := clientip.ParseTrusted(tt.list)
			if err != nil {
				t.Fatalf("ParseTrusted(%q): %v", tt.list, err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("ParseTrusted(%q) = %v, want %v", tt.list, got, tt.want)
			}
			for i := range got {
				if got[i].String() != tt.want[i] {
					t.Errorf("ParseTrusted(%q)[%d] = %v, want %v", tt.list, i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestParseTrusted_errors(t *testing.T) {
	tests := []struct {
		name    string
		list    string
		wantBad string // the entry the error must name
	}{
		{"hostname", "10.0.0.0/8, proxy.local", `"proxy.local"`},
		{"bad_bits", "10.0.0.0/33", `"10.0.0.0/33"`},
		{"bad_address", "10.0.0.256", `"10.0.0.256"`},
		{"zone", "fe80::1%eth0", `"fe80::1%eth0"`},
		{"port", "127.0.0.1:8080", `"127.0.0.1:8080"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := clientip.ParseTrusted(tt.list)
			if err == nil {
				t.Fatalf("ParseTrusted(%q) = %v, want error", tt.list, got)
			}
			if !strings.Contains(err.Error(), tt.wantBad) {
				t.Errorf("ParseTrusted(%q) error %q does not name %s", tt.list, err, tt.wantBad)
			}
		})
	}
}

func TestFrom(t *testing.T) {
	trusted := mustParseTrusted(t, testTrusted)
	long := strings.Repeat("10.0.0.1, ", clientip.MaxHeaderLen/10) + "203.0.113.9"
	many := "203.0.113.9" + strings.Repeat(", 10.0.0.1", clientip.MaxEntries) // the client sits one past the limit

	tests := []struct {
		name string
		peer string
		xff  string
		want string
	}{
		{"untrusted_peer_ignores_header", "198.51.100.1", "203.0.113.9", "198.51.100.1"},
		{"trusted_peer_no_header", "127.0.0.1", "", "127.0.0.1"},
		{"trusted_peer_single", "127.0.0.1", "203.0.113.9", "203.0.113.9"},
		{"rightmost_untrusted", "127.0.0.1", "192.0.2.1, 203.0.113.9, 10.1.1.1", "203.0.113.9"},
		{"forged_left_ignored", "10.0.0.5", "6.6.6.6, 203.0.113.9", "203.0.113.9"},
		{"all_trusted_leftmost", "127.0.0.1", "10.0.0.7, 10.0.0.8", "10.0.0.7"},
		{"all_trusted_skips_empty", "127.0.0.1", " , 10.0.0.7, ,10.0.0.8", "10.0.0.7"},
		{"only_empty_elements", "127.0.0.1", " , ,", "127.0.0.1"},
		{"spaces_and_tabs", "127.0.0.1", "\t203.0.113.9 \t,  10.0.0.1  ", "203.0.113.9"},
		{"empty_elements", "127.0.0.1", "203.0.113.9,,, ", "203.0.113.9"},
		{"ipv4_port", "127.0.0.1", "203.0.113.9:5678", "203.0.113.9"},
		{"ipv6_port", "127.0.0.1", "[2001:db8::9]:80", "2001:db8::9"},
		{"ipv6_brackets_no_port", "127.0.0.1", "[2001:db8::9]", "2001:db8::9"},
		{"ipv6_bare", "::1", "2001:db8::9", "2001:db8::9"},
		{"ipv6_trusted_hop", "::1", "2001:db8::9, fd00::1", "2001:db8::9"},
		{"mapped_peer", "::ffff:127.0.0.1", "203.0.113.9", "203.0.113.9"},
		{"mapped_peer_untrusted", "::ffff:198.51.100.1", "203.0.113.9", "198.51.100.1"},
		{"mapped_entry", "127.0.0.1", "::ffff:203.0.113.9", "203.0.113.9"},
		{"mapped_trusted_entry", "127.0.0.1", "203.0.113.9, ::ffff:10.0.0.1", "203.0.113.9"},
		{"zoned_peer", "fe80::1%eth0", "203.0.113.9", "fe80::1"},
		{"zoned_entry", "127.0.0.1", "fe80::9%eth0", "fe80::9"},
		{"malformed_returns_peer", "127.0.0.1", "203.0.113.9, not-an-ip", "127.0.0.1"},
		{"malformed_left_of_client_ignored", "127.0.0.1", "garbage, 203.0.113.9", "203.0.113.9"},
		{"malformed_after_trusted_hop", "127.0.0.1", "203.0.113.9, unknown, 10.0.0.1", "127.0.0.1"},
		{"bad_port", "127.0.0.1", "203.0.113.9:99999", "127.0.0.1"},
		{"ipv4_in_brackets", "127.0.0.1", "[203.0.113.9]:80", "127.0.0.1"},
		{"unclosed_bracket", "127.0.0.1", "[2001:db8::9", "127.0.0.1"},
		{"header_too_long", "127.0.0.1", long, "127.0.0.1"},
		{"entry_limit_returns_leftmost_examined", "127.0.0.1", many, "10.0.0.1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			peer := netip.MustParseAddr(tt.peer)
			want := netip.MustParseAddr(tt.want)
			if got := clientip.From(peer, tt.xff, trusted); got != want {
				t.Errorf("From(%v, %q) = %v, want %v", peer, tt.xff, got, want)
			}
		})
	}
}

func TestFrom_entryLimit(t *testing.T) {
	trusted := mustParseTrusted(t, testTrusted)
	peer := netip.MustParseAddr("127.0.0.1")

	// The client is exactly MaxEntries elements from the right, so it is found.
	xff := "203.0.113.9" + strings.Repeat(", 10.0.0.1", clientip.MaxEntries-1)
	if got, want := clientip.From(peer, xff, trusted), netip.MustParseAddr("203.0.113.9"); got != want {
		t.Errorf("From with %d elements = %v, want %v", clientip.MaxEntries, got, want)
	}
}

func TestFrom_noTrusted(t *testing.T) {
	peer := netip.MustParseAddr("127.0.0.1")
	if got := clientip.From(peer, "203.0.113.9", nil); got != peer {
		t.Errorf("From with no trusted proxies = %v, want peer %v", got, peer)
	}
}

func TestFrom_invalidPeer(t *testing.T) {
	trusted := mustParseTrusted(t, testTrusted)
	if got := clientip.From(netip.Addr{}, "203.0.113.9", trusted); got.IsValid() {
		t.Errorf("From(invalid peer) = %v, want the invalid peer", got)
	}
}

func TestFrom_noAllocs(t *testing.T) {
	trusted := mustParseTrusted(t, testTrusted)
	peer := netip.MustParseAddr("10.0.0.2")
	allocs := testing.AllocsPerRun(100, func() {
		clientip.From(peer, "192.0.2.1, [2001:db8::9]:443, 10.0.0.1:80", trusted)
	})
	if allocs != 0 {
		t.Errorf("From allocated %v times per call, want 0", allocs)
	}
}

func BenchmarkFrom(b *testing.B) {
	trusted := mustParseTrusted(b, testTrusted)
	peer := netip.MustParseAddr("10.0.0.2")
	b.ReportAllocs()
	for b.Loop() {
		clientip.From(peer, "192.0.2.1, 203.0.113.9, 10.1.1.1, 10.0.0.1", trusted)
	}
}
