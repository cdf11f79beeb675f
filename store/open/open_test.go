package open

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/store"
)

// Every SQLite form opens the file it names (a bare path as --db always took).
func TestSQLiteForms(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, c := range []struct{ dsn, file string }{
		{"bare.db", "bare.db"},
		{"sqlite://rel.db", "rel.db"},
		{"sqlite://" + filepath.Join(dir, "abs.db"), "abs.db"},
	} {
		s, err := Open(context.Background(), c.dsn, store.Owner{})
		if err != nil {
			t.Fatalf("%s: %v", c.dsn, err)
		}
		s.Close()
		if _, err := os.Stat(filepath.Join(dir, c.file)); err != nil {
			t.Fatalf("%s did not make %s: %v", c.dsn, c.file, err)
		}
	}
}

func TestMySQLForms(t *testing.T) {
	for _, c := range []struct{ rest, user, pw, addr, db string }{
		{"vigil:p%40ss@db.example:3307/vigil?timeout=3s", "vigil", "p@ss", "db.example:3307", "vigil"},
		{"vigil:pw@db.example/vigil", "vigil", "pw", "db.example:3306", "vigil"},
		{"vigil:pw@tcp(10.0.0.1:13306)/vigil?timeout=3s", "vigil", "pw", "10.0.0.1:13306", "vigil"},
	} {
		cfg, err := MySQLConfig(c.rest)
		if err != nil {
			t.Fatalf("%s: %v", c.rest, err)
		}
		if cfg.User != c.user || cfg.Passwd != c.pw || cfg.Addr != c.addr || cfg.DBName != c.db {
			t.Fatalf("%s: user %q pw %q addr %q db %q", c.rest, cfg.User, cfg.Passwd, cfg.Addr, cfg.DBName)
		}
	}
}

// A bad DSN is refused saying what is wrong and what is wanted, never showing
// its password.
func TestBadDSNs(t *testing.T) {
	const pw = "s3cret-pw"
	for _, c := range []struct{ dsn, want string }{
		{"mysql://vigil:" + pw + "@tcp(127.0.0.1:13306/vigil", "bad DSN"},
		{"mysql://vigil:" + pw + "@tcp(127.0.0.1:13306)/", "no database"},
		{"mysql://vigil:" + pw + "@db:3306/", "database name"},
		{"mysql://vigil:" + pw + "@db:3306/vigil?timeout=forever", "parameters"},
		{"mysql://vigil:" + pw + "@db:bad port/vigil", "not a URL"},
		{"mysql://vigil:" + pw + "@/vigil", "no server address"},
		{"postgres://vigil:" + pw + "@db/vigil", `unknown kind "postgres"`},
		{"sqlite://", "names no file"},
		{"", "no store given"},
	} {
		_, err := Open(context.Background(), c.dsn, store.Owner{})
		if err == nil {
			t.Fatalf("%q opened", c.dsn)
		}
		if strings.Contains(err.Error(), pw) {
			t.Fatalf("%q: the error shows the password: %v", c.dsn, err)
		}
		if !strings.Contains(err.Error(), c.want) {
			t.Fatalf("%q: %v; want it to say %q", c.dsn, err, c.want)
		}
		t.Log(err)
	}
}
