package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/model"
)

// legacyDB makes a database as a Vigil of the PRAGMA user_version scheme did, at
// version n, with one cluster, one incident with a step, and one event.
func legacyDB(t *testing.T, path string, n int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for i, m := range legacyMigrations[:n] {
		if _, err := db.Exec(m); err != nil {
			t.Fatalf("legacy migration %d: %v", i+1, err)
		}
	}
	if _, err := db.Exec(fmt.Sprintf("PRAGMA user_version = %d", n)); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`INSERT INTO clusters (name, members, desired, policy) VALUES ('web', '["a","b"]', 2, 'default')`,
		`INSERT INTO incidents (kind, subject, cluster, policy, state, reason, rule, evidence, opened, updated, closed, epoch)
			VALUES ('host', 'h1', '', 'default', 'open', '', 'host-down', '["down"]', 1, 1, 0, 1)`,
		`INSERT INTO steps (incident, seq, action, server, host, target, hard, state, rule, error, retryable, planned, started, issued,
			finished, deadline, timeout, attempt) VALUES (1, 1, 'evacuate', 'a', 'h1', 'h2', 0, 'intent', 'r', '', 0, 1, 1, 0, 0, 0, 60, 1)`,
		`INSERT INTO events (at, kind, subject, incident, message) VALUES (1, 'incident', 'host/h1', 1, 'opened')`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
}

// A database migrated by the PRAGMA user_version scheme opens with goose: nothing
// lost, its versions recorded as applied, the migrations after them run.
func TestLegacySchemaIsAdopted(t *testing.T) {
	for _, n := range []int{1, 5, 9} {
		t.Run(fmt.Sprint("version ", n), func(t *testing.T) {
			ctx := context.Background()
			path := filepath.Join(t.TempDir(), "v.db")
			legacyDB(t, path, n)
			db := open(t, path)
			cs, err := db.Clusters(ctx)
			if err != nil || len(cs) != 1 || cs[0].Name != "web" || len(cs[0].Members) != 2 {
				t.Fatalf("clusters after the upgrade: %+v, %v", cs, err)
			}
			incs, err := db.OpenIncidents(ctx)
			if err != nil || len(incs) != 1 || len(incs[0].Steps) != 1 || incs[0].Steps[0].Target != "h2" {
				t.Fatalf("open incidents after the upgrade: %+v, %v", incs, err)
			}
			if incs[0].Shard != model.DefaultShard {
				t.Fatalf("a legacy incident's shard %q, want %q", incs[0].Shard, model.DefaultShard)
			}
			if evs, err := db.Events(ctx, 0, 10); err != nil || len(evs) != 1 || evs[0].Message != "opened" {
				t.Fatalf("events after the upgrade: %+v, %v", evs, err)
			}
			var applied int
			if err := db.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM goose_db_version WHERE version_id > 0").Scan(&applied); err != nil {
				t.Fatal(err)
			}
			// Every migration this binary carries (later ones than the legacy scheme's too).
			files, _ := fs.Glob(migrationFiles, "migrations/*.sql")
			if want := len(files); applied != want {
				t.Fatalf("goose records %d migrations applied, want %d", applied, want)
			}
			var idx int
			if err := db.db.QueryRowContext(ctx, "SELECT COUNT(*) FROM sqlite_master WHERE name = 'events_at'").Scan(&idx); err != nil || idx != 1 {
				t.Fatalf("migration 10 (index events_at) did not run: %d, %v", idx, err)
			}
			// The new code writes to it as to any other.
			epoch, err := claim(ctx, db)
			if err != nil {
				t.Fatal(err)
			}
			in := incs[0]
			in.State = model.IncidentResolved
			if err := db.UpdateIncident(ctx, epoch, in); err != nil {
				t.Fatalf("write to an upgraded database: %v", err)
			}
			db.Close()
			open(t, path).Close() // a second open migrates nothing and fails on nothing
		})
	}
}

// A database whose schema is newer than this binary knows is refused, saying what
// to do; so is a goose version beyond this binary's migrations.
func TestNewerSchemaIsRefused(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "v.db")
	open(t, path).Close()
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := raw.Exec("INSERT INTO goose_db_version (version_id, is_applied) VALUES (99, 1)"); err != nil {
		t.Fatal(err)
	}
	raw.Close()
	db, err := Open(ctx, path)
	if err == nil {
		db.Close()
		t.Fatal("a database at schema version 99 opened")
	}
	if !strings.Contains(err.Error(), "upgrade vigil") || !strings.Contains(err.Error(), "99") {
		t.Fatalf("refusal %q: want the version and \"upgrade vigil\"", err)
	}
	t.Log(err)
}
