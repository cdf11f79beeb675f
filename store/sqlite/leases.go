package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

// Exclusive implements store.Leadership: an SQLite file is opened by one process at
// a time (its lock file), so that process may take every lease at once.
func (s *DB) Exclusive() bool { return true }

const leaseCols = "shard, holder, addr, epoch, version, ttl, renewed, since"

func scanLease(row interface{ Scan(...any) error }) (store.Lease, error) {
	var l store.Lease
	var ttl, renewed, since int64
	if err := row.Scan(&l.Shard, &l.Holder, &l.Addr, &l.Epoch, &l.Version, &ttl, &renewed, &since); err != nil {
		return store.Lease{}, err
	}
	l.TTL, l.Renewed, l.Since = time.Duration(ttl), tm(renewed), tm(since)
	return l, nil
}

// TakeLease implements store.Leadership.
func (s *DB) TakeLease(ctx context.Context, req store.LeaseRequest) (store.Lease, error) {
	if req.Shard == "" {
		req.Shard = model.DefaultShard
	}
	var out store.Lease
	err := s.tx(ctx, func(tx *sql.Tx) error {
		cur, err := scanLease(tx.QueryRowContext(ctx, "SELECT "+leaseCols+" FROM leases WHERE shard = ?", req.Shard))
		switch {
		case errors.Is(err, sql.ErrNoRows):
			if req.Seen != 0 && !req.Force {
				return fmt.Errorf("shard %s has no lease at version %d: %w", req.Shard, req.Seen, store.ErrStale)
			}
		case err != nil:
			return err
		case !req.Force && cur.Version != req.Seen:
			return fmt.Errorf("shard %s: lease moved on (version %d, seen %d; held by %q): %w", req.Shard, cur.Version, req.Seen, cur.Holder, store.ErrStale)
		}
		var epoch int64
		if err := tx.QueryRowContext(ctx, "UPDATE meta SET value = value + 1 WHERE key = 'epoch' RETURNING value").Scan(&epoch); err != nil {
			return err
		}
		out = store.Lease{Shard: req.Shard, Holder: req.Holder, Addr: req.Addr, Epoch: epoch, Version: cur.Version + 1,
			TTL: req.TTL, Renewed: req.Now.UTC(), Since: req.Now.UTC()}
		if _, err := tx.ExecContext(ctx, `INSERT INTO leases (`+leaseCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (shard) DO UPDATE SET holder = excluded.holder, addr = excluded.addr, epoch = excluded.epoch,
			version = excluded.version, ttl = excluded.ttl, renewed = excluded.renewed, since = excluded.since`,
			out.Shard, out.Holder, out.Addr, out.Epoch, out.Version, int64(out.TTL), ns(out.Renewed), ns(out.Since)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, "UPDATE incidents SET epoch = ? WHERE closed = 0 AND shard = ?", epoch, req.Shard)
		return err
	})
	if err != nil {
		return store.Lease{}, fmt.Errorf("take the lease of shard %s: %w", req.Shard, err)
	}
	return out, nil
}

// RenewLease implements store.Leadership.
func (s *DB) RenewLease(ctx context.Context, shard, holder string, epoch int64, now time.Time) (store.Lease, error) {
	var out store.Lease
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE leases SET version = version + 1, renewed = ? WHERE shard = ? AND holder = ? AND epoch = ?",
			ns(now), shard, holder, epoch)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("shard %s is no longer led by %s under epoch %d: %w", shard, holder, epoch, store.ErrStale)
		}
		out, err = scanLease(tx.QueryRowContext(ctx, "SELECT "+leaseCols+" FROM leases WHERE shard = ?", shard))
		return err
	})
	if err != nil {
		return store.Lease{}, fmt.Errorf("renew the lease of shard %s: %w", shard, err)
	}
	return out, nil
}

// ReleaseLease implements store.Leadership.
func (s *DB) ReleaseLease(ctx context.Context, shard, holder string, epoch int64) error {
	res, err := s.db.ExecContext(ctx, "UPDATE leases SET holder = '', addr = '', version = version + 1 WHERE shard = ? AND holder = ? AND epoch = ?",
		shard, holder, epoch)
	if err != nil {
		return fmt.Errorf("release the lease of shard %s: %w", shard, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("release the lease of shard %s: not led by %s under epoch %d: %w", shard, holder, epoch, store.ErrStale)
	}
	return nil
}

// Leases implements store.Leadership.
func (s *DB) Leases(ctx context.Context) ([]store.Lease, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+leaseCols+" FROM leases ORDER BY shard")
	if err != nil {
		return nil, fmt.Errorf("read leases: %w", err)
	}
	defer rows.Close()
	var out []store.Lease
	for rows.Next() {
		l, err := scanLease(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, l)
	}
	return out, rows.Err()
}

// CheckLease implements store.Leadership.
func (s *DB) CheckLease(ctx context.Context, epoch int64) error {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM leases WHERE epoch = ? AND holder != ''", epoch).Scan(&n); err != nil {
		return fmt.Errorf("check the lease of epoch %d: %w", epoch, err)
	}
	if n == 0 {
		return fmt.Errorf("no shard is led under epoch %d any more: %w", epoch, store.ErrStale)
	}
	return nil
}

// Heartbeat implements store.Leadership.
func (s *DB) Heartbeat(ctx context.Context, r store.Replica) error {
	if r.PID == 0 {
		r.PID = os.Getpid()
	}
	if r.Host == "" {
		r.Host, _ = os.Hostname()
	}
	_, err := s.db.ExecContext(ctx, `INSERT INTO replicas (id, addr, host, pid, version, seen, started) VALUES (?, ?, ?, ?, 1, ?, ?)
		ON CONFLICT (id) DO UPDATE SET addr = excluded.addr, host = excluded.host, pid = excluded.pid,
		version = replicas.version + 1, seen = excluded.seen, started = excluded.started`,
		r.ID, r.Addr, r.Host, r.PID, ns(r.Seen), ns(r.Started))
	if err != nil {
		return fmt.Errorf("record replica %s: %w", r.ID, err)
	}
	return nil
}

// Replicas implements store.Leadership.
func (s *DB) Replicas(ctx context.Context) ([]store.Replica, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, addr, host, pid, version, seen, started FROM replicas ORDER BY id")
	if err != nil {
		return nil, fmt.Errorf("read replicas: %w", err)
	}
	defer rows.Close()
	var out []store.Replica
	for rows.Next() {
		var r store.Replica
		var seen, started int64
		if err := rows.Scan(&r.ID, &r.Addr, &r.Host, &r.PID, &r.Version, &seen, &started); err != nil {
			return nil, err
		}
		r.Seen, r.Started = tm(seen), tm(started)
		out = append(out, r)
	}
	return out, rows.Err()
}

// RemoveReplica implements store.Leadership.
func (s *DB) RemoveReplica(ctx context.Context, id string) error {
	if _, err := s.db.ExecContext(ctx, "DELETE FROM replicas WHERE id = ?", id); err != nil {
		return fmt.Errorf("forget replica %s: %w", id, err)
	}
	return nil
}

// PublishShard implements store.Leadership.
func (s *DB) PublishShard(ctx context.Context, c store.ShardCount) error {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM leases WHERE shard = ? AND epoch = ? AND holder != ''", c.Shard, c.Epoch).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("shard %s is not led under epoch %d: %w", c.Shard, c.Epoch, store.ErrStale)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO shard_counts (shard, epoch, hosts, failed, at) VALUES (?, ?, ?, ?, ?)
			ON CONFLICT (shard) DO UPDATE SET epoch = excluded.epoch, hosts = excluded.hosts, failed = excluded.failed, at = excluded.at`,
			c.Shard, c.Epoch, c.Hosts, c.Failed, ns(c.At))
		return err
	})
	if err != nil {
		return fmt.Errorf("publish the host counts of shard %s: %w", c.Shard, err)
	}
	return nil
}

// ShardCounts implements store.Leadership.
func (s *DB) ShardCounts(ctx context.Context) ([]store.ShardCount, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT shard, epoch, hosts, failed, at FROM shard_counts ORDER BY shard")
	if err != nil {
		return nil, fmt.Errorf("read shard counts: %w", err)
	}
	defer rows.Close()
	var out []store.ShardCount
	for rows.Next() {
		var c store.ShardCount
		var at int64
		if err := rows.Scan(&c.Shard, &c.Epoch, &c.Hosts, &c.Failed, &at); err != nil {
			return nil, err
		}
		c.At = tm(at)
		out = append(out, c)
	}
	return out, rows.Err()
}
