package store

import (
	"context"
	"time"
)

// Token is an API token's record. The token itself is never stored: only its
// SHA-256 (Hash), so a copy of the store gives no one a way in.
type Token struct {
	Name    string    `json:"name"`
	Hash    string    `json:"-"` // hex SHA-256 of the token; never shown
	Created time.Time `json:"created"`
	// LastUsed is when a request last presented it (zero: never); recorded at
	// most about once a minute, not on every request.
	LastUsed time.Time `json:"last_used,omitzero"`
	// Revoked is when it was revoked (zero: valid). A revoked token's record
	// stays listed until a new token takes its name.
	Revoked time.Time `json:"revoked,omitzero"`
}

// Tokens keeps the API's bearer tokens.
type Tokens interface {
	// CreateToken records a new token; ErrExists while a valid (not revoked)
	// token has that name. A revoked token of that name is replaced.
	CreateToken(ctx context.Context, t Token) error
	// TokenByHash returns the token (revoked or not) whose hash is hash;
	// ErrNotFound for none.
	TokenByHash(ctx context.Context, hash string) (Token, error)
	// ListTokens returns every token record by name, revoked ones too.
	ListTokens(ctx context.Context) ([]Token, error)
	// RevokeToken revokes the valid token named name at at; ErrNotFound when
	// there is none (no such name, or revoked already).
	RevokeToken(ctx context.Context, name string, at time.Time) error
	// TouchToken records that the token named name was used at at.
	TouchToken(ctx context.Context, name string, at time.Time) error
}
