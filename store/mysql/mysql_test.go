package mysql

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"

	"github.com/vigil-ha/vigil/store"
	"github.com/vigil-ha/vigil/store/storetest"
)

// DSNEnv names the server the integration tests run against, in the driver's form
// (user:password@tcp(host:port)/database); its user creates and drops databases
// named vigil_test_*. test/peers/mariadb/setup.sh prints one for the peer.
const DSNEnv = "VIGIL_MYSQL_DSN"

// fresh opens a new, empty database on the server of $VIGIL_MYSQL_DSN, dropped
// when the test ends.
func fresh(t *testing.T) *DB {
	t.Helper()
	dsn := os.Getenv(DSNEnv)
	if dsn == "" {
		t.Skip(DSNEnv + " is not set: no MariaDB/MySQL server to test against (test/peers/mariadb/setup.sh prints one)")
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		t.Fatalf("%s: %v", DSNEnv, redact(err, dsn))
	}
	name := fmt.Sprintf("vigil_test_%08x", rand.Uint32())
	admin := cfg.Clone()
	admin.DBName = ""
	conn, err := mysql.NewConnector(admin)
	if err != nil {
		t.Fatal(err)
	}
	root := sql.OpenDB(conn)
	t.Cleanup(func() { root.Close() })
	ctx := context.Background()
	if _, err := root.ExecContext(ctx, "CREATE DATABASE "+name+" CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("create the test database %s on %s: %v", name, cfg.Addr, err)
	}
	t.Cleanup(func() {
		if _, err := root.ExecContext(context.Background(), "DROP DATABASE "+name); err != nil {
			t.Errorf("drop the test database %s: %v", name, err)
		}
	})
	cfg.DBName = name
	db, err := OpenConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The MariaDB/MySQL store passes the conformance suite every store passes.
func TestIntegrationMySQLConformance(t *testing.T) {
	if os.Getenv(DSNEnv) == "" {
		t.Skip(DSNEnv + " is not set: no MariaDB/MySQL server to test against (test/peers/mariadb/setup.sh prints one)")
	}
	storetest.Run(t, func(t *testing.T) store.Store { return fresh(t) })
}

// Opening a migrated database again migrates nothing and loses nothing; a schema
// newer than this binary is refused.
func TestIntegrationMySQLMigrations(t *testing.T) {
	db := fresh(t)
	ctx := context.Background()
	if err := db.RecordHostReturn(ctx, "h1", storetest.T0); err != nil {
		t.Fatal(err)
	}
	cfg, _ := mysql.ParseDSN(os.Getenv(DSNEnv))
	cfg.DBName = strings.Trim(strings.Split(db.name, "\"")[1], "\"")
	again, err := OpenConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer again.Close()
	if r, err := again.HostReturns(ctx); err != nil || len(r) != 1 {
		t.Fatalf("after reopen: %v, %v", r, err)
	}
	if _, err := db.db.ExecContext(ctx, "INSERT INTO goose_db_version (version_id, is_applied) VALUES (99, 1)"); err != nil {
		t.Fatal(err)
	}
	if newer, err := OpenConfig(ctx, cfg); err == nil || !strings.Contains(err.Error(), "upgrade vigil") {
		if newer != nil {
			newer.Close()
		}
		t.Fatalf("open at schema version 99: %v, want a refusal saying upgrade vigil", err)
	}
}

// A bad DSN's error never shows its password.
func TestBadDSNHidesPassword(t *testing.T) {
	for _, dsn := range []string{
		"vigil:s3cret-pw@tcp(127.0.0.1:13306/vigil",
		"vigil:s3cret-pw@tcp(127.0.0.1:13306)/vigil?parseTime=maybe",
		"vigil:s3cret-pw@unix(/nope)/vigil?bogus=%zz",
	} {
		_, err := Open(context.Background(), dsn)
		if err == nil {
			t.Fatalf("%q opened", dsn)
		}
		if strings.Contains(err.Error(), "s3cret-pw") {
			t.Fatalf("error shows the password: %v", err)
		}
		t.Log(err)
	}
}

// TestMeasureMySQLCompact measures a compaction of
// VIGIL_MEASURE_COMPACT events (a measurement: skipped, as passed, unless asked).
func TestMeasureMySQLCompact(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("VIGIL_MEASURE_COMPACT"))
	if n <= 0 {
		t.Skip("VIGIL_MEASURE_COMPACT (a number of events) is not set: a measurement, not a test")
	}
	storetest.MeasureCompact(t, fresh(t), n)
}
