package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vigil-ha/vigil/store"
	"github.com/vigil-ha/vigil/store/storetest"
)

// The SQLite store passes the conformance suite every store passes.
func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		db, err := Open(context.Background(), filepath.Join(t.TempDir(), "v.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { db.Close() })
		return db
	})
}

// TestMeasureCompact measures a compaction of VIGIL_MEASURE_COMPACT events (a
// measurement, skipped unless asked).
func TestMeasureCompact(t *testing.T) {
	n, _ := strconv.Atoi(os.Getenv("VIGIL_MEASURE_COMPACT"))
	if n <= 0 {
		t.Skip("VIGIL_MEASURE_COMPACT (a number of events) is not set: a measurement, not a test")
	}
	db, err := Open(context.Background(), filepath.Join(t.TempDir(), "v.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	storetest.MeasureCompact(t, db, n)
}
