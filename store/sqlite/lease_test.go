package sqlite

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/store"
)

func record(t *testing.T, db string) store.Owner {
	t.Helper()
	data, err := os.ReadFile(db + ".lock")
	if err != nil {
		t.Fatal(err)
	}
	var o store.Owner
	if len(data) > 0 {
		if err := json.Unmarshal(data, &o); err != nil {
			t.Fatalf("owner record %q: %v", data, err)
		}
	}
	return o
}

// refused opens path, which must fail naming want as the owner.
func refused(t *testing.T, path string, want store.Owner) *store.HeldError {
	t.Helper()
	db, err := Open(context.Background(), path)
	if err == nil {
		db.Close()
		t.Fatalf("open %s while its owner lives: no error", path)
	}
	var held *store.HeldError
	if !errors.As(err, &held) || !errors.Is(err, store.ErrHeld) {
		t.Fatalf("open %s while its owner lives: %v, want a *store.HeldError", path, err)
	}
	if !sameOwner(held.Owner, want) {
		t.Fatalf("refusal names %+v, want the owner %+v", held.Owner, want)
	}
	return held
}

func sameOwner(a, b store.Owner) bool {
	return a.PID == b.PID && a.Host == b.Host && a.Since.Equal(b.Since) && a.Addr == b.Addr
}

// While a store is open, opening it again (by any path to the file) is refused
// with the owner's record, and changes nothing: no epoch claimed, the owner's
// record intact, its writes still accepted. Once it is closed, the next open takes
// the lease.
func TestSecondOpenIsRefusedWhileTheOwnerLives(t *testing.T) {
	ctx := context.Background()
	dir, err := filepath.EvalSymlinks(t.TempDir()) // the refusal names the file by its real path
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "v.db")
	first := open(t, path)
	if err := first.SetAddr("127.0.0.1:8080"); err != nil {
		t.Fatal(err)
	}
	epoch, err := claim(ctx, first)
	if err != nil {
		t.Fatal(err)
	}
	me := first.Owner()
	host, _ := os.Hostname()
	if me.PID != os.Getpid() || me.Host != host || time.Since(me.Since) > time.Minute || me.Since.After(time.Now()) {
		t.Fatalf("owner record %+v: want this process, this host, now", me)
	}
	if err := os.Symlink(path, filepath.Join(dir, "link.db")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, p := range []string{path, "v.db", "sub/../v.db", "link.db"} {
		held := refused(t, p, me)
		if p == path {
			msg := held.Error()
			for _, want := range []string{path, "PID ", host, "owner since " + me.Since.UTC().Format(time.RFC3339), "API on 127.0.0.1:8080"} {
				if !strings.Contains(msg, want) {
					t.Errorf("refusal %q lacks %q", msg, want)
				}
			}
			t.Log(msg)
		}
	}
	if got := record(t, path); !sameOwner(got, me) {
		t.Fatalf("the refused opens changed the owner's record: %+v, was %+v", got, me)
	}
	if next, err := claim(ctx, first); err != nil || next != epoch+1 {
		t.Fatalf("the owner's next claim: %d, %v; want %d (the refused opens claimed nothing)", next, err, epoch+1)
	}
	if err := first.Close(); err != nil {
		t.Fatal(err)
	}
	if got := record(t, path); got.PID != 0 {
		t.Fatalf("a closed owner left its record behind: %+v", got)
	}
	third := open(t, path)
	if next, err := claim(ctx, third); err != nil || next != epoch+2 {
		t.Fatalf("claim after the owner closed: %d, %v; want %d", next, err, epoch+2)
	}
	if got := record(t, path); !sameOwner(got, third.Owner()) {
		t.Fatalf("record after the takeover: %+v, want %+v", got, third.Owner())
	}
}

// A record nobody holds the lock for (left by an owner that died) is no owner.
func TestARecordWithoutTheLockIsNoOwner(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.db")
	ghost := `{"pid":4242,"host":"ghost","since":"2020-01-01T00:00:00Z","addr":"10.0.0.1:8080"}` + "\n"
	if err := os.WriteFile(path+".lock", []byte(ghost), 0o644); err != nil {
		t.Fatal(err)
	}
	db := open(t, path)
	if got := record(t, path); got.PID != os.Getpid() || got.Host == "ghost" {
		t.Fatalf("record after open: %+v, want this process's", got)
	}
	if _, err := claim(context.Background(), db); err != nil {
		t.Fatal(err)
	}
}

const ownerEnv = "VIGIL_TEST_LEASE_OWNER_DB"

// A crashed owner never blocks a restart: a child process (this test binary) opens
// the store and is killed with SIGKILL, leaving its record; while it lives, an
// open is refused naming it; once it is dead, an open takes the lease.
func TestCrashedOwnerNeverBlocksARestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "v.db")
	child := exec.Command(os.Args[0], "-test.run=^TestLeaseOwnerProcess$", "-test.v")
	child.Env = append(os.Environ(), ownerEnv+"="+path)
	stdin, err := child.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := child.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	child.Stderr = os.Stderr
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer stdin.Close()
	defer child.Process.Kill()
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "owner ready") {
				ready <- nil
				return
			}
		}
		ready <- errors.New("the child ended before it owned the store")
	}()
	select {
	case err := <-ready:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the child did not open the store within 30 s")
	}
	rec := record(t, path)
	if rec.PID != child.Process.Pid || rec.Addr != "child:1" {
		t.Fatalf("the child's record: %+v, want PID %d", rec, child.Process.Pid)
	}
	held := refused(t, path, rec)
	t.Logf("while the child lives: %v", held)

	if err := child.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = child.Wait()
	if got := record(t, path); got.PID != child.Process.Pid {
		t.Fatalf("the killed child's record is gone (%+v): this test no longer shows a stale record is ignored", got)
	}
	db := open(t, path)
	if _, err := claim(context.Background(), db); err != nil {
		t.Fatalf("claim after the owner crashed: %v", err)
	}
	if got := record(t, path); got.PID != os.Getpid() {
		t.Fatalf("record after the restart: %+v, want this process", got)
	}
}

// TestLeaseOwnerProcess is the child of TestCrashedOwnerNeverBlocksARestart: it
// owns the store until its stdin closes or it is killed.
func TestLeaseOwnerProcess(t *testing.T) {
	path := os.Getenv(ownerEnv)
	if path == "" {
		t.Skip("the child process of TestCrashedOwnerNeverBlocksARestart")
	}
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.SetAddr("child:1"); err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("owner ready\n")
	bufio.NewReader(os.Stdin).ReadString('\n') // until the parent goes away
	db.Close()
}
