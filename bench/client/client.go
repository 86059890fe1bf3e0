// Package client is a fan's HTTP and WebSocket client of the Taquilla edge
// API, used by the load generator and the end-to-end tests. It speaks only
// the public API, exactly as the fan page does.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/fasthttp/websocket"

	"github.com/taquilla/taquilla/edge/botfilter"
	"github.com/taquilla/taquilla/shared/waitroom"
	"github.com/taquilla/taquilla/shared/wire"
)

// Client talks to one edge.
type Client struct {
	Base string // such as http://127.0.0.1:8080
	HTTP *http.Client
	// ForwardedFor, when set, is sent as X-Forwarded-For: the load
	// generator gives each simulated fan its own address this way, through
	// an edge that trusts the loopback proxy.
	ForwardedFor string
}

// New returns a client of the edge at base.
func New(base string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{Timeout: 60 * time.Second}
	}
	return &Client{Base: strings.TrimSuffix(base, "/"), HTTP: hc}
}

// APIError is an error response of the edge.
type APIError struct {
	Status     int
	Code       string
	Message    string
	RetryAfter string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Code, e.Message)
}

// Do sends a request with an optional JSON body and bearer token and decodes
// a JSON answer into out. Error responses return *APIError.
func (c *Client) Do(ctx context.Context, method, path, bearer, idemKey string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("encode body: %w", err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.Base+path, rd)
	if err != nil {
		return fmt.Errorf("new request: %w", err)
	}
	req.Header.Set("User-Agent", "taquilla-loadgen/1")
	req.Header.Set("Accept-Language", "es-ES,es;q=0.9")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if idemKey != "" {
		req.Header.Set("Idempotency-Key", idemKey)
	}
	if c.ForwardedFor != "" {
		req.Header.Set("X-Forwarded-For", c.ForwardedFor)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read body: %w", method, path, err)
	}
	if resp.StatusCode >= 400 {
		var eb wire.ErrorBody
		_ = json.Unmarshal(data, &eb)
		return &APIError{Status: resp.StatusCode, Code: eb.Error.Code, Message: eb.Error.Message, RetryAfter: resp.Header.Get("Retry-After")}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(data, out); err != nil {
		return fmt.Errorf("%s %s: decode: %w", method, path, err)
	}
	return nil
}

// Sales lists the on-sales.
func (c *Client) Sales(ctx context.Context) ([]wire.SaleInfo, error) {
	var r wire.SalesResponse
	err := c.Do(ctx, http.MethodGet, "/api/v1/sales", "", "", nil, &r)
	return r.Sales, err
}

// Join solves the proof of work and joins a sale's queue. The same idemKey
// returns the same place on a retry.
func (c *Client) Join(ctx context.Context, sale, idemKey string) (*wire.JoinResponse, error) {
	var ch wire.Challenge
	if err := c.Do(ctx, http.MethodGet, "/api/v1/sales/"+sale+"/challenge", "", "", nil, &ch); err != nil {
		return nil, err
	}
	nonce := botfilter.Solve(ch.Challenge, ch.Difficulty)
	var r wire.JoinResponse
	err := c.Do(ctx, http.MethodPost, "/api/v1/sales/"+sale+"/join", "", idemKey, wire.JoinRequest{Challenge: ch.Challenge, Nonce: nonce}, &r)
	return &r, err
}

// Status polls a fan's status.
func (c *Client) Status(ctx context.Context, ticket string) (wire.Status, error) {
	var st wire.Status
	err := c.Do(ctx, http.MethodGet, "/api/v1/status", ticket, "", nil, &st)
	return st, err
}

// Leave leaves the queue.
func (c *Client) Leave(ctx context.Context, ticket string) (wire.Status, error) {
	var st wire.Status
	err := c.Do(ctx, http.MethodPost, "/api/v1/leave", ticket, "", nil, &st)
	return st, err
}

// SeatMap reads the seat map of an admitted fan's sale.
func (c *Client) SeatMap(ctx context.Context, sale, admission string) (*waitroom.SeatMap, error) {
	var m waitroom.SeatMap
	err := c.Do(ctx, http.MethodGet, "/api/v1/sales/"+sale+"/seatmap", admission, "", nil, &m)
	return &m, err
}

// Hold holds seats.
func (c *Client) Hold(ctx context.Context, admission, idemKey string, body wire.HoldBody) (*waitroom.Hold, error) {
	var h waitroom.Hold
	err := c.Do(ctx, http.MethodPost, "/api/v1/holds", admission, idemKey, body, &h)
	return &h, err
}

// Checkout moves a hold into payment.
func (c *Client) Checkout(ctx context.Context, admission, holdID string) (*waitroom.Hold, error) {
	var h waitroom.Hold
	err := c.Do(ctx, http.MethodPost, "/api/v1/holds/"+holdID+"/checkout", admission, "", nil, &h)
	return &h, err
}

// Pay pays for a hold in checkout.
func (c *Client) Pay(ctx context.Context, admission, holdID, card string) (*waitroom.PayResult, error) {
	var r waitroom.PayResult
	err := c.Do(ctx, http.MethodPost, "/api/v1/holds/"+holdID+"/pay", admission, "pay-"+holdID, wire.PayBody{Card: card}, &r)
	return &r, err
}

// Order reads an order.
func (c *Client) Order(ctx context.Context, token, orderID string) (*waitroom.Order, error) {
	var o waitroom.Order
	err := c.Do(ctx, http.MethodGet, "/api/v1/orders/"+orderID, token, "", nil, &o)
	return &o, err
}

// Socket is a fan's WebSocket.
type Socket struct {
	conn *websocket.Conn
}

// Dial opens the status WebSocket of a ticket.
func (c *Client) Dial(ctx context.Context, ticket string) (*Socket, error) {
	u := "ws" + strings.TrimPrefix(c.Base, "http") + "/api/v1/ws?ticket=" + ticket
	d := websocket.Dialer{HandshakeTimeout: 10 * time.Second}
	var h http.Header
	if c.ForwardedFor != "" {
		h = http.Header{"X-Forwarded-For": {c.ForwardedFor}}
	}
	conn, resp, err := d.DialContext(ctx, u, h)
	if resp != nil && resp.Body != nil {
		resp.Body.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("dial websocket: %w", err)
	}
	return &Socket{conn: conn}, nil
}

// Next returns the next status frame, waiting until deadline.
func (s *Socket) Next(deadline time.Time) (wire.Status, error) {
	_ = s.conn.SetReadDeadline(deadline)
	for {
		_, data, err := s.conn.ReadMessage()
		if err != nil {
			return wire.Status{}, err
		}
		var m wire.WSMessage
		if err := json.Unmarshal(data, &m); err != nil {
			return wire.Status{}, fmt.Errorf("decode frame: %w", err)
		}
		if m.Type == "status" && m.Status != nil {
			return *m.Status, nil
		}
		if m.Error != nil {
			return wire.Status{}, &APIError{Code: m.Error.Code, Message: m.Error.Message}
		}
	}
}

// Close closes the socket.
func (s *Socket) Close() error { return s.conn.Close() }
