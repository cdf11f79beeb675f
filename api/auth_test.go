package api_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/api"
)

// countingKeystone accepts one admin token and counts the validations asked.
type countingKeystone struct{ asked int }

func (k *countingKeystone) ValidateToken(ctx context.Context, tok string) (api.KeystoneToken, error) {
	k.asked++
	if tok == "ks-admin" {
		return api.KeystoneToken{User: "admin", Roles: []string{"admin"}, Expires: time.Date(2026, 1, 1, 0, 0, 30, 0, time.UTC)}, nil
	}
	return api.KeystoneToken{}, api.ErrInvalidToken
}

// Tokens through the API, every answer checked against the spec: made (shown
// once), listed without it, revoked; open reads open GETs but not the token list;
// a Keystone validation is reused until the token expires, not past.
func TestTokensThroughTheAPI(t *testing.T) {
	r := newRig(t)
	now := r.now
	ks := &countingKeystone{}
	h := api.Handler(r.eng, r.db, slog.New(slog.NewTextHandler(io.Discard, nil)),
		api.WithAuth(api.AuthConfig{Tokens: r.db, OpenReads: true, Keystone: ks, KeystoneCache: time.Minute, Now: func() time.Time { return now }}))
	srv := httptest.NewServer(validated(t, h))
	defer srv.Close()
	ct, err := api.CreateToken(context.Background(), r.db, "first", now)
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path, body string, hdr ...string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	bearer := "Bearer " + ct.Token
	code, body := call(http.MethodPost, "/v1/tokens", `{"name": "second"}`, "Authorization", bearer)
	var made api.CreatedToken
	if code != http.StatusCreated || json.Unmarshal([]byte(body), &made) != nil || !strings.HasPrefix(made.Token, api.TokenPrefix) {
		t.Fatalf("POST /v1/tokens: %d %s", code, body)
	}
	if code, body := call(http.MethodPost, "/v1/tokens", `{"name": "a/b"}`, "Authorization", bearer); code != http.StatusBadRequest || !strings.Contains(body, `"field": "name"`) {
		t.Errorf("a bad token name: %d %s, want 400 naming the field", code, body)
	}
	if code, _ := call(http.MethodGet, "/v1/clusters", ""); code != http.StatusOK {
		t.Errorf("GET /v1/clusters with open reads, no token: %d, want 200", code)
	}
	if code, _ := call(http.MethodGet, "/v1/tokens", ""); code != http.StatusUnauthorized {
		t.Errorf("GET /v1/tokens with open reads, no token: %d, want 401", code)
	}
	code, body = call(http.MethodGet, "/v1/tokens", "", "Authorization", "Bearer "+made.Token)
	if code != http.StatusOK || !strings.Contains(body, `"second"`) || strings.Contains(body, made.Token) || strings.Contains(body, api.HashToken(made.Token)) {
		t.Errorf("GET /v1/tokens: %d %s", code, body)
	}
	if code, body := call(http.MethodDelete, "/v1/tokens/first", "", "Authorization", "Bearer "+made.Token); code != http.StatusNoContent {
		t.Errorf("DELETE /v1/tokens/first: %d %s", code, body)
	}
	if code, _ := call(http.MethodPost, "/v1/tokens", `{"name": "third"}`, "Authorization", bearer); code != http.StatusUnauthorized {
		t.Errorf("the revoked token: %d, want 401", code)
	}

	// Keystone: validated once, reused within the cache, asked again past the token's expiry.
	for i := range 3 {
		if code, body := call(http.MethodDelete, "/v1/clusters/none", "", "X-Auth-Token", "ks-admin"); code != http.StatusNotFound {
			t.Fatalf("Keystone admin, call %d: %d %s, want the route's 404", i, code, body)
		}
	}
	if ks.asked != 1 {
		t.Errorf("Keystone asked %d times for 3 calls within the cache, want 1", ks.asked)
	}
	now = now.Add(40 * time.Second) // past the token's expiry (30s), within the cache's minute
	call(http.MethodDelete, "/v1/clusters/none", "", "X-Auth-Token", "ks-admin")
	if ks.asked != 2 {
		t.Errorf("Keystone asked %d times after the token expired, want 2 (a validation is never reused past the expiry)", ks.asked)
	}
}
