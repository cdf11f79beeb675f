package storetest

import (
	"errors"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/store"
)

// testTokens: a token is found by its hash, listed without it mattering whether
// it is used, revoked once (then still found, marked revoked, and its name free
// for a new token), and a second valid token of one name is refused.
func testTokens(t *testing.T, s store.Store) {
	a := store.Token{Name: "ci", Hash: "aa11", Created: T0}
	must(t, s.CreateToken(ctx, a))
	must(t, s.CreateToken(ctx, store.Token{Name: "ops", Hash: "bb22", Created: T0.Add(time.Second)}))
	if err := s.CreateToken(ctx, store.Token{Name: "ci", Hash: "cc33", Created: T0}); !errors.Is(err, store.ErrExists) {
		t.Fatalf("a second valid token named ci: %v, want ErrExists", err)
	}
	got, err := s.TokenByHash(ctx, "aa11")
	must(t, err)
	if got.Name != "ci" || !got.Created.Equal(T0) || !got.LastUsed.IsZero() || !got.Revoked.IsZero() {
		t.Fatalf("token by hash: %+v", got)
	}
	if _, err := s.TokenByHash(ctx, "cc33"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the refused token's hash: %v, want ErrNotFound", err)
	}
	used := T0.Add(time.Minute)
	must(t, s.TouchToken(ctx, "ci", used))
	if got, _ := s.TokenByHash(ctx, "aa11"); !got.LastUsed.Equal(used) {
		t.Fatalf("last used %v, want %v", got.LastUsed, used)
	}

	revoked := T0.Add(time.Hour)
	must(t, s.RevokeToken(ctx, "ci", revoked))
	if err := s.RevokeToken(ctx, "ci", revoked); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoking a revoked token: %v, want ErrNotFound", err)
	}
	if err := s.RevokeToken(ctx, "nobody", revoked); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("revoking no token: %v, want ErrNotFound", err)
	}
	if got, err := s.TokenByHash(ctx, "aa11"); err != nil || !got.Revoked.Equal(revoked) {
		t.Fatalf("the revoked token: %+v, %v; want it found, revoked at %v", got, err, revoked)
	}
	list, err := s.ListTokens(ctx)
	must(t, err)
	if len(list) != 2 || list[0].Name != "ci" || list[0].Revoked.IsZero() || list[1].Name != "ops" || !list[1].Revoked.IsZero() {
		t.Fatalf("tokens: %+v", list)
	}

	must(t, s.CreateToken(ctx, store.Token{Name: "ci", Hash: "dd44", Created: revoked}))
	if _, err := s.TokenByHash(ctx, "aa11"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("the replaced revoked token is still found: %v", err)
	}
	if got, err := s.TokenByHash(ctx, "dd44"); err != nil || !got.Revoked.IsZero() {
		t.Fatalf("the new ci token: %+v, %v", got, err)
	}
}
