package web_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/bits"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// nodeHarness loads static/pow.js into a bare VM context and runs its SHA-256
// and proof-of-work functions on the request from stdin. The worker search runs
// the source that the page puts into its Web Worker, with a fake self.
const nodeHarness = `
const fs = require('fs');
const vm = require('vm');
const req = JSON.parse(fs.readFileSync(0, 'utf8'));
const ctx = vm.createContext({ TextEncoder });
vm.runInContext(fs.readFileSync(req.script, 'utf8'), ctx, { filename: 'pow.js' });

const sha256 = ctx.makeSha256();
const hex = (words) => Array.from(words, (w) => (w >>> 0).toString(16).padStart(8, '0')).join('');
const digests = req.messages.map((m) => {
  const b = new TextEncoder().encode(m);
  return hex(sha256(b, b.length));
});
const pageNonce = ctx.powSearch(sha256, req.challenge, req.difficulty, 0, req.limit);

const posted = [];
const worker = vm.createContext({ TextEncoder, self: { postMessage: (m) => posted.push(m) } });
vm.runInContext(ctx.powWorkerSource(), worker, { filename: 'worker.js' });
worker.self.onmessage({ data: { challenge: req.challenge, difficulty: req.difficulty, chunk: 1000, limit: req.limit } });
const last = posted[posted.length - 1] || {};

process.stdout.write(JSON.stringify({ digests, pageNonce, workerDone: last.done === true, workerNonce: last.nonce }));
`

// TestPowJS_proofOfWork checks the page's own SHA-256 against crypto/sha256
// and its proof-of-work search against a search written here. It needs node
// and skips without it.
func TestPowJS_proofOfWork(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not found on PATH; the JS proof of work is not checked")
	}
	script, err := filepath.Abs("static/pow.js")
	if err != nil {
		t.Fatal(err)
	}
	harness := filepath.Join(t.TempDir(), "harness.js")
	if err := os.WriteFile(harness, []byte(nodeHarness), 0o600); err != nil {
		t.Fatal(err)
	}

	// Lengths around the 55/56 and 64-byte padding edges, multi-block input,
	// non-ASCII text, and a short message after a long one to catch a buffer
	// reused without clearing.
	messages := []string{
		"", "abc",
		strings.Repeat("a", 55), strings.Repeat("b", 56), strings.Repeat("c", 63),
		strings.Repeat("d", 64), strings.Repeat("e", 65), strings.Repeat("f", 119),
		strings.Repeat("g", 120), strings.Repeat("h", 1000),
		"ñ€😀 Sector 101", "abc",
	}
	const (
		challenge  = "c1.lux-mad-0330.1767225600.Zm9vYmFy"
		difficulty = 12
		limit      = 1 << 20
	)
	request, err := json.Marshal(map[string]any{
		"script": script, "messages": messages,
		"challenge": challenge, "difficulty": difficulty, "limit": limit,
	})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, harness)
	cmd.Stdin = bytes.NewReader(request)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node harness: %v\n%s", err, stderr.String())
	}
	var got struct {
		Digests     []string `json:"digests"`
		PageNonce   *string  `json:"pageNonce"`
		WorkerDone  bool     `json:"workerDone"`
		WorkerNonce *string  `json:"workerNonce"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("parse harness output %q: %v", out, err)
	}

	if len(got.Digests) != len(messages) {
		t.Fatalf("harness returned %d digests, want %d", len(got.Digests), len(messages))
	}
	for i, m := range messages {
		sum := sha256.Sum256([]byte(m))
		if want := hex.EncodeToString(sum[:]); got.Digests[i] != want {
			t.Errorf("JS sha256(%d bytes %.12q…) = %s, want %s", len(m), m, got.Digests[i], want)
		}
	}

	want := firstNonce(challenge, difficulty, limit)
	if got.PageNonce == nil || *got.PageNonce != want {
		t.Errorf("JS powSearch = %v, want %q", got.PageNonce, want)
	}
	if !got.WorkerDone {
		t.Errorf("worker did not post done")
	}
	if got.WorkerNonce == nil || *got.WorkerNonce != want {
		t.Errorf("worker nonce = %v, want %q", got.WorkerNonce, want)
	}
}

// firstNonce returns the smallest decimal nonce below limit whose
// SHA-256(challenge + ":" + nonce) starts with difficulty zero bits.
func firstNonce(challenge string, difficulty, limit int) string {
	for n := range limit {
		nonce := strconv.Itoa(n)
		sum := sha256.Sum256([]byte(challenge + ":" + nonce))
		if leadingZeroBits(sum[:]) >= difficulty {
			return nonce
		}
	}
	return ""
}

func leadingZeroBits(b []byte) int {
	n := 0
	for _, c := range b {
		n += bits.LeadingZeros8(c)
		if c != 0 {
			break
		}
	}
	return n
}
