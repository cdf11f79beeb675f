package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/vigil-ha/vigil/store"
)

// Compact implements store.Housekeeping. Closed incidents go (with their steps and
// events) once older than ClosedMaxAge or beyond the ClosedMax newest, except the
// last closed one of each subject; events go once older than EventsMaxAge or
// beyond the EventsMax newest, except those of an open incident. One transaction:
// an interrupted compaction removes nothing.
func (s *DB) Compact(ctx context.Context, r store.Retention, now time.Time) (store.Compacted, error) {
	var out store.Compacted
	err := s.tx(ctx, func(tx *sql.Tx) error {
		// The cut-offs, as the closed time / ID of the oldest record kept by count.
		closedCut := int64(0) // incidents closed before it go
		if r.ClosedMaxAge > 0 {
			closedCut = now.Add(-r.ClosedMaxAge).UnixNano()
		}
		if r.ClosedMax > 0 {
			var c int64
			err := tx.QueryRowContext(ctx, "SELECT closed FROM incidents WHERE closed > 0 ORDER BY closed DESC, id DESC LIMIT 1 OFFSET ?", r.ClosedMax-1).Scan(&c)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
			closedCut = max(closedCut, c)
		}
		if closedCut > 0 {
			if _, err := tx.ExecContext(ctx, `CREATE TEMP TABLE IF NOT EXISTS doomed (id INTEGER PRIMARY KEY)`); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `DELETE FROM doomed`); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO doomed (id) SELECT i.id FROM incidents i WHERE i.closed > 0 AND i.closed < ?
				AND i.closed < (SELECT MAX(j.closed) FROM incidents j WHERE j.kind = i.kind AND j.subject = i.subject AND j.closed > 0)`, closedCut); err != nil {
				return err
			}
			for _, q := range []struct {
				sql string
				n   *int64
			}{
				{"DELETE FROM steps WHERE incident IN (SELECT id FROM doomed)", &out.Steps},
				{"DELETE FROM events WHERE incident IN (SELECT id FROM doomed)", &out.Events},
				{"DELETE FROM incidents WHERE id IN (SELECT id FROM doomed)", &out.Incidents},
			} {
				res, err := tx.ExecContext(ctx, q.sql)
				if err != nil {
					return err
				}
				n, _ := res.RowsAffected()
				*q.n += n
			}
		}
		var evCutAt, evCutID int64
		if r.EventsMaxAge > 0 {
			evCutAt = now.Add(-r.EventsMaxAge).UnixNano()
		}
		if r.EventsMax > 0 {
			err := tx.QueryRowContext(ctx, "SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?", r.EventsMax-1).Scan(&evCutID)
			if err != nil && !errors.Is(err, sql.ErrNoRows) {
				return err
			}
		}
		if evCutAt > 0 || evCutID > 0 {
			res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE (at < ? OR id < ?)
				AND (incident = 0 OR incident NOT IN (SELECT id FROM incidents WHERE closed = 0))`, evCutAt, evCutID)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			out.Events += n
		}
		return nil
	})
	if err != nil {
		return store.Compacted{}, fmt.Errorf("compact the store %s: %w", s.path, err)
	}
	return out, nil
}

// Size implements store.Housekeeping: the file and its write-ahead log.
func (s *DB) Size(ctx context.Context) (store.Size, error) {
	var out store.Size
	for _, q := range []struct {
		sql string
		n   *int64
	}{
		{"SELECT COUNT(*) FROM events", &out.Events},
		{"SELECT COUNT(*) FROM incidents", &out.Incidents},
		{"SELECT COUNT(*) FROM incidents WHERE closed = 0", &out.OpenIncidents},
		{"SELECT COUNT(*) FROM steps", &out.Steps},
	} {
		if err := s.db.QueryRowContext(ctx, q.sql).Scan(q.n); err != nil {
			return store.Size{}, fmt.Errorf("size of the store %s: %w", s.path, err)
		}
	}
	for _, f := range []string{s.path, s.path + "-wal"} {
		if fi, err := os.Stat(f); err == nil {
			out.Bytes += fi.Size()
		}
	}
	return out, nil
}
