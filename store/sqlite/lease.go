package sqlite

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/vigil-ha/vigil/store"
)

// lease is this process's hold on one database: an exclusive flock on its lock
// file, whose content is the owner's record.
type lease struct {
	f     *os.File
	mu    sync.Mutex // guards owner and the file's content
	owner store.Owner
}

// canonical names a database file the same way whatever path reached it (relative,
// through a symbolic link), so that two paths to one file take one lock.
func canonical(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	dir, err := filepath.EvalSymlinks(filepath.Dir(abs))
	if err != nil {
		return "", err
	}
	abs = filepath.Join(dir, filepath.Base(abs))
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real, nil
	}
	return abs, nil // not created yet
}

// acquire takes the lease on the database at db (a canonical path) for me, or fails
// with a *store.HeldError naming the live holder. It reads and writes nothing but
// the lock file.
func acquire(db string, me store.Owner) (*lease, error) {
	path := db + ".lock"
	if me.PID == 0 {
		me.PID = os.Getpid()
	}
	if me.Host == "" {
		me.Host, _ = os.Hostname()
	}
	if me.Since.IsZero() {
		me.Since = time.Now().UTC()
	}
	for range 10 {
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644) // close-on-exec: no child inherits the lock
		if err != nil {
			return nil, fmt.Errorf("lease on %s: %w", db, err)
		}
		err = flock(f, syscall.LOCK_EX|syscall.LOCK_NB)
		if errors.Is(err, syscall.EWOULDBLOCK) {
			f.Close()
			return nil, &store.HeldError{Store: db, Owner: readRecord(path), Now: time.Now()}
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("lease on %s: lock %s: %w", db, path, err)
		}
		// The lock holds only if the file locked is still the one at path: if it was
		// removed or replaced between open and lock, another process may lock the
		// new one. Lock that one instead.
		if !sameFile(f, path) {
			f.Close()
			continue
		}
		l := &lease{f: f, owner: me}
		if err := l.record(); err != nil {
			l.release()
			return nil, err
		}
		return l, nil
	}
	return nil, fmt.Errorf("lease on %s: %s keeps being replaced while it is locked", db, path)
}

func flock(f *os.File, how int) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		for {
			if ferr = syscall.Flock(int(fd), how); !errors.Is(ferr, syscall.EINTR) {
				return
			}
		}
	}); err != nil {
		return err
	}
	return ferr
}

func sameFile(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && os.SameFile(a, b)
}

// setAddr records the owner's API address.
func (l *lease) setAddr(addr string) error {
	l.mu.Lock()
	l.owner.Addr = addr
	l.mu.Unlock()
	return l.record()
}

func (l *lease) holder() store.Owner {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.owner
}

// record writes the owner's record into the lock file, for a refused second Vigil
// to read. Only a holder of the lock writes it.
func (l *lease) record() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	data, _ := json.Marshal(l.owner)
	data = append(data, '\n')
	if err := l.f.Truncate(0); err != nil {
		return fmt.Errorf("record owner in %s: %w", l.f.Name(), err)
	}
	if _, err := l.f.WriteAt(data, 0); err != nil {
		return fmt.Errorf("record owner in %s: %w", l.f.Name(), err)
	}
	return nil
}

// readRecord reads the record of the lock's live holder. The holder writes it just
// after taking the lock, so an empty or half-written record is read again for a
// moment before giving up (a zero Owner: "not recorded yet").
func readRecord(path string) store.Owner {
	var o store.Owner
	for range 10 {
		data, err := os.ReadFile(path)
		if err == nil && json.Unmarshal(data, &o) == nil && o.PID != 0 {
			return o
		}
		time.Sleep(20 * time.Millisecond)
	}
	return store.Owner{}
}

// release clears the record (a dead owner's record must not linger) and drops the lock.
func (l *lease) release() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	terr := l.f.Truncate(0)
	cerr := l.f.Close() // closing the only descriptor of the open file drops the flock
	return errors.Join(terr, cerr)
}
