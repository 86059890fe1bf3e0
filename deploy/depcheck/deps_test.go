package depcheck_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/taquilla/taquilla"

// deps returns the packages that pkg links, test files excluded.
func deps(t *testing.T, pkg string) map[string]bool {
	t.Helper()
	out, err := exec.Command("go", "list", "-deps", pkg).Output()
	if err != nil {
		t.Fatalf("go list -deps %s: %v", pkg, err)
	}
	set := map[string]bool{}
	for _, p := range strings.Fields(string(out)) {
		set[p] = true
	}
	return set
}

func TestDeps(t *testing.T) {
	rules := []struct {
		pkg       string
		forbidden map[string]string // import path prefix → reason
	}{
		{module + "/edge/...", map[string]string{
			"github.com/jackc/pgx": "edges never talk to the database; store requests go to the core over NATS",
			module + "/core/":      "edges reach the core only through the NATS contract in shared/wire",
		}},
		{module + "/core/...", map[string]string{
			"github.com/valyala/fasthttp": "the core serves no HTTP to fans; edges do",
			module + "/edge/":             "the core must not depend on edge code",
		}},
		{module + "/shared/...", map[string]string{
			module + "/edge/": "shared code is below both edge and core",
			module + "/core/": "shared code is below both edge and core",
		}},
		{module + "/deploy/cmd/taquilla", map[string]string{
			"testing":                        "binaries must not link the testing package",
			module + "/shared/natstest":      "test helpers stay out of binaries",
			module + "/core/postgres/pgtest": "test helpers stay out of binaries",
			module + "/shared/eventually":    "test helpers stay out of binaries",
		}},
		{module + "/bench/cmd/loadgen", map[string]string{
			"testing":                     "binaries must not link the testing package",
			module + "/shared/natstest":   "test helpers stay out of binaries",
			module + "/shared/eventually": "test helpers stay out of binaries",
		}},
	}
	for _, r := range rules {
		t.Run(strings.TrimPrefix(r.pkg, module+"/"), func(t *testing.T) {
			pkgs := []string{r.pkg}
			if strings.HasSuffix(r.pkg, "/...") {
				out, err := exec.Command("go", "list", r.pkg).Output()
				if err != nil {
					t.Fatalf("go list %s: %v", r.pkg, err)
				}
				pkgs = strings.Fields(string(out))
			}
			for _, p := range pkgs {
				if strings.HasSuffix(p, "/natstest") || strings.HasSuffix(p, "/pgtest") {
					continue // test helpers may import what they wrap
				}
				for dep := range deps(t, p) {
					for prefix, reason := range r.forbidden {
						if dep == prefix || strings.HasPrefix(dep, prefix) && (strings.HasSuffix(prefix, "/") || strings.HasPrefix(dep, prefix+"/")) {
							t.Errorf("%s links %s: %s", p, dep, reason)
						}
					}
				}
			}
		})
	}
}
