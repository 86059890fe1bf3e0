package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/taquilla/taquilla/shared/wire"
)

// addEvent writes an outbox event in the caller's transaction. The id is
// derived from the change itself, so a rerun of the transaction writes the
// same id and a consumer that de-duplicates by id sees each change once.
func addEvent(ctx context.Context, tx pgx.Tx, ev wire.InventoryEvent) error {
	args, err := eventArgs(ev)
	if err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, insertEvent, args...); err != nil {
		return fmt.Errorf("insert %s event: %w", ev.Kind, err)
	}
	return nil
}

// insertEvent is a plain INSERT: each change happens once, and ON CONFLICT
// would make PostgreSQL read the index page under SERIALIZABLE, so
// concurrent sales writing events would abort each other.
const insertEvent = `INSERT INTO outbox (id, sale_id, kind, payload, created_at) VALUES ($1, $2, $3, $4, $5)`

// eventArgs returns the arguments of insertEvent for ev.
func eventArgs(ev wire.InventoryEvent) ([]any, error) {
	payload, err := eventPayload(ev)
	if err != nil {
		return nil, err
	}
	return []any{ev.ID, ev.SaleID, ev.Kind, payload, ev.At}, nil
}

// eventPayload returns the outbox payload of ev: its JSON, versioned.
func eventPayload(ev wire.InventoryEvent) (string, error) {
	ev.V = wire.Version
	body, err := json.Marshal(ev)
	if err != nil {
		return "", fmt.Errorf("encode %s event: %w", ev.Kind, err)
	}
	return string(body), nil
}

// PendingEvent is an outbox row not yet published.
type PendingEvent struct {
	ID      string
	SaleID  string
	Kind    string
	Payload []byte
}

// PendingEvents returns up to limit unpublished events, oldest first.
func (db *DB) PendingEvents(ctx context.Context, limit int) ([]PendingEvent, error) {
	var out []PendingEvent
	err := db.ReadTx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id, sale_id, kind, payload FROM outbox WHERE published_at IS NULL ORDER BY created_at, id LIMIT $1`, limit)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (PendingEvent, error) {
			var e PendingEvent
			var payload string
			err := r.Scan(&e.ID, &e.SaleID, &e.Kind, &payload)
			e.Payload = []byte(payload)
			return e, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("list pending events: %w", err)
	}
	return out, nil
}

// MarkPublished records that events reached the stream. It runs in READ
// COMMITTED: publishing twice is harmless, because the stream and its
// consumers drop repeats by id.
func (db *DB) MarkPublished(ctx context.Context, ids []string, now time.Time) error {
	err := db.readCommitted(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `UPDATE outbox SET published_at = $2 WHERE id = ANY($1) AND published_at IS NULL`, ids, now)
		return err
	})
	if err != nil {
		return fmt.Errorf("mark events published: %w", err)
	}
	return nil
}
