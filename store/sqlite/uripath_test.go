package sqlite

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
	"github.com/vigil-ha/vigil/store"
)

// A path with '#', '?' or '%' opens that file, not the part before them: two
// stores in directories "a#x" and "a#y" were one file "a".
func TestPathWithURICharactersOpensThatFile(t *testing.T) {
	base := t.TempDir()
	for i, dir := range []string{"a#x", "a#y", "b?x=1", "c%41"} {
		path := filepath.Join(base, dir, "v.db")
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			t.Fatal(err)
		}
		db, err := Open(context.Background(), path)
		if err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
		name := []string{"one", "two", "three", "four"}[i]
		if err := db.CreateCluster(context.Background(), model.Cluster{Name: name, Members: []string{"s" + name}, Desired: 1, Policy: "default"}); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		got, err := db.Clusters(context.Background())
		db.Close()
		if err != nil || len(got) != 1 || got[0].Name != name {
			t.Fatalf("%s holds %+v (%v), want only cluster %s", path, got, err, name)
		}
		if _, err := os.Stat(path); err != nil {
			t.Fatalf("the store is not at %s: %v", path, err)
		}
	}
	if _, err := os.Stat(filepath.Join(base, "a")); err == nil {
		t.Fatal("a file was created at the path cut at '#'")
	}
	// OpenTokens (vigil token create beside a running Vigil) opens the same file.
	path := filepath.Join(base, "a#x", "v.db")
	ts, closeTokens, err := OpenTokens(context.Background(), path)
	if err != nil {
		t.Fatalf("open the tokens of %s: %v", path, err)
	}
	err = ts.CreateToken(context.Background(), store.Token{Name: "t", Hash: "abc", Created: time.Now()})
	closeTokens()
	if err != nil {
		t.Fatal(err)
	}
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if tok, err := db.TokenByHash(context.Background(), "abc"); err != nil || tok.Name != "t" {
		t.Fatalf("the token made through OpenTokens(%s): %+v %v, want it in that store", path, tok, err)
	}
}
