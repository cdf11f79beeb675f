package mysql

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/go-sql-driver/mysql"
	"github.com/pressly/goose/v3"

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
	"github.com/vigil-ha/vigil/store/migrate"
)

// DB is a Store on a MariaDB/MySQL database, shared by every replica (Galera
// included: leases are conditional updates of rows, no GET_LOCK, no table lock).
type DB struct {
	db   *sql.DB
	name string // host and database, for errors (never the password)
}

var _ store.Store = (*DB)(nil)

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Open connects to the database of dsn (the driver's form:
// user:password@tcp(host:port)/database?params) and migrates its schema.
func Open(ctx context.Context, dsn string) (*DB, error) {
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("open MySQL store: bad DSN: %w", redact(err, dsn))
	}
	return OpenConfig(ctx, cfg)
}

// OpenConfig is Open with a parsed configuration.
func OpenConfig(ctx context.Context, cfg *mysql.Config) (*DB, error) {
	cfg = cfg.Clone()
	name := fmt.Sprintf("MySQL database %q on %s", cfg.DBName, cfg.Addr)
	if cfg.DBName == "" {
		return nil, fmt.Errorf("open %s: the DSN names no database", name)
	}
	cfg.ParseTime = false // times are BIGINT nanoseconds
	cfg.MultiStatements = false
	cfg.ClientFoundRows = true // an UPDATE's count is the rows it matched, changed or not
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.ReadTimeout == 0 {
		cfg.ReadTimeout = 30 * time.Second
	}
	if cfg.WriteTimeout == 0 {
		cfg.WriteTimeout = 30 * time.Second
	}
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	if _, ok := cfg.Params["innodb_lock_wait_timeout"]; !ok {
		cfg.Params["innodb_lock_wait_timeout"] = "10" // wait briefly, then retry the transaction
	}
	if cfg.Collation == "" || !strings.HasPrefix(cfg.Collation, "utf8mb4") {
		cfg.Collation = "utf8mb4_general_ci"
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	db := sql.OpenDB(conn)
	// A few connections: the engine, the API's reads, the lease keeper. Recycled
	// before a proxy or the server's wait_timeout drops them.
	db.SetMaxOpenConns(8)
	db.SetMaxIdleConns(4)
	db.SetConnMaxLifetime(5 * time.Minute)
	db.SetConnMaxIdleTime(time.Minute)
	s := &DB{db: db, name: name}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	files, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		db.Close()
		return nil, err
	}
	if err := migrate.Up(ctx, db, goose.DialectMySQL, files, name); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	return s, nil
}

// redact removes dsn's password from err's text: a DSN error must never show it.
func redact(err error, dsn string) error {
	at := strings.LastIndex(dsn, "@")
	colon := strings.Index(dsn, ":")
	if at < 0 || colon < 0 || colon > at || colon+1 == at {
		return err
	}
	if pw := dsn[colon+1 : at]; strings.Contains(err.Error(), pw) {
		return errors.New(strings.ReplaceAll(err.Error(), pw, "***"))
	}
	return err
}

// Name is the store's name for an operator: database and server.
func (s *DB) Name() string { return s.name }

// Close implements store.Store.
func (s *DB) Close() error { return s.db.Close() }

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

// tx runs f in a transaction, again (a bounded number of times, with a growing
// pause) when the server gave up on it for a deadlock, a lock wait timeout or a
// Galera certification conflict: f must be safe to run again (it is: every f
// reads what it decides on inside the transaction).
func (s *DB) tx(ctx context.Context, f func(*sql.Tx) error) error {
	var err error
	for attempt := range maxAttempts {
		if attempt > 0 {
			pause := time.Duration(10<<attempt)*time.Millisecond + time.Duration(rand.Int64N(int64(10*time.Millisecond)))
			select {
			case <-ctx.Done():
				return errors.Join(err, ctx.Err())
			case <-time.After(pause):
			}
		}
		if err = s.tryTx(ctx, f); !retryable(err) {
			return err
		}
	}
	return fmt.Errorf("gave up after %d attempts: %w", maxAttempts, err)
}

const maxAttempts = 6

func (s *DB) tryTx(ctx context.Context, f func(*sql.Tx) error) error {
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

// retryable: the server rolled the transaction back and running it again may work.
// 1213: deadlock, also Galera's certification failure ("Deadlock found when trying
// to get lock; try restarting transaction"); 1205: lock wait timeout.
func retryable(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && (me.Number == 1213 || me.Number == 1205)
}

// duplicate: a row of that key exists (1062).
func duplicate(err error) bool {
	var me *mysql.MySQLError
	return errors.As(err, &me) && me.Number == 1062
}

// checkEpoch fails with ErrStale unless incident id is owned by epoch.
func checkEpoch(ctx context.Context, tx *sql.Tx, id, epoch int64) error {
	var cur int64
	err := tx.QueryRowContext(ctx, "SELECT epoch FROM incidents WHERE id = ? FOR UPDATE", id).Scan(&cur)
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
	if duplicate(err) {
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
		err := tx.QueryRowContext(ctx, "SELECT epoch FROM leases WHERE shard = ? AND holder != '' LOCK IN SHARE MODE", in.Shard).Scan(&cur)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("shard %s has no leader, write from epoch %d: %w", in.Shard, epoch, store.ErrStale)
		}
		if err != nil {
			return err
		}
		if cur != epoch {
			return fmt.Errorf("shard %s is led under epoch %d, write from %d: %w", in.Shard, cur, epoch, store.ErrStale)
		}
		res, err := tx.ExecContext(ctx, `INSERT INTO incidents (kind, subject, cluster, policy, state, reason, rule, evidence, opened, updated, closed, epoch, fault, shard)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			in.Subject.Kind, in.Subject.ID, in.Cluster, in.Policy, in.State, in.Reason, in.Rule, string(ev),
			ns(in.Opened), ns(in.Updated), ns(in.Closed), epoch, in.Fault, in.Shard)
		if err != nil {
			return err
		}
		in.ID, err = res.LastInsertId()
		return err
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
		res, err := tx.ExecContext(ctx, `INSERT INTO steps (incident, seq, action, server, host, target, hard, state, rule, error, retryable,
			planned, started, issued, finished, deadline, timeout, attempt, prior) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			st.Incident, st.Seq, st.Action, st.Server, st.Host, st.Target, st.Hard, st.State, st.Rule, st.Error, st.Retryable,
			ns(st.Planned), ns(st.Started), ns(st.Issued), ns(st.Finished), ns(st.Deadline), int64(st.Timeout), st.Attempt, st.Prior)
		if err != nil {
			return err
		}
		st.ID, err = res.LastInsertId()
		return err
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
	if _, err := s.db.ExecContext(ctx, "INSERT INTO fence_doubts (host, reason, since) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE host = host",
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
		if _, err := tx.ExecContext(ctx, "INSERT INTO bmc_identities (host, identity, since) VALUES (?, ?, ?) ON DUPLICATE KEY UPDATE host = host",
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
