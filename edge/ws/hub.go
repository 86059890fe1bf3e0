// Package ws keeps the fans' WebSocket connections of one edge. A hub pushes
// each fan their status: at once when they are admitted or their queue
// closes, and otherwise coalesced to at most one frame per interval, only
// when something they see changed. Slow clients are dropped rather than
// allowed to block the pushes of everyone else.
package ws

import (
	"encoding/json"
	"log/slog"
	"reflect"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/taquilla/taquilla/shared/logkey"
	"github.com/taquilla/taquilla/shared/wire"
)

// StatusFunc returns the current status of a fan.
type StatusFunc func(sale, session string) wire.Status

// Config tunes a hub.
type Config struct {
	// Interval is the least time between two position frames to one fan.
	Interval time.Duration
	// PingEvery is how often the hub pings idle clients; a client that
	// misses two pings is closed.
	PingEvery time.Duration
	// WriteTimeout bounds one frame write.
	WriteTimeout time.Duration
}

// DefaultConfig returns a one-second push interval and 20-second pings.
func DefaultConfig() Config {
	return Config{Interval: time.Second, PingEvery: 20 * time.Second, WriteTimeout: 10 * time.Second}
}

// Hub is the set of a process's fan connections.
type Hub struct {
	cfg    Config
	status StatusFunc
	log    *slog.Logger

	mu     sync.Mutex // guards conns and closed
	conns  map[key]map[*conn]struct{}
	closed bool

	count  atomic.Int64
	frames atomic.Int64
	stop   chan struct{}
	wg     sync.WaitGroup
}

type key struct{ sale, session string }

type conn struct {
	key  key
	ws   *websocket.Conn
	send chan []byte

	mu sync.Mutex // guards last
	// last is the last status sent, compared without its token and time.
	last wire.Status
	done chan struct{}
	once sync.Once
}

// NewHub returns a hub and starts its push loop.
func NewHub(cfg Config, status StatusFunc, log *slog.Logger) *Hub {
	h := &Hub{cfg: cfg, status: status, log: log.With(logkey.Component, "edge.ws"),
		conns: make(map[key]map[*conn]struct{}), stop: make(chan struct{})}
	h.wg.Add(1)
	go h.loop()
	return h
}

// Serve runs one fan's connection until it closes. It blocks, as the
// upgrader's handler must.
func (h *Hub) Serve(wsc *websocket.Conn, sale, session string) {
	c := &conn{key: key{sale, session}, ws: wsc, send: make(chan []byte, 8), done: make(chan struct{})}
	if !h.add(c) {
		_ = wsc.Close()
		return
	}
	defer h.remove(c)

	// The first frame goes out at once, so a fan never stares at nothing.
	h.push(c, true)

	// Fans send nothing we need; reading handles control frames and
	// notices when the client goes away.
	wsc.SetReadLimit(512)
	_ = wsc.SetReadDeadline(time.Now().Add(2 * h.cfg.PingEvery))
	wsc.SetPongHandler(func(string) error {
		return wsc.SetReadDeadline(time.Now().Add(2 * h.cfg.PingEvery))
	})
	go func() {
		defer c.close()
		for {
			if _, _, err := wsc.ReadMessage(); err != nil {
				return
			}
		}
	}()
	h.writeLoop(c)
}

func (h *Hub) writeLoop(c *conn) {
	defer c.close()
	ping := time.NewTicker(h.cfg.PingEvery)
	defer ping.Stop()
	for {
		select {
		case <-c.done:
			_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseGoingAway, ""), time.Now().Add(time.Second))
			return
		case frame := <-c.send:
			_ = c.ws.SetWriteDeadline(time.Now().Add(h.cfg.WriteTimeout))
			if err := c.ws.WriteMessage(websocket.TextMessage, frame); err != nil {
				return
			}
			h.frames.Add(1)
		case <-ping.C:
			if err := c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(h.cfg.WriteTimeout)); err != nil {
				return
			}
		}
	}
}

func (c *conn) close() {
	c.once.Do(func() { close(c.done) })
}

func (h *Hub) add(c *conn) bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return false
	}
	set := h.conns[c.key]
	if set == nil {
		set = make(map[*conn]struct{})
		h.conns[c.key] = set
	}
	set[c] = struct{}{}
	h.count.Add(1)
	return true
}

func (h *Hub) remove(c *conn) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if set := h.conns[c.key]; set != nil {
		if _, ok := set[c]; ok {
			delete(set, c)
			h.count.Add(-1)
		}
		if len(set) == 0 {
			delete(h.conns, c.key)
		}
	}
	_ = c.ws.Close()
}

// push computes c's status and queues a frame when it changed or force is
// set. A client whose queue is full is closed: it is too slow to keep up.
func (h *Hub) push(c *conn, force bool) {
	st := h.status(c.key.sale, c.key.session)
	c.mu.Lock()
	unchanged := same(st, c.last)
	c.last = st
	c.mu.Unlock()
	if unchanged && !force {
		return
	}
	frame, _ := json.Marshal(wire.WSMessage{Type: "status", Status: &st})
	select {
	case c.send <- frame:
	default:
		c.close()
	}
}

// same reports whether a fan would see no difference between a and b.
func same(a, b wire.Status) bool {
	a.UpdatedAt, b.UpdatedAt = time.Time{}, time.Time{}
	a.Admission, b.Admission = nil, nil
	return reflect.DeepEqual(a, b)
}

// Notify pushes fresh status to the named sessions of a sale at once, such as
// fans just admitted.
func (h *Hub) Notify(sale string, sessions []string) {
	for _, s := range sessions {
		for _, c := range h.snapshot(key{sale, s}) {
			h.push(c, false)
		}
	}
}

// NotifySale pushes fresh status to every fan of a sale at once, such as
// when its queue closes, reopens or pauses.
func (h *Hub) NotifySale(sale string) {
	for _, c := range h.all() {
		if c.key.sale == sale {
			h.push(c, false)
		}
	}
}

// Count returns the number of open connections.
func (h *Hub) Count() int64 { return h.count.Load() }

// Frames returns the number of frames written so far.
func (h *Hub) Frames() int64 { return h.frames.Load() }

func (h *Hub) snapshot(k key) []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*conn, 0, len(h.conns[k]))
	for c := range h.conns[k] {
		out = append(out, c)
	}
	return out
}

func (h *Hub) all() []*conn {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]*conn, 0, h.count.Load())
	for _, set := range h.conns {
		for c := range set {
			out = append(out, c)
		}
	}
	return out
}

// loop refreshes every connection once per interval.
func (h *Hub) loop() {
	defer h.wg.Done()
	t := time.NewTicker(h.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-t.C:
			for _, c := range h.all() {
				h.push(c, false)
			}
		}
	}
}

// Close sends every client a close frame and stops the hub. The Serve calls
// return as their connections end.
func (h *Hub) Close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	h.closed = true
	h.mu.Unlock()
	close(h.stop)
	h.wg.Wait()
	for _, c := range h.all() {
		c.close()
	}
}
