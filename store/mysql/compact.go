package mysql

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/store"
)

// compactBatch bounds one compaction transaction: Galera certifies a transaction
// as one write set (large ones stall the cluster), and a short transaction holds
// its locks briefly.
const compactBatch = 2000

// Compact implements store.Housekeeping as the SQLite store does, in batches of
// compactBatch rows, each batch its own transaction: an interrupted compaction
// has removed whole incidents (with their steps and events) or nothing of them.
func (s *DB) Compact(ctx context.Context, r store.Retention, now time.Time) (store.Compacted, error) {
	var out store.Compacted
	if err := s.compactIncidents(ctx, r, now, &out); err != nil {
		return out, fmt.Errorf("compact %s: %w", s.name, err)
	}
	if err := s.compactEvents(ctx, r, now, &out); err != nil {
		return out, fmt.Errorf("compact %s: %w", s.name, err)
	}
	return out, nil
}

// closedCut is the closed time before which closed incidents go (0: none go).
func (s *DB) closedCut(ctx context.Context, r store.Retention, now time.Time) (int64, error) {
	cut := int64(0)
	if r.ClosedMaxAge > 0 {
		cut = now.Add(-r.ClosedMaxAge).UnixNano()
	}
	if r.ClosedMax > 0 {
		var c int64
		err := s.db.QueryRowContext(ctx, "SELECT closed FROM incidents WHERE closed > 0 ORDER BY closed DESC, id DESC LIMIT 1 OFFSET ?", r.ClosedMax-1).Scan(&c)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return 0, err
		}
		cut = max(cut, c)
	}
	return cut, nil
}

func (s *DB) compactIncidents(ctx context.Context, r store.Retention, now time.Time, out *store.Compacted) error {
	cut, err := s.closedCut(ctx, r, now)
	if err != nil || cut == 0 {
		return err
	}
	for {
		var batch store.Compacted
		err := s.tx(ctx, func(tx *sql.Tx) error {
			batch = store.Compacted{}
			// Never a subject's last closed incident: the planner compares a relapse with it.
			rows, err := tx.QueryContext(ctx, `SELECT i.id FROM incidents i WHERE i.closed > 0 AND i.closed < ?
				AND i.closed < (SELECT MAX(j.closed) FROM incidents j WHERE j.kind = i.kind AND j.subject = i.subject AND j.closed > 0)
				ORDER BY i.id LIMIT ?`, cut, compactBatch)
			if err != nil {
				return err
			}
			ids, err := scanIDs(rows)
			if err != nil || len(ids) == 0 {
				return err
			}
			in := "(" + strings.Join(ids, ",") + ")"
			for _, q := range []struct {
				sql string
				n   *int64
			}{
				{"DELETE FROM steps WHERE incident IN " + in, &batch.Steps},
				{"DELETE FROM events WHERE incident IN " + in, &batch.Events},
				{"DELETE FROM incidents WHERE id IN " + in, &batch.Incidents},
			} {
				res, err := tx.ExecContext(ctx, q.sql)
				if err != nil {
					return err
				}
				*q.n, _ = res.RowsAffected()
			}
			return nil
		})
		if err != nil {
			return err
		}
		out.Steps += batch.Steps
		out.Events += batch.Events
		out.Incidents += batch.Incidents
		if batch.Incidents < compactBatch {
			return nil
		}
	}
}

func (s *DB) compactEvents(ctx context.Context, r store.Retention, now time.Time, out *store.Compacted) error {
	var cutAt, cutID int64
	if r.EventsMaxAge > 0 {
		cutAt = now.Add(-r.EventsMaxAge).UnixNano()
	}
	if r.EventsMax > 0 {
		err := s.db.QueryRowContext(ctx, "SELECT id FROM events ORDER BY id DESC LIMIT 1 OFFSET ?", r.EventsMax-1).Scan(&cutID)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
	}
	if cutAt == 0 && cutID == 0 {
		return nil
	}
	for {
		var n int64
		err := s.tx(ctx, func(tx *sql.Tx) error {
			res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE (at < ? OR id < ?)
				AND (incident = 0 OR incident NOT IN (SELECT id FROM incidents WHERE closed = 0)) ORDER BY id LIMIT ?`, cutAt, cutID, compactBatch)
			if err != nil {
				return err
			}
			n, err = res.RowsAffected()
			return err
		})
		if err != nil {
			return err
		}
		out.Events += n
		if n < compactBatch {
			return nil
		}
	}
}

func scanIDs(rows *sql.Rows) ([]string, error) {
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		ids = append(ids, fmt.Sprint(id))
	}
	return ids, rows.Err()
}

// Size implements store.Housekeeping: data and indexes of the database's tables,
// as the server reports them (InnoDB's figures are estimates, updated lazily).
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
		{"SELECT COALESCE(SUM(data_length + index_length), 0) FROM information_schema.tables WHERE table_schema = DATABASE()", &out.Bytes},
	} {
		if err := s.db.QueryRowContext(ctx, q.sql).Scan(q.n); err != nil {
			return store.Size{}, fmt.Errorf("size of %s: %w", s.name, err)
		}
	}
	return out, nil
}
