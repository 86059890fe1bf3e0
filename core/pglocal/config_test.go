package pglocal

import (
	"slices"
	"strings"
	"testing"
)

func TestQuoteSetting(t *testing.T) {
	tests := []struct {
		in, want string
	}{
		{"", "''"},
		{"/tmp/data", "'/tmp/data'"},
		{"/tmp/it's", "'/tmp/it''s'"},
		{`/tmp/a\b`, `'/tmp/a\\b'`},
	}
	for _, tt := range tests {
		if got := quoteSetting(tt.in); got != tt.want {
			t.Errorf("quoteSetting(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSocketDir(t *testing.T) {
	short := "/tmp/data"
	if got := socketDir(short); got != short {
		t.Errorf("socketDir(%q) = %q, want it unchanged", short, got)
	}
	long := "/" + strings.Repeat("d", maxSocketPath)
	if got := socketDir(long); got != "" {
		t.Errorf("socketDir(%d-byte path) = %q, want empty", len(long), got)
	}
}

func TestVersionOf(t *testing.T) {
	tests := []struct {
		binDir string
		want   []int
	}{
		{"/usr/lib/postgresql/15/bin", []int{15}},
		{"/usr/lib/postgresql/9.6/bin", []int{9, 6}},
		{"/usr/lib/postgresql/devel/bin", []int{-1}},
	}
	for _, tt := range tests {
		got := versionOf(tt.binDir)
		if !slices.Equal(got, tt.want) {
			t.Errorf("versionOf(%q) = %v, want %v", tt.binDir, got, tt.want)
		}
	}
}

func TestLastLines(t *testing.T) {
	if got, want := lastLines("a\nb\nc\n", 2), "b\nc"; got != want {
		t.Errorf("lastLines(a b c, 2) = %q, want %q", got, want)
	}
	if got, want := lastLines("a\n", 5), "a"; got != want {
		t.Errorf("lastLines(a, 5) = %q, want %q", got, want)
	}
}
