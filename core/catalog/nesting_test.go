package catalog

import (
	"strings"
	"testing"
)

func TestCheckNesting(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want string // the error, or "" for none
	}{
		{"flat", "a: [1, {b: 2}]\n", ""},
		{"at_limit", strings.Repeat("[", 32), ""},
		{"flow_too_deep", strings.Repeat("[", 33), "1:33: collections nest deeper than 32 levels"},
		{"closed_brackets_reset", strings.Repeat("[]", 100), ""},
		{"compact_sequences_too_deep", "\n" + strings.Repeat("- ", 33) + "x", "2:65: collections nest deeper than 32 levels"},
		{"dashes_inside_text", "a: " + strings.Repeat("- ", 40) + "x", ""},
		{"brackets_in_double_quotes", `a: "` + strings.Repeat("[", 40) + `"`, ""},
		{"brackets_after_escaped_quote", `a: "\"` + strings.Repeat("[", 40) + `"`, ""},
		{"brackets_in_single_quotes", "a: '" + strings.Repeat("{", 40) + "'", ""},
		{"brackets_in_comment", "a: 1 # " + strings.Repeat("[", 40), ""},
		{"column_counts_runes", "ñ: " + strings.Repeat("[", 33), "1:36: collections nest deeper than 32 levels"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ""
			if p := checkNesting([]byte(tt.src)); p != nil {
				got = p.Error()
			}
			if got != tt.want {
				t.Errorf("checkNesting() = %q, want %q", got, tt.want)
			}
		})
	}
}
