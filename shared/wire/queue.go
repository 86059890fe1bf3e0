// Package wire defines Taquilla's external contract: the messages on the queue
// streams, the NATS request and reply bodies between edge and core, and the
// JSON bodies of the fan API and WebSocket. Every message carries a version;
// changing a field's meaning is a breaking change.
package wire

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"
)

// Version is the current version of every message in this package.
const Version = 1

// Queue message kinds. Each is published on the subject QueueSubject(sale, kind).
const (
	KindJoin    = "join"    // a fan joined a lane
	KindLeave   = "leave"   // a fan left, or an operator removed a session
	KindAdmit   = "admit"   // the controller admitted the next Count fans of a lane
	KindDone    = "done"    // an admitted fan finished shopping; its slot is free
	KindArrive  = "arrive"  // an admitted fan reached the store within the arrival window
	KindControl = "control" // an operator changed the sale's settings
	KindClose   = "close"   // the queue closed (sold out); Reason says why
	KindReopen  = "reopen"  // seats came back after a close
	// KindSchedule sets the opening time and commits to the shuffle seed:
	// Commitment is the hex SHA-256 of the seed. Fans who join before the
	// opening wait in the pre-queue.
	KindSchedule = "schedule"
	// KindOpen opens a scheduled sale and reveals the seed (hex): the
	// pre-queue is placed in the order of a keyed hash of each session.
	KindOpen  = "open"
	KindLanes = "lanes" // an operator set the presale lanes and their shares
	KindCodes = "codes" // an operator added access codes to a lane
)

// DefaultLane is the lane of fans without a presale code.
const DefaultLane = "general"

// QueueMsg is one message on an on-sale's queue stream. The stream sequence
// orders them; every replica applies them with the same rules.
type QueueMsg struct {
	V       int    `json:"v"`
	Kind    string `json:"kind"`
	Session string `json:"session,omitempty"`
	Lane    string `json:"lane,omitempty"`
	// Count is the number of fans an admit message admits.
	Count int `json:"count,omitempty"`
	// Batch numbers admit messages 1, 2, 3, … so a batch published twice by
	// two controllers is applied once.
	Batch uint64 `json:"batch,omitempty"`
	// Region names the edge region that accepted a join.
	Region  string   `json:"region,omitempty"`
	Reason  string   `json:"reason,omitempty"`
	Control *Control `json:"control,omitempty"`
	// By names who made a control change or a removal.
	By string `json:"by,omitempty"`

	// Fan is the promoter-asserted fan account of a join, hashed; empty
	// when the sale does not require an identity.
	Fan string `json:"fan,omitempty"`
	// Code is the hash (CodeHash) of the access code a join used to enter
	// a presale lane.
	Code string `json:"code,omitempty"`
	// Sessions lists, in order, the fans an admit message admits. Replicas
	// admit exactly these; the verify command checks they are the fans
	// first in line.
	Sessions []string `json:"sessions,omitempty"`
	// OpensAt is the opening time of a schedule message.
	OpensAt time.Time `json:"opens_at,omitzero"`
	// Commitment (schedule) and Seed (open) are the two halves of the
	// verifiable shuffle, both hex.
	Commitment string `json:"commitment,omitempty"`
	Seed       string `json:"seed,omitempty"`
	// Lanes is the full lane set of a lanes message.
	Lanes []LaneConfig `json:"lanes,omitempty"`
	// Codes are the access codes of a codes message.
	Codes []AccessCode `json:"codes,omitempty"`
}

// LaneConfig is one presale or accessibility lane. Share is the percentage
// of each admission batch that the lane gets while it has fans waiting; the
// general lane gets what the others leave.
type LaneConfig struct {
	Name  string `json:"name"`
	Share int    `json:"share"`
}

// AccessCode lets a fan into a lane. Hash is CodeHash of the code, so the
// stream never holds codes in the clear; Uses is how many joins it admits.
type AccessCode struct {
	Hash string `json:"hash"`
	Lane string `json:"lane"`
	Uses int    `json:"uses"`
}

// MaxAdmitSessions bounds the sessions of one admit message, so it stays
// under the stream's message size limit.
const MaxAdmitSessions = 1000

// CodeHash returns the hex SHA-256 of an access code for a sale. Codes are
// compared case-insensitively, without surrounding spaces.
func CodeHash(saleID, code string) string {
	sum := sha256.Sum256([]byte("taquilla-code\x00" + saleID + "\x00" + strings.ToUpper(strings.TrimSpace(code))))
	return hex.EncodeToString(sum[:])
}

// ValidLaneName reports whether name can name a lane: 1 to 24 lowercase
// letters, digits and '-'.
func ValidLaneName(name string) bool {
	return len(name) <= 24 && ValidSaleID(name)
}

// Control holds the operator's settings of an on-sale.
type Control struct {
	// RatePerMinute is the number of fans admitted per minute.
	RatePerMinute int `json:"rate_per_minute"`
	// Cap is the maximum number of admitted fans shopping at once.
	Cap int `json:"cap"`
	// Paused stops admissions while true.
	Paused bool `json:"paused"`
	// ShoppingSeconds is how long an admission lasts; after it the slot is
	// free again and the admission token expires.
	ShoppingSeconds int `json:"shopping_seconds"`
	// ArrivalSeconds is how long an admitted fan has to reach the store;
	// a fan who does not is a no-show and the slot goes to the next fan.
	// Zero means 10 minutes.
	ArrivalSeconds int `json:"arrival_seconds,omitempty"`
	// PoWDifficulty is the proof-of-work difficulty, in leading zero bits,
	// that edges ask of fans joining this sale; nil leaves each edge's
	// configured default.
	PoWDifficulty *int `json:"pow_difficulty,omitempty"`
	// AutoMin and AutoMax bound the automatic outflow mode, on while
	// AutoMax is positive: the core then sets RatePerMinute from its own
	// health, within these bounds.
	AutoMin int `json:"auto_min,omitempty"`
	AutoMax int `json:"auto_max,omitempty"`
	// IdentityRequired makes edges accept a join only with a fan identity
	// signed by a promoter key, so each fan account gets one place.
	IdentityRequired bool `json:"identity_required,omitempty"`
}

// StreamName returns the JetStream stream name of an on-sale's queue.
func StreamName(saleID string) string {
	return "QUEUE_" + strings.ReplaceAll(saleID, "-", "_")
}

// QueueSubject returns the subject of a queue message kind for an on-sale.
func QueueSubject(saleID, kind string) string {
	return "taq.q." + saleID + "." + kind
}

// QueueSubjects returns the wildcard that a sale's stream captures.
func QueueSubjects(saleID string) string {
	return "taq.q." + saleID + ".>"
}

// ValidSaleID reports whether id can name an on-sale: 1 to 48 characters of
// lowercase letters, digits and '-'. It keeps subjects and stream names valid.
func ValidSaleID(id string) bool {
	if len(id) == 0 || len(id) > 48 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}
