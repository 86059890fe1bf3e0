package natstest

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsservertest "github.com/nats-io/nats-server/v2/test"
)

// Cluster is a JetStream cluster of embedded servers on 127.0.0.1, for
// tests of replicated streams and of node failures. Call its methods from
// the test goroutine: they stop the test on failure.
type Cluster struct {
	tb   testing.TB
	opts []server.Options

	mu      sync.Mutex // guards servers
	servers []*server.Server
}

// RunCluster starts an n-node JetStream cluster, each node with its own
// store in a temporary directory, and waits until JetStream has a meta
// leader that every node follows. The nodes stop when the test ends.
//
// The client and route ports are free ports chosen up front, so a node
// restarted by Restart comes back on the same addresses and the routes of
// the other nodes find it again.
func RunCluster(tb testing.TB, n int) *Cluster {
	tb.Helper()
	ports := freePorts(tb, 2*n)
	c := &Cluster{tb: tb, opts: make([]server.Options, n), servers: make([]*server.Server, n)}
	for i := range n {
		opts := natsservertest.DefaultTestOptions
		opts.ServerName = fmt.Sprintf("n%d", i+1)
		opts.Host = "127.0.0.1"
		opts.Port = ports[2*i]
		opts.JetStream = true
		opts.StoreDir = tb.TempDir()
		opts.Cluster.Name = "taquilla-test"
		opts.Cluster.Host = "127.0.0.1"
		opts.Cluster.Port = ports[2*i+1]
		for j := range n {
			if j != i {
				opts.Routes = append(opts.Routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", ports[2*j+1])})
			}
		}
		c.opts[i] = opts
	}
	for i := range n {
		c.startNode(i)
	}
	c.WaitReady(30 * time.Second)
	return c
}

// freePorts returns n distinct ports that were free on 127.0.0.1 a moment
// ago. Another process may take one before a server binds it. The server
// then fails to start, and the test stops with that error.
func freePorts(tb testing.TB, n int) []int {
	tb.Helper()
	ports := make([]int, 0, n)
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			tb.Fatalf("find a free port: %v", err)
		}
		defer ln.Close()
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// startNode starts node i from a copy of its options, because the server
// keeps a pointer to them.
func (c *Cluster) startNode(i int) {
	c.tb.Helper()
	opts := c.opts[i]
	s := start(c.tb, &opts)
	c.mu.Lock()
	c.servers[i] = s.Server
	c.mu.Unlock()
}

// Len returns the number of nodes, running or stopped.
func (c *Cluster) Len() int { return len(c.opts) }

// URL returns the client URL of node i. It does not change across a
// restart.
func (c *Cluster) URL(i int) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", c.opts[i].Port)
}

// URLs returns the client URLs of every node, node first first and the
// others after it, joined with commas as nats.Connect accepts them. A
// client that connects with nats.DontRandomize starts on node first and
// reconnects to the others when it stops.
func (c *Cluster) URLs(first int) string {
	urls := make([]string, 0, c.Len())
	for k := range c.Len() {
		urls = append(urls, c.URL((first+k)%c.Len()))
	}
	return strings.Join(urls, ",")
}

// Server returns node i, or nil while it is stopped.
func (c *Cluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.servers[i]
}

// Stop shuts node i down and waits until it has stopped. Its store stays,
// so Restart brings it back with its data.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	s := c.servers[i]
	c.servers[i] = nil
	c.mu.Unlock()
	if s == nil {
		c.tb.Fatalf("stop node %d: already stopped", i)
	}
	s.Shutdown()
	s.WaitForShutdown()
}

// Restart starts node i again after Stop, on the same ports and store.
// It does not wait for the node to catch up with its streams.
func (c *Cluster) Restart(i int) {
	c.tb.Helper()
	if c.Server(i) != nil {
		c.tb.Fatalf("restart node %d: still running", i)
	}
	c.startNode(i)
}

// StreamLeader returns the index of the node that leads the stream in
// the global account, or -1 when no running node leads it.
func (c *Cluster) StreamLeader(stream string) int {
	for i := range c.Len() {
		if s := c.Server(i); s != nil && s.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// WaitReady waits until one running node is the JetStream meta leader and
// every running node is current with it, and stops the test when that
// takes longer than timeout.
func (c *Cluster) WaitReady(timeout time.Duration) {
	c.tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		err := c.ready()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			c.tb.Fatalf("jetstream cluster not ready within %v: %v", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (c *Cluster) ready() error {
	leaders := 0
	for i := range c.Len() {
		s := c.Server(i)
		if s == nil {
			continue
		}
		if s.JetStreamIsLeader() {
			leaders++
		}
		if !s.JetStreamIsCurrent() {
			return fmt.Errorf("node %d is not current with the meta leader", i)
		}
	}
	if leaders != 1 {
		return fmt.Errorf("%d meta leaders, want 1", leaders)
	}
	return nil
}
