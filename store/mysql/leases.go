package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"time"

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

// Exclusive implements store.Leadership: every replica opens the same database.
func (s *DB) Exclusive() bool { return false }

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
		var err error
		out, err = takeLease(ctx, tx, req)
		return err
	})
	if err != nil {
		return store.Lease{}, fmt.Errorf("take the lease of shard %s: %w", req.Shard, err)
	}
	return out, nil
}

// takeLease writes the lease row first, by a statement that matches only the
// version the caller saw (an INSERT for a shard never led, whose duplicate key
// means another taker was first): of racing takers exactly one changes the row,
// the others wait for its lock and then match nothing. Then the epoch counter (a
// row update too) and the claim of the shard's open incidents.
func takeLease(ctx context.Context, tx *sql.Tx, req store.LeaseRequest) (store.Lease, error) {
	now := ns(req.Now)
	var res sql.Result
	var err error
	switch {
	case req.Force:
		res, err = tx.ExecContext(ctx, `INSERT INTO leases (shard, holder, addr, epoch, version, ttl, renewed, since) VALUES (?, ?, ?, 0, 1, ?, ?, ?)
			ON DUPLICATE KEY UPDATE holder = VALUES(holder), addr = VALUES(addr), version = version + 1, ttl = VALUES(ttl),
			renewed = VALUES(renewed), since = VALUES(since)`, req.Shard, req.Holder, req.Addr, int64(req.TTL), now, now)
	case req.Seen == 0:
		res, err = tx.ExecContext(ctx, `INSERT INTO leases (shard, holder, addr, epoch, version, ttl, renewed, since) VALUES (?, ?, ?, 0, 1, ?, ?, ?)`,
			req.Shard, req.Holder, req.Addr, int64(req.TTL), now, now)
		if duplicate(err) {
			return store.Lease{}, fmt.Errorf("shard %s: another replica took its first lease: %w", req.Shard, store.ErrStale)
		}
	default:
		res, err = tx.ExecContext(ctx, `UPDATE leases SET holder = ?, addr = ?, version = version + 1, ttl = ?, renewed = ?, since = ?
			WHERE shard = ? AND version = ?`, req.Holder, req.Addr, int64(req.TTL), now, now, req.Shard, req.Seen)
	}
	if err != nil {
		return store.Lease{}, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return store.Lease{}, fmt.Errorf("shard %s: lease no longer at version %d: %w", req.Shard, req.Seen, store.ErrStale)
	}
	res, err = tx.ExecContext(ctx, "UPDATE meta SET value = LAST_INSERT_ID(value + 1) WHERE name = 'epoch'")
	if err != nil {
		return store.Lease{}, err
	}
	epoch, err := res.LastInsertId()
	if err != nil || epoch == 0 {
		return store.Lease{}, fmt.Errorf("next epoch: %d, %v", epoch, err)
	}
	if _, err := tx.ExecContext(ctx, "UPDATE leases SET epoch = ? WHERE shard = ?", epoch, req.Shard); err != nil {
		return store.Lease{}, err
	}
	if _, err := tx.ExecContext(ctx, "UPDATE incidents SET epoch = ? WHERE shard = ? AND closed = 0", epoch, req.Shard); err != nil {
		return store.Lease{}, err
	}
	return scanLease(tx.QueryRowContext(ctx, "SELECT "+leaseCols+" FROM leases WHERE shard = ?", req.Shard))
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
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, "UPDATE leases SET holder = '', addr = '', version = version + 1 WHERE shard = ? AND holder = ? AND epoch = ?",
			shard, holder, epoch)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("not led by %s under epoch %d: %w", holder, epoch, store.ErrStale)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("release the lease of shard %s: %w", shard, err)
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
	err := s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO replicas (id, addr, host, pid, version, seen, started) VALUES (?, ?, ?, ?, 1, ?, ?)
			ON DUPLICATE KEY UPDATE addr = VALUES(addr), host = VALUES(host), pid = VALUES(pid),
			version = version + 1, seen = VALUES(seen), started = VALUES(started)`,
			r.ID, r.Addr, r.Host, r.PID, ns(r.Seen), ns(r.Started))
		return err
	})
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
		if err := tx.QueryRowContext(ctx, "SELECT COUNT(*) FROM leases WHERE shard = ? AND epoch = ? AND holder != '' LOCK IN SHARE MODE", c.Shard, c.Epoch).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("shard %s is not led under epoch %d: %w", c.Shard, c.Epoch, store.ErrStale)
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO shard_counts (shard, epoch, hosts, failed, at) VALUES (?, ?, ?, ?, ?)
			ON DUPLICATE KEY UPDATE epoch = VALUES(epoch), hosts = VALUES(hosts), failed = VALUES(failed), at = VALUES(at)`,
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
