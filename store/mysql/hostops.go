package mysql

import (
	"context"
	"fmt"
	"time"

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

// HostMaintenance implements store.Store.
func (s *DB) HostMaintenance(ctx context.Context) (map[string]model.Maintenance, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT host, reason, since FROM host_maintenance")
	if err != nil {
		return nil, fmt.Errorf("read the hosts in maintenance: %w", err)
	}
	defer rows.Close()
	out := map[string]model.Maintenance{}
	for rows.Next() {
		var m model.Maintenance
		var since int64
		if err := rows.Scan(&m.Host, &m.Reason, &since); err != nil {
			return nil, fmt.Errorf("read the hosts in maintenance: %w", err)
		}
		m.Since = tm(since)
		out[m.Host] = m
	}
	return out, rows.Err()
}

// SetHostMaintenance implements store.Store.
func (s *DB) SetHostMaintenance(ctx context.Context, m model.Maintenance) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO host_maintenance (host, reason, since) VALUES (?, ?, ?)
		ON DUPLICATE KEY UPDATE reason = VALUES(reason), since = VALUES(since)`, m.Host, m.Reason, ns(m.Since)); err != nil {
		return fmt.Errorf("record host %s in maintenance: %w", m.Host, err)
	}
	return nil
}

// ClearHostMaintenance implements store.Store.
func (s *DB) ClearHostMaintenance(ctx context.Context, host string) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM host_maintenance WHERE host = ?", host)
	if err != nil {
		return fmt.Errorf("end the maintenance of host %s: %w", host, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("host %s is not in maintenance: %w", host, store.ErrNotFound)
	}
	return nil
}

// HostReturns implements store.Store.
func (s *DB) HostReturns(ctx context.Context) (map[string]time.Time, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT host, at FROM host_returns")
	if err != nil {
		return nil, fmt.Errorf("read the host returns: %w", err)
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var h string
		var at int64
		if err := rows.Scan(&h, &at); err != nil {
			return nil, fmt.Errorf("read the host returns: %w", err)
		}
		out[h] = tm(at)
	}
	return out, rows.Err()
}

// RecordHostReturn implements store.Store.
func (s *DB) RecordHostReturn(ctx context.Context, host string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO host_returns (host, at) VALUES (?, ?)
		ON DUPLICATE KEY UPDATE at = VALUES(at)`, host, ns(at)); err != nil {
		return fmt.Errorf("record the return of host %s: %w", host, err)
	}
	return nil
}
