// Package natsembed runs a NATS server with JetStream inside the process, for
// the one-process launcher and the local multi-node launchers.
package natsembed

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats-server/v2/server"

	"github.com/taquilla/taquilla/shared/logkey"
)

// Options configures an embedded server.
type Options struct {
	// Host and Port of the client listener; Port -1 picks a free port.
	Host string
	Port int
	// HTTPPort serves NATS monitoring (/varz, /jsz, /connz, /healthz); -1
	// picks a free port and 0 disables it.
	HTTPPort int
	// StoreDir holds JetStream's files.
	StoreDir string
	// SyncAlways makes JetStream write each message to disk before it
	// acknowledges the publish, so an acknowledged join survives a power
	// failure. It costs publish latency.
	SyncAlways bool
	ServerName string
}

// Start runs a server and waits until it accepts clients.
func Start(opts Options, log *slog.Logger) (*server.Server, error) {
	sopts := &server.Options{
		ServerName: opts.ServerName,
		Host:       opts.Host,
		Port:       opts.Port,
		HTTPHost:   opts.Host,
		HTTPPort:   opts.HTTPPort,
		JetStream:  true,
		StoreDir:   opts.StoreDir,
		SyncAlways: opts.SyncAlways,
		NoSigs:     true,
		// Fans never connect to NATS; only edges and cores do. 8 MiB is the
		// largest payload any component sends.
		MaxPayload: 8 << 20,
	}
	if sopts.Host == "" {
		sopts.Host = "127.0.0.1"
		sopts.HTTPHost = "127.0.0.1"
	}
	srv, err := server.NewServer(sopts)
	if err != nil {
		return nil, fmt.Errorf("create nats server: %w", err)
	}
	srv.SetLoggerV2(&slogAdapter{log: log.With(logkey.Component, "nats-server")}, false, false, false)
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, fmt.Errorf("nats server not ready within 30s")
	}
	return srv, nil
}

// MonitorURL returns the base URL of the server's monitoring endpoint, or ""
// when monitoring is off.
func MonitorURL(srv *server.Server) string {
	addr := srv.MonitorAddr()
	if addr == nil {
		return ""
	}
	return "http://" + addr.String()
}

// slogAdapter routes the server's log lines into slog.
type slogAdapter struct{ log *slog.Logger }

func (a *slogAdapter) Noticef(format string, v ...any) {
	a.log.Debug("nats server log", logkey.Detail, fmt.Sprintf(format, v...))
}
func (a *slogAdapter) Warnf(format string, v ...any) {
	a.log.Warn("nats server log", logkey.Detail, fmt.Sprintf(format, v...))
}
func (a *slogAdapter) Fatalf(format string, v ...any) {
	a.log.Error("nats server log", logkey.Detail, fmt.Sprintf(format, v...))
}
func (a *slogAdapter) Errorf(format string, v ...any) {
	a.log.Error("nats server log", logkey.Detail, fmt.Sprintf(format, v...))
}
func (a *slogAdapter) Debugf(format string, v ...any) {
	a.log.Debug("nats server log", logkey.Detail, fmt.Sprintf(format, v...))
}
func (a *slogAdapter) Tracef(format string, v ...any) {
	a.log.Debug("nats server log", logkey.Detail, fmt.Sprintf(format, v...))
}
