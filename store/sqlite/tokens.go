package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/store"
)

// CreateToken implements store.Tokens.
func (s *DB) CreateToken(ctx context.Context, t store.Token) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		// A revoked token's name is free again: its record gives way.
		if _, err := tx.ExecContext(ctx, "DELETE FROM api_tokens WHERE name = ? AND revoked <> 0", t.Name); err != nil {
			return fmt.Errorf("create token %q: %w", t.Name, err)
		}
		_, err := tx.ExecContext(ctx, "INSERT INTO api_tokens (name, hash, created) VALUES (?, ?, ?)", t.Name, t.Hash, ns(t.Created))
		if err != nil && strings.Contains(err.Error(), "UNIQUE") {
			return fmt.Errorf("token %q: %w", t.Name, store.ErrExists)
		}
		if err != nil {
			return fmt.Errorf("create token %q: %w", t.Name, err)
		}
		return nil
	})
}

const tokenColumns = "name, hash, created, last_used, revoked"

func scanToken(row interface{ Scan(...any) error }) (store.Token, error) {
	var t store.Token
	var created, used, revoked int64
	if err := row.Scan(&t.Name, &t.Hash, &created, &used, &revoked); err != nil {
		return store.Token{}, err
	}
	t.Created, t.LastUsed, t.Revoked = tm(created), tm(used), tm(revoked)
	return t, nil
}

// TokenByHash implements store.Tokens.
func (s *DB) TokenByHash(ctx context.Context, hash string) (store.Token, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, "SELECT "+tokenColumns+" FROM api_tokens WHERE hash = ?", hash))
	if errors.Is(err, sql.ErrNoRows) {
		return store.Token{}, fmt.Errorf("token: %w", store.ErrNotFound)
	}
	if err != nil {
		return store.Token{}, fmt.Errorf("look up a token: %w", err)
	}
	return t, nil
}

// ListTokens implements store.Tokens.
func (s *DB) ListTokens(ctx context.Context) ([]store.Token, error) {
	rows, err := s.db.QueryContext(ctx, "SELECT "+tokenColumns+" FROM api_tokens ORDER BY name")
	if err != nil {
		return nil, fmt.Errorf("list the tokens: %w", err)
	}
	defer rows.Close()
	var out []store.Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, fmt.Errorf("list the tokens: %w", err)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken implements store.Tokens.
func (s *DB) RevokeToken(ctx context.Context, name string, at time.Time) error {
	res, err := s.db.ExecContext(ctx, "UPDATE api_tokens SET revoked = ? WHERE name = ? AND revoked = 0", ns(at), name)
	if err != nil {
		return fmt.Errorf("revoke token %q: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("no valid token named %q: %w", name, store.ErrNotFound)
	}
	return nil
}

// TouchToken implements store.Tokens.
func (s *DB) TouchToken(ctx context.Context, name string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, "UPDATE api_tokens SET last_used = ? WHERE name = ?", ns(at), name); err != nil {
		return fmt.Errorf("record the use of token %q: %w", name, err)
	}
	return nil
}

// OpenTokens opens only the API tokens of the store at path, beside the live
// Vigil that holds its lease (`vigil token create` on the Vigil host makes the
// first token while Vigil runs). It takes no lease and migrates nothing: it
// writes only the tokens table, which SQLite's own locking shares safely with
// the owner. close closes it.
func OpenTokens(ctx context.Context, path string) (tokens store.Tokens, close func() error, err error) {
	if _, err := os.Stat(path); err != nil {
		return nil, nil, fmt.Errorf("store %s: %w", path, err)
	}
	db, err := sql.Open("sqlite", dsn(path, "journal_mode(WAL)", "busy_timeout(10000)"))
	if err != nil {
		return nil, nil, fmt.Errorf("open store %s: %w", path, err)
	}
	if _, err := db.ExecContext(ctx, "SELECT count(*) FROM api_tokens"); err != nil {
		db.Close()
		return nil, nil, fmt.Errorf("store %s has no API tokens table (its Vigil is older than API tokens: upgrade it and restart it first): %w", path, err)
	}
	return &DB{db: db, path: path}, db.Close, nil
}
