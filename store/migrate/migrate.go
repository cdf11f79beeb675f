// Package migrate applies a store's schema migrations with goose: embedded SQL
// files, one per version, recorded in goose's version table.
package migrate

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/database"
)

// Table is goose's version table in every Vigil store.
const Table = "goose_db_version"

// Up applies fsys's migrations (files at its root) to db. A database whose schema
// is newer than the migrations this binary carries is refused (an older Vigil must
// not write a schema it does not know). what names the store in errors.
//
// Replicas sharing a database may start together: a run that fails (another one
// created the same table first) is retried, and the retry sees what the other ran.
func Up(ctx context.Context, db *sql.DB, dialect goose.Dialect, fsys fs.FS, what string) error {
	p, err := goose.NewProvider(dialect, db, fsys, goose.WithTableName(Table), goose.WithDisableGlobalRegistry(true))
	if err != nil {
		return fmt.Errorf("migrations of %s: %w", what, err)
	}
	latest := int64(0)
	for _, s := range p.ListSources() {
		latest = max(latest, s.Version)
	}
	var last error
	for attempt := range 4 {
		if attempt > 0 {
			select {
			case <-ctx.Done():
				return errors.Join(last, ctx.Err())
			case <-time.After(time.Duration(attempt) * 500 * time.Millisecond):
			}
		}
		cur, err := p.GetDBVersion(ctx)
		if err != nil {
			last = fmt.Errorf("read the schema version of %s: %w", what, err)
			continue
		}
		if cur > latest {
			return fmt.Errorf("the schema of %s is at version %d, newer than this binary knows (%d): upgrade vigil", what, cur, latest)
		}
		if _, err := p.Up(ctx); err != nil {
			last = fmt.Errorf("migrate %s from version %d: %w", what, cur, err)
			continue
		}
		return nil
	}
	return last
}

// Adopt records versions 1..n as applied in goose's version table of a database
// migrated before goose (by a counter such as SQLite's PRAGMA user_version), so
// that goose runs only the migrations after n. It does nothing if the version
// table exists already (adopted before, or never legacy).
func Adopt(ctx context.Context, db *sql.DB, dialect goose.Dialect, n int64) error {
	st, err := database.NewStore(dialect, Table)
	if err != nil {
		return err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	exists, err := tableExists(ctx, conn)
	if err != nil {
		return fmt.Errorf("look for the version table: %w", err)
	}
	if exists {
		return nil
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := st.CreateVersionTable(ctx, tx); err != nil {
		return fmt.Errorf("create the version table: %w", err)
	}
	for v := int64(0); v <= n; v++ {
		if err := st.Insert(ctx, tx, database.InsertRequest{Version: v}); err != nil {
			return fmt.Errorf("record version %d as applied: %w", v, err)
		}
	}
	return tx.Commit()
}

// tableExists probes goose's version table (goose's SQLite dialect cannot say).
func tableExists(ctx context.Context, conn *sql.Conn) (bool, error) {
	var n int
	err := conn.QueryRowContext(ctx, "SELECT COUNT(*) FROM "+Table).Scan(&n)
	if err != nil && (strings.Contains(err.Error(), "no such table") || strings.Contains(err.Error(), "doesn't exist")) {
		return false, nil
	}
	return err == nil, err
}
