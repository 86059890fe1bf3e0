package scenario

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/taquilla/taquilla/bench/client"
)

// Result is the outcome of a run with its invariant checks.
type Result struct {
	Fans, Joined, Admitted int
	Seats, Sold            int
	Bought, Declined       int
	SoldOutFans, Errors    int
	// Unserved counts fans who wanted tickets and left without any.
	Unserved int
	// Oversold counts places sold beyond what exists: a seat in two orders
	// told to fans, a section sold past its capacity, or a sold seat with
	// no paid order.
	Oversold int
	// LostFans counts fans whose acknowledged place the queue no longer
	// contains.
	LostFans int
	// OrderViolations counts disagreements between what fans were told
	// and the database: a told order missing or different, or a paid order
	// of one of the fans that the fan was never told about.
	OrderViolations  int
	Duration         time.Duration
	JoinP50, JoinP99 time.Duration
	Retries          int
	// Samples holds a few error messages for the report.
	Samples []string
}

// Line formats the result as the one RESULT line of a run.
func (r Result) Line() string {
	return fmt.Sprintf("RESULT fans=%d joined=%d admitted=%d seats=%d sold=%d oversold=%d lost_fans=%d order_violations=%d bought=%d declined=%d sold_out_fans=%d errors=%d retries=%d join_p50_ms=%d join_p99_ms=%d duration_s=%.1f",
		r.Fans, r.Joined, r.Admitted, r.Seats, r.Sold, r.Oversold, r.LostFans, r.OrderViolations, r.Bought, r.Declined,
		r.SoldOutFans, r.Errors, r.Retries, r.JoinP50.Milliseconds(), r.JoinP99.Milliseconds(), r.Duration.Seconds())
}

// OK reports whether every invariant held, no fan met an error, and every
// place was sold unless no fan was left who wanted one.
func (r Result) OK() bool {
	if r.Oversold != 0 || r.LostFans != 0 || r.OrderViolations != 0 || r.Errors != 0 {
		return false
	}
	return r.Sold == r.Seats || r.Unserved == 0
}

// Check compares what the fans were told with the database and the queue.
func Check(ctx context.Context, pool *pgxpool.Pool, base, sale string, told []*Told, elapsed time.Duration) (Result, error) {
	r := Result{Fans: len(told), Duration: elapsed}
	var joins []time.Duration
	toldSeats := map[string]string{}
	bySession := map[string]*Told{}
	for _, t := range told {
		r.Retries += t.Retries
		r.Declined += t.Declined
		if t.Joined {
			r.Joined++
			joins = append(joins, t.JoinLatency)
			bySession[t.Session] = t
		}
		if t.Admitted {
			r.Admitted++
		}
		switch t.Outcome {
		case "bought":
			r.Bought++
		case "sold_out", "closed":
			r.SoldOutFans++
			r.Unserved++
		case "gave_up":
			r.Unserved++
		case "error":
			r.Errors++
			if len(r.Samples) < 5 {
				r.Samples = append(r.Samples, t.Err.Error())
			}
		}
		if t.Order != nil {
			for _, s := range t.Order.Seats {
				if other, dup := toldSeats[s.ID]; dup {
					r.Oversold++
					r.Samples = append(r.Samples, fmt.Sprintf("seat %s told to %s and %s", s.ID, other, t.Session))
				}
				toldSeats[s.ID] = t.Session
			}
		}
	}
	sort.Slice(joins, func(i, j int) bool { return joins[i] < joins[j] })
	r.JoinP50, r.JoinP99 = percentile(joins, 0.50), percentile(joins, 0.99)

	if err := checkSeats(ctx, pool, sale, &r); err != nil {
		return r, err
	}
	if err := checkOrders(ctx, pool, sale, bySession, &r); err != nil {
		return r, err
	}
	r.LostFans = countLost(ctx, base, told)
	return r, nil
}

func checkSeats(ctx context.Context, pool *pgxpool.Pool, sale string, r *Result) error {
	err := pool.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE state = 'SOLD') FROM seats WHERE sale_id = $1`, sale).Scan(&r.Seats, &r.Sold)
	if err != nil {
		return fmt.Errorf("count seats: %w", err)
	}
	var over, orphan int
	err = pool.QueryRow(ctx, `SELECT COALESCE(sum(GREATEST(0, sold - capacity)), 0) FROM (
			SELECT c.capacity, (SELECT count(*) FROM seats s WHERE s.sale_id = c.sale_id AND s.section_id = c.id AND s.state = 'SOLD') AS sold
			FROM sections c WHERE c.sale_id = $1) x`, sale).Scan(&over)
	if err != nil {
		return fmt.Errorf("check sections: %w", err)
	}
	err = pool.QueryRow(ctx, `SELECT count(*) FROM seats s LEFT JOIN orders o ON o.hold_id = s.hold_id AND o.state = 'PAID'
		WHERE s.sale_id = $1 AND s.state = 'SOLD' AND o.id IS NULL`, sale).Scan(&orphan)
	if err != nil {
		return fmt.Errorf("check sold seats: %w", err)
	}
	r.Oversold += over + orphan
	return nil
}

func checkOrders(ctx context.Context, pool *pgxpool.Pool, sale string, bySession map[string]*Told, r *Result) error {
	rows, err := pool.Query(ctx, `SELECT o.id, o.session, COALESCE(string_agg(s.id, ',' ORDER BY s.id), '')
		FROM orders o LEFT JOIN seats s ON s.hold_id = o.hold_id AND s.state = 'SOLD'
		WHERE o.sale_id = $1 AND o.state = 'PAID' GROUP BY o.id, o.session`, sale)
	if err != nil {
		return fmt.Errorf("list orders: %w", err)
	}
	defer rows.Close()
	inDB := map[string]bool{}
	for rows.Next() {
		var id, session, seatList string
		if err := rows.Scan(&id, &session, &seatList); err != nil {
			return fmt.Errorf("list orders: %w", err)
		}
		inDB[id] = true
		t := bySession[session]
		if t == nil {
			continue // an order of someone outside this run
		}
		if t.Order == nil || t.Order.ID != id {
			r.OrderViolations++
			r.Samples = append(r.Samples, fmt.Sprintf("paid order %s of %s was never told", id, session))
			continue
		}
		var told []string
		for _, s := range t.Order.Seats {
			told = append(told, s.ID)
		}
		slices.Sort(told)
		if strings.Join(told, ",") != seatList {
			r.OrderViolations++
			r.Samples = append(r.Samples, fmt.Sprintf("order %s: told seats %v, database has %s", id, told, seatList))
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("list orders: %w", err)
	}
	for _, t := range bySession {
		if t.Order != nil && !inDB[t.Order.ID] {
			r.OrderViolations++
			r.Samples = append(r.Samples, fmt.Sprintf("order %s told to %s is not paid in the database", t.Order.ID, t.Session))
		}
	}
	return nil
}

// countLost asks the edge for every acknowledged fan's status; a fan the
// queue does not know has lost their place.
func countLost(ctx context.Context, base string, told []*Told) int {
	hc := &http.Client{Timeout: 30 * time.Second}
	var mu sync.Mutex
	lost := 0
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i, t := range told {
		if !t.Joined {
			continue
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			c := client.New(base, hc)
			c.ForwardedFor = fmt.Sprintf("198.19.%d.%d", (i/250)%256, 1+i%250)
			st, err := c.Status(ctx, t.Ticket)
			if err != nil || st.State == "unknown" {
				mu.Lock()
				lost++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return lost
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[min(len(sorted)-1, int(float64(len(sorted))*p))]
}
