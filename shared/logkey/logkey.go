// Package logkey defines the slog attribute keys used across Taquilla, so one
// key has one meaning in every component's logs.
package logkey

// Attribute keys. Add a key here before using it in a log call.
const (
	Component = "component"
	Err       = "err"
	ReqID     = "req_id"
	ConnID    = "conn_id"
	ClientIP  = "client_ip"
	Method    = "method"
	Path      = "path"
	Status    = "status"
	Elapsed   = "elapsed"
	SaleID    = "sale_id"
	SessionID = "session_id"
	Position  = "position"
	SeatID    = "seat_id"
	HoldID    = "hold_id"
	OrderID   = "order_id"
	Attempt   = "attempt"
	SQLState  = "sqlstate"
	Stream    = "stream"
	Subject   = "subject"
	Consumer  = "consumer"
	Seq       = "seq"
	Count     = "count"
	Addr      = "addr"
	URL       = "url"
	Dir       = "dir"
	Reason    = "reason"
	Detail    = "detail"
	Region    = "region"
	Port      = "port"
	PID       = "pid"
	Operator  = "operator"
	EventID   = "event_id"
	// Value and Previous are a setting's new and old values.
	Value    = "value"
	Previous = "previous"
)
