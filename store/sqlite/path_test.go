package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store/sqlite"
)

// A store path holding '#', '?' or '%' opens the file it names: unescaped, SQLite
// read the URI's name up to the '#' and opened another file.
func TestPathWithURICharacters(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "a#b?c%41")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "v.db")
	db, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.CreateCluster(context.Background(), model.Cluster{Name: "c", Members: []string{"s"}, Desired: 1, Policy: "default"}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("the store's file %s: %v", path, err)
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(dir), "a")); err == nil {
		t.Fatalf("a file named after the path cut at '#' was made")
	}
}
