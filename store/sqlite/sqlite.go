package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/pressly/goose/v3"
	_ "modernc.org/sqlite" // the pure-Go driver

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
	"github.com/vigil-ha/vigil/store/migrate"
)

// DB is a Store on one SQLite file, holding its lease while open.
type DB struct {
	db    *sql.DB
	path  string
	lease *lease

	closeOnce sync.Once
	closeErr  error
}

var _ store.Store = (*DB)(nil)

// Open opens the database at path as this process: OpenAs with the owner's record
// filled in (PID, host name, now).
func Open(ctx context.Context, path string) (*DB, error) {
	return OpenAs(ctx, path, store.Owner{})
}

// dsn is the driver's name for the store at path with these pragmas. It is a URI
// filename: SQLite reads '?' as the start of the parameters and '#' as the end of
// the name, and decodes %HH. Escaped, a path holding them opens the file it names
// (a test's directory named after a subtest with '#' opened a shared /tmp file
// instead).
func dsn(path string, pragmas ...string) string {
	q := url.Values{}
	for _, p := range pragmas {
		q.Add("_pragma", p)
	}
	return "file:" + strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path) + "?" + q.Encode()
}

// OpenAs takes the database's lease for owner (a zero PID, host or start is this
// process's), then opens the database (creating it if needed) and migrates its
// schema. While a live process holds the lease (another process, or another open
// DB on the same file in this one) it fails with a *store.HeldError naming that
// owner, having read and written nothing but the lock file.
func OpenAs(ctx context.Context, path string, owner store.Owner) (*DB, error) {
	name, err := canonical(path)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	l, err := acquire(name, owner)
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", dsn(path, "journal_mode(WAL)", "busy_timeout(10000)", "foreign_keys(1)", "synchronous(NORMAL)"))
	if err != nil {
		l.release()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	db.SetMaxOpenConns(1) // one writer; SQLite serializes writes anyway
	s := &DB{db: db, path: path, lease: l}
	if err := s.migrate(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

// Owner is the record this DB's lease holds: who owns the database.
func (s *DB) Owner() store.Owner { return s.lease.holder() }

// SetAddr records the owner's API address in its record, once it is bound.
func (s *DB) SetAddr(addr string) error { return s.lease.setAddr(addr) }

//go:embed migrations/*.sql
var migrationFiles embed.FS

// The PRAGMA user_version scheme (before goose) counted migrations 1..legacyLast;
// goose now records them, and user_version is set to gooseMarker: a binary of the
// old scheme refuses the file as "newer than this binary knows: upgrade vigil"
// instead of running its first migration again.
const (
	legacyLast  = 9
	gooseMarker = 1000
)

func (s *DB) migrate(ctx context.Context) error {
	var version int
	if err := s.db.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > legacyLast && version != gooseMarker {
		return fmt.Errorf("schema version %d is newer than this binary knows: upgrade vigil", version)
	}
	if version > 0 && version <= legacyLast {
		if err := migrate.Adopt(ctx, s.db, goose.DialectSQLite3, int64(version)); err != nil {
			return fmt.Errorf("adopt the schema at version %d: %w", version, err)
		}
	}
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	if err := migrate.Up(ctx, s.db, goose.DialectSQLite3, files, s.path); err != nil {
		return err
	}
	if _, err := s.db.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", gooseMarker)); err != nil {
		return fmt.Errorf("mark the schema as migrated by goose: %w", err)
	}
	return nil
}

// Close implements store.Store: it closes the database, then releases the lease
// (never the other way round: no write after the lease is gone). A second Close
// does nothing.
func (s *DB) Close() error {
	s.closeOnce.Do(func() {
		s.closeErr = errors.Join(s.db.Close(), s.lease.release())
	})
	return s.closeErr
}

func ns(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func tm(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

func (s *DB) tx(ctx context.Context, f func(*sql.Tx) error) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// checkEpoch fails with ErrStale unless incident id is owned by epoch.
func checkEpoch(ctx context.Context, tx *sql.Tx, id, epoch int64) error {
	var cur int64
	err := tx.QueryRowContext(ctx, "SELECT epoch FROM incidents WHERE id = ?", id).Scan(&cur)
	if errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("incident %d: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return err
	}
	if cur != epoch {
		return fmt.Errorf("incident %d owned by epoch %d, write from %d: %w", id, cur, epoch, store.ErrStale)
	}
	return nil
}

// CreateCluster implements store.Store.
func (s *DB) CreateCluster(ctx context.Context, c model.Cluster) error {
	members, _ := json.Marshal(c.Members)
	_, err := s.db.ExecContext(ctx, "INSERT INTO clusters (name, members, desired, policy, source, priority) VALUES (?, ?, ?, ?, ?, ?)",
		c.Name, string(members), c.Desired, c.Policy, sourceColumn(c.Source), c.Priority)
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return fmt.Errorf("cluster %q: %w", c.Name, store.ErrExists)
	}
	if err != nil {
		return fmt.Errorf("create cluster %q: %w", c.Name, err)
	}
	return nil
}

// UpdateCluster implements store.Store.
func (s *DB) UpdateCluster(ctx context.Context, c model.Cluster) error {
	members, _ := json.Marshal(c.Members)
	res, err := s.db.ExecContext(ctx, "UPDATE clusters SET members = ?, desired = ?, policy = ?, source = ?, priority = ? WHERE name = ?",
		string(members), c.Desired, c.Policy, sourceColumn(c.Source), c.Priority, c.Name)
	if err != nil {
		return fmt.Errorf("update cluster %q: %w", c.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("cluster %q: %w", c.Name, store.ErrNotFound)
	}
	return nil
}

// sourceColumn is a cluster's source as stored: ” for a list of IDs.
func sourceColumn(src *model.ClusterSource) string {
	if src.Explicit() {
		return ""
	}
	b, _ := json.Marshal(src)
	return string(b)
}

// DeleteCluster implements store.Store.
func (s *DB) DeleteCluster(ctx context.Context, name string) error {
	res, err := s.db.ExecContext(ctx, "DELETE FROM clusters WHERE name = ?", name)
	if err != nil {
		return fmt.Errorf("delete cluster %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("cluster %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// Clusters implements store.Store.
func (s *DB) Clusters(ctx context.Context) ([]model.Cluster, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT name, members, desired, policy, source, priority FROM clusters ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list clusters: %w", err)
	}
	defer rows.Close()
	var out []model.Cluster
	for rows.Next() {
		var c model.Cluster
		var members, source string
		if err := rows.Scan(&c.Name, &members, &c.Desired, &c.Policy, &source, &c.Priority); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(members), &c.Members); err != nil {
			return nil, fmt.Errorf("cluster %q: members: %w", c.Name, err)
		}
		if source != "" {
			c.Source = &model.ClusterSource{}
			if err := json.Unmarshal([]byte(source), c.Source); err != nil {
				return nil, fmt.Errorf("cluster %q: source: %w", c.Name, err)
			}
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// CreateIncident implements store.Store.
func (s *DB) CreateIncident(ctx context.Context, epoch int64, in *model.Incident) error {
	if in.Shard == "" {
		in.Shard = model.DefaultShard
	}
	ev, _ := json.Marshal(in.Evidence)
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var cur int64
		err := tx.QueryRowContext(ctx, "SELECT epoch FROM leases WHERE shard = ? AND holder != ''", in.Shard).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("shard %s has no leader, write from epoch %d: %w", in.Shard, epoch, store.ErrStale)
		}
		if err != nil {
			return err
		}
		if cur != epoch {
			return fmt.Errorf("shard %s is led under epoch %d, write from %d: %w", in.Shard, cur, epoch, store.ErrStale)
		}
		return tx.QueryRowContext(ctx, `INSERT INTO incidents (kind, subject, cluster, policy, state, reason, rule, evidence, opened, updated, closed, epoch, fault, shard)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			in.Subject.Kind, in.Subject.ID, in.Cluster, in.Policy, in.State, in.Reason, in.Rule, string(ev),
			ns(in.Opened), ns(in.Updated), ns(in.Closed), epoch, in.Fault, in.Shard).Scan(&in.ID)
	})
	if err != nil {
		return fmt.Errorf("create incident for %s: %w", in.Subject, err)
	}
	in.Epoch = epoch
	return nil
}

// UpdateIncident implements store.Store.
func (s *DB) UpdateIncident(ctx context.Context, epoch int64, in model.Incident) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := checkEpoch(ctx, tx, in.ID, epoch); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, "UPDATE incidents SET state = ?, reason = ?, updated = ?, closed = ? WHERE id = ?",
			in.State, in.Reason, ns(in.Updated), ns(in.Closed), in.ID)
		return err
	})
}

// AddStep implements store.Store.
func (s *DB) AddStep(ctx context.Context, epoch int64, st *model.Step) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := checkEpoch(ctx, tx, st.Incident, epoch); err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, `INSERT INTO steps (incident, seq, action, server, host, target, hard, state, rule, error, retryable,
			planned, started, issued, finished, deadline, timeout, attempt, prior) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
			st.Incident, st.Seq, st.Action, st.Server, st.Host, st.Target, st.Hard, st.State, st.Rule, st.Error, st.Retryable,
			ns(st.Planned), ns(st.Started), ns(st.Issued), ns(st.Finished), ns(st.Deadline), int64(st.Timeout), st.Attempt, st.Prior).Scan(&st.ID)
	})
}

// UpdateStep implements store.Store.
func (s *DB) UpdateStep(ctx context.Context, epoch int64, st model.Step) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if err := checkEpoch(ctx, tx, st.Incident, epoch); err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `UPDATE steps SET state = ?, error = ?, retryable = ?, target = ?, started = ?, issued = ?,
			finished = ?, deadline = ?, prior = ? WHERE id = ? AND incident = ?`,
			st.State, st.Error, st.Retryable, st.Target, ns(st.Started), ns(st.Issued), ns(st.Finished), ns(st.Deadline), st.Prior, st.ID, st.Incident)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("step %d of incident %d: %w", st.ID, st.Incident, store.ErrNotFound)
		}
		return nil
	})
}

const incidentCols = "id, kind, subject, cluster, policy, state, reason, rule, evidence, opened, updated, closed, epoch, fault, shard"

func (s *DB) queryIncidents(ctx context.Context, where string, args ...any) ([]model.Incident, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+incidentCols+" FROM incidents "+where, args...)
	if err != nil {
		return nil, fmt.Errorf("list incidents: %w", err)
	}
	var out []model.Incident
	byID := map[int64]int{}
	for rows.Next() {
		var in model.Incident
		var ev string
		var opened, updated, closed int64
		if err := rows.Scan(&in.ID, &in.Subject.Kind, &in.Subject.ID, &in.Cluster, &in.Policy, &in.State, &in.Reason,
			&in.Rule, &ev, &opened, &updated, &closed, &in.Epoch, &in.Fault, &in.Shard); err != nil {
			rows.Close()
			return nil, err
		}
		_ = json.Unmarshal([]byte(ev), &in.Evidence)
		in.Opened, in.Updated, in.Closed = tm(opened), tm(updated), tm(closed)
		byID[in.ID] = len(out)
		out = append(out, in)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if len(out) == 0 {
		return out, nil
	}
	ids := make([]string, 0, len(out))
	for _, in := range out {
		ids = append(ids, fmt.Sprint(in.ID))
	}
	srows, err := s.db.QueryContext(ctx, `SELECT id, incident, seq, action, server, host, target, hard, state, rule, error, retryable,
		planned, started, issued, finished, deadline, timeout, attempt, prior FROM steps WHERE incident IN (`+strings.Join(ids, ",")+`) ORDER BY incident, seq, id`)
	if err != nil {
		return nil, fmt.Errorf("list steps: %w", err)
	}
	defer srows.Close()
	for srows.Next() {
		var st model.Step
		var planned, started, issued, finished, deadline, timeout int64
		if err := srows.Scan(&st.ID, &st.Incident, &st.Seq, &st.Action, &st.Server, &st.Host, &st.Target, &st.Hard, &st.State, &st.Rule,
			&st.Error, &st.Retryable, &planned, &started, &issued, &finished, &deadline, &timeout, &st.Attempt, &st.Prior); err != nil {
			return nil, err
		}
		st.Planned, st.Started, st.Issued, st.Finished, st.Deadline = tm(planned), tm(started), tm(issued), tm(finished), tm(deadline)
		st.Timeout = time.Duration(timeout)
		in := &out[byID[st.Incident]]
		in.Steps = append(in.Steps, st)
	}
	return out, srows.Err()
}

// OpenIncidents implements store.Store.
func (s *DB) OpenIncidents(ctx context.Context) ([]model.Incident, error) {
	return s.queryIncidents(ctx, "WHERE closed = 0 ORDER BY id")
}

// LastClosed implements store.Store.
func (s *DB) LastClosed(ctx context.Context) (map[model.Subject]model.Incident, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT i.kind, i.subject, i.state, i.reason, i.rule, i.closed, i.id FROM incidents i
		JOIN (SELECT kind, subject, MAX(closed) AS c FROM incidents WHERE closed > 0 GROUP BY kind, subject) m
		ON i.kind = m.kind AND i.subject = m.subject AND i.closed = m.c`)
	if err != nil {
		return nil, fmt.Errorf("last closed incidents: %w", err)
	}
	defer rows.Close()
	out := map[model.Subject]model.Incident{}
	for rows.Next() {
		var in model.Incident
		var closed int64
		if err := rows.Scan(&in.Subject.Kind, &in.Subject.ID, &in.State, &in.Reason, &in.Rule, &closed, &in.ID); err != nil {
			return nil, err
		}
		in.Closed = tm(closed)
		out[in.Subject] = in
	}
	return out, rows.Err()
}

// Incidents implements store.Store.
func (s *DB) Incidents(ctx context.Context, limit int) ([]model.Incident, error) {
	return s.queryIncidents(ctx, "ORDER BY id DESC LIMIT ?", limit)
}

// QueryIncidents implements store.Store.
func (s *DB) QueryIncidents(ctx context.Context, q store.IncidentQuery) ([]model.Incident, error) {
	where, args := store.IncidentWhere(q)
	return s.queryIncidents(ctx, where, args...)
}

// Incident implements store.Store.
func (s *DB) Incident(ctx context.Context, id int64) (model.Incident, error) {
	out, err := s.queryIncidents(ctx, "WHERE id = ?", id)
	if err != nil {
		return model.Incident{}, err
	}
	if len(out) == 0 {
		return model.Incident{}, fmt.Errorf("incident %d: %w", id, store.ErrNotFound)
	}
	return out[0], nil
}

// FenceDoubts implements store.Store.
func (s *DB) FenceDoubts(ctx context.Context) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT host, reason FROM fence_doubts")
	if err != nil {
		return nil, fmt.Errorf("read fence doubts: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var h, why string
		if err := rows.Scan(&h, &why); err != nil {
			return nil, err
		}
		out[h] = why
	}
	return out, rows.Err()
}

// RecordFenceDoubt implements store.Store; the first reason recorded is kept.
func (s *DB) RecordFenceDoubt(ctx context.Context, host, reason string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, "INSERT INTO fence_doubts (host, reason, since) VALUES (?, ?, ?) ON CONFLICT (host) DO NOTHING",
		host, reason, ns(at)); err != nil {
		return fmt.Errorf("record the fence doubt on %s: %w", host, err)
	}
	return nil
}

// ClearFenceDoubt implements store.Store.
func (s *DB) ClearFenceDoubt(ctx context.Context, host string) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("clear the fence doubt on %s: %w", host, err)
	}
	defer tx.Rollback()
	res, err := tx.ExecContext(ctx, "DELETE FROM fence_doubts WHERE host = ?", host)
	if err != nil {
		return fmt.Errorf("clear the fence doubt on %s: %w", host, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("host %s: no fence doubt: %w", host, store.ErrNotFound)
	}
	if _, err := tx.ExecContext(ctx, "DELETE FROM bmc_identities WHERE host = ?", host); err != nil {
		return fmt.Errorf("clear the fence doubt on %s: %w", host, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("clear the fence doubt on %s: %w", host, err)
	}
	return nil
}

// BMCIdentities implements store.Store.
func (s *DB) BMCIdentities(ctx context.Context) (map[string]string, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT host, identity FROM bmc_identities")
	if err != nil {
		return nil, fmt.Errorf("read BMC identities: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var h, id string
		if err := rows.Scan(&h, &id); err != nil {
			return nil, err
		}
		out[h] = id
	}
	return out, rows.Err()
}

// RecordBMCIdentities implements store.Store; the first identity recorded is kept.
func (s *DB) RecordBMCIdentities(ctx context.Context, ids map[string]string, at time.Time) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record BMC identities: %w", err)
	}
	defer tx.Rollback()
	for _, h := range slices.Sorted(maps.Keys(ids)) {
		if _, err := tx.ExecContext(ctx, "INSERT INTO bmc_identities (host, identity, since) VALUES (?, ?, ?) ON CONFLICT (host) DO NOTHING",
			h, ids[h], ns(at)); err != nil {
			return fmt.Errorf("record the BMC identity of %s: %w", h, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record BMC identities: %w", err)
	}
	return nil
}

// AppendEvents implements store.Store.
func (s *DB) AppendEvents(ctx context.Context, evs ...model.Event) error {
	if len(evs) == 0 {
		return nil
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		for _, e := range evs {
			if _, err := tx.ExecContext(ctx, "INSERT INTO events (at, kind, subject, incident, message) VALUES (?, ?, ?, ?, ?)",
				ns(e.At), e.Kind, e.Subject, e.Incident, e.Message); err != nil {
				return fmt.Errorf("append event: %w", err)
			}
		}
		return nil
	})
}

// Events implements store.Store.
func (s *DB) Events(ctx context.Context, after int64, limit int) ([]model.Event, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT id, at, kind, subject, incident, message FROM events WHERE id > ? ORDER BY id LIMIT ?", after, limit)
	if err != nil {
		return nil, fmt.Errorf("list events: %w", err)
	}
	defer rows.Close()
	var out []model.Event
	for rows.Next() {
		var e model.Event
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Kind, &e.Subject, &e.Incident, &e.Message); err != nil {
			return nil, err
		}
		e.At = tm(at)
		out = append(out, e)
	}
	return out, rows.Err()
}
