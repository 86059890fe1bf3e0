// Package natstest starts real NATS servers with JetStream for tests: one
// node, or a cluster whose nodes a test can stop and restart. Only _test.go
// files import it.
package natstest

import (
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	natsservertest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Server is a running test server.
type Server struct {
	*server.Server
	URL string
}

// Run starts a single-node NATS server with JetStream on a free port, with
// its store in a temporary directory, and stops it when the test ends.
func Run(tb testing.TB) *Server {
	tb.Helper()
	opts := natsservertest.DefaultTestOptions
	opts.Port = -1
	opts.JetStream = true
	opts.StoreDir = tb.TempDir()
	opts.NoLog = true
	return start(tb, &opts)
}

func start(tb testing.TB, opts *server.Options) (s *Server) {
	tb.Helper()
	defer func() {
		if r := recover(); r != nil {
			tb.Fatalf("start nats server: %v", r)
		}
	}()
	srv := natsservertest.RunServer(opts)
	tb.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return &Server{Server: srv, URL: srv.ClientURL()}
}

// MustConnect connects to url and returns the connection and its JetStream
// context; both close when the test ends.
func MustConnect(tb testing.TB, url string) (*nats.Conn, jetstream.JetStream) {
	tb.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1))
	if err != nil {
		tb.Fatalf("connect to nats %s: %v", url, err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatalf("jetstream: %v", err)
	}
	return nc, js
}
