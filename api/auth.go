package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-ha/vigil/engine"
	"github.com/vigil-ha/vigil/store"
)

// TokenPrefix starts every Vigil API token, so that a leaked one is recognised
// (by a secret scanner, by an operator) for what it is.
const TokenPrefix = "vgl_"

// NewToken returns a new random API token (32 bytes from crypto/rand) and the
// hash to store in its place (HashToken).
func NewToken() (token, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", fmt.Errorf("make a token: %w", err)
	}
	token = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return token, HashToken(token), nil
}

// HashToken is what the store keeps of a token: its hex SHA-256. The token has
// 256 random bits, so a fast unsalted hash is enough (nothing to brute-force).
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// tokenName is the rule of a token's name (the API's names rule).
var tokenName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// CheckTokenName says what is wrong with a token's name; nil when it is valid.
func CheckTokenName(name string) error {
	if !tokenName.MatchString(name) {
		return &engine.InvalidError{Field: "name", Msg: fmt.Sprintf("%q: want 1 to 64 of the letters A-Z a-z, digits and . _ -", name)}
	}
	return nil
}

// AuthConfig says who may call the API (WithAuth).
type AuthConfig struct {
	// Tokens are Vigil's own bearer tokens (Authorization: Bearer vgl_...).
	Tokens store.Tokens
	// OpenReads lets GET and HEAD through without a token (the policy file's
	// auth.open_reads), except the token list: /healthz and /readyz are always open.
	OpenReads bool
	// Keystone, when set, also accepts an OpenStack token (X-Auth-Token) whose
	// roles include admin; nil: X-Auth-Token is refused.
	Keystone Keystone
	// KeystoneCache bounds how long a Keystone validation is reused (default a
	// minute; never past the token's expiry).
	KeystoneCache time.Duration
	Now           func() time.Time
	// Log records refusals (never a token).
	Log *slog.Logger
}

// Keystone validates OpenStack tokens (cloud/openstack.Keystone).
type Keystone interface {
	// ValidateToken returns the token's roles and expiry; an error wrapping
	// ErrInvalidToken when Keystone says it is not valid, another when Keystone
	// could not be asked.
	ValidateToken(ctx context.Context, token string) (KeystoneToken, error)
}

// KeystoneToken is what Vigil needs of a validated Keystone token.
type KeystoneToken struct {
	User    string
	Roles   []string
	Expires time.Time
}

// ErrInvalidToken: the identity service does not know the token (or it expired).
var ErrInvalidToken = errors.New("invalid or expired token")

// KeystoneAdminRole is the role a Keystone token needs to act on Vigil.
const KeystoneAdminRole = "admin"

// ownAuth are the routes that check their own credentials: Masakari's
// notifications take masakari-monitors' X-Auth-Token (masakari.go), and its
// version document is read, unauthenticated, by keystoneauth's discovery. They are
// matched by route pattern, not by path: /v1/clusters/notifications is a cluster.
var ownAuth = []string{"/v1/notifications", "/v1/{project_id}/notifications", "/v1/"}

// WithAuth makes every route but /healthz, /readyz and those of ownAuth require a
// valid token (reads too, unless cfg.OpenReads), and serves the tokens at
// /v1/tokens. Without it the API is open (tests of other features).
func WithAuth(cfg AuthConfig) Option {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.KeystoneCache <= 0 {
		cfg.KeystoneCache = time.Minute
	}
	a := &auth{cfg: cfg, cache: map[string]cachedValidation{}}
	return func(h *handler) {
		h.middleware = append(h.middleware, a.middleware)
		h.v1 = append(h.v1, a.routes)
	}
}

type auth struct {
	cfg   AuthConfig
	mu    sync.Mutex
	cache map[string]cachedValidation // by the SHA-256 of a Keystone token
}

type cachedValidation struct {
	tok   KeystoneToken
	until time.Time
}

// refusal is why a request is refused: 401 (no or a bad credential) or 403 (a
// valid one lacking the right), or 503 (the identity service could not answer).
type refusal struct {
	code int
	msg  string
}

func (a *auth) middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a.open(r) {
			next.ServeHTTP(w, r)
			return
		}
		if ref := a.check(r); ref != nil {
			a.refuse(w, r, ref)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// open says whether r needs no token.
func (a *auth) open(r *http.Request) bool {
	if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" {
		return true
	}
	read := r.Method == http.MethodGet || r.Method == http.MethodHead || r.Method == http.MethodOptions
	if pattern := routePattern(r); slices.Contains(ownAuth, pattern) && (pattern != "/v1/" || read) {
		return true
	}
	// Who holds a token is not for every reader.
	return read && a.cfg.OpenReads && !strings.HasPrefix(r.URL.Path, "/v1/tokens")
}

// routePattern is the pattern of the route r will take ("" for none).
func routePattern(r *http.Request) string {
	rctx := chi.RouteContext(r.Context())
	if rctx == nil || rctx.Routes == nil {
		return ""
	}
	path := r.URL.RawPath
	if path == "" {
		path = r.URL.Path
	}
	return rctx.Routes.Find(chi.NewRouteContext(), r.Method, path)
}

// check returns why r is refused; nil when its credential is good.
func (a *auth) check(r *http.Request) *refusal {
	if h := r.Header.Get("Authorization"); h != "" {
		scheme, tok, _ := strings.Cut(h, " ")
		if !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
			return &refusal{http.StatusUnauthorized, "the Authorization header must be \"Bearer <token>\""}
		}
		return a.checkBearer(r.Context(), strings.TrimSpace(tok))
	}
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		return a.checkKeystone(r.Context(), tok)
	}
	return &refusal{http.StatusUnauthorized, "this request needs a token: send Authorization: Bearer <token> " +
		"(`vigil token create NAME` on the Vigil host makes one)"}
}

func (a *auth) checkBearer(ctx context.Context, tok string) *refusal {
	t, err := a.cfg.Tokens.TokenByHash(ctx, HashToken(tok))
	if errors.Is(err, store.ErrNotFound) {
		return &refusal{http.StatusUnauthorized, "invalid token"}
	}
	if err != nil {
		a.cfg.Log.Error("api auth: cannot read the tokens", "err", err)
		return &refusal{http.StatusServiceUnavailable, "cannot check the token now: the store did not answer"}
	}
	if !t.Revoked.IsZero() {
		return &refusal{http.StatusUnauthorized, "token " + t.Name + " was revoked"}
	}
	// Recording every use would be a write per request: once a minute is enough
	// to tell a token in use from a forgotten one.
	if now := a.cfg.Now(); now.Sub(t.LastUsed) >= time.Minute {
		if err := a.cfg.Tokens.TouchToken(ctx, t.Name, now); err != nil {
			a.cfg.Log.Warn("api auth: cannot record a token's use", "token_name", t.Name, "err", err)
		}
	}
	return nil
}

func (a *auth) checkKeystone(ctx context.Context, tok string) *refusal {
	if a.cfg.Keystone == nil {
		return &refusal{http.StatusUnauthorized, "X-Auth-Token is not accepted: Keystone validation is off " +
			"(auth.keystone in the policy file); send Authorization: Bearer <token>"}
	}
	kt, err := a.validate(ctx, tok)
	if errors.Is(err, ErrInvalidToken) {
		return &refusal{http.StatusUnauthorized, "invalid or expired Keystone token"}
	}
	if err != nil {
		a.cfg.Log.Error("api auth: cannot validate a Keystone token", "err", err)
		return &refusal{http.StatusServiceUnavailable, "cannot validate the Keystone token now: Keystone did not answer"}
	}
	if !slices.Contains(kt.Roles, KeystoneAdminRole) {
		return &refusal{http.StatusForbidden, fmt.Sprintf("Keystone user %s lacks the %s role (has: %s)",
			kt.User, KeystoneAdminRole, strings.Join(kt.Roles, ", "))}
	}
	return nil
}

// validate asks Keystone, or reuses its answer of the last KeystoneCache (never
// past the token's expiry). Refusals are not cached: a token just issued works.
func (a *auth) validate(ctx context.Context, tok string) (KeystoneToken, error) {
	key := HashToken(tok)
	now := a.cfg.Now()
	a.mu.Lock()
	c, ok := a.cache[key]
	a.mu.Unlock()
	if ok && now.Before(c.until) {
		return c.tok, nil
	}
	kt, err := a.cfg.Keystone.ValidateToken(ctx, tok)
	if err != nil {
		return KeystoneToken{}, err
	}
	until := now.Add(a.cfg.KeystoneCache)
	if !kt.Expires.IsZero() && kt.Expires.Before(until) {
		until = kt.Expires
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= 1024 { // a bound: drop what has expired
		for k, c := range a.cache {
			if !now.Before(c.until) {
				delete(a.cache, k)
			}
		}
	}
	a.cache[key] = cachedValidation{tok: kt, until: until}
	return kt, nil
}

func (a *auth) refuse(w http.ResponseWriter, r *http.Request, ref *refusal) {
	a.cfg.Log.Info("api request refused", "method", r.Method, "path", r.URL.Path, "status", ref.code, "reason", ref.msg, "remote", r.RemoteAddr)
	switch ref.code {
	case http.StatusUnauthorized:
		challenge := `Bearer realm="vigil"`
		if r.Header.Get("Authorization") != "" || r.Header.Get("X-Auth-Token") != "" {
			challenge += `, error="invalid_token"`
		}
		w.Header().Set("WWW-Authenticate", challenge)
	case http.StatusForbidden:
		w.Header().Set("WWW-Authenticate", `Bearer realm="vigil", error="insufficient_scope"`)
	}
	write(w, ref.code, Error{Error: ref.msg})
}

// CreatedToken is the answer to a token's creation: the only time the token is shown.
type CreatedToken struct {
	Name    string    `json:"name"`
	Token   string    `json:"token"`
	Created time.Time `json:"created"`
}

// CreateToken makes a token named name in tokens and returns it (the one time it
// is seen: the store keeps its hash). Used by the API and by `vigil token create`.
func CreateToken(ctx context.Context, tokens store.Tokens, name string, now time.Time) (CreatedToken, error) {
	if err := CheckTokenName(name); err != nil {
		return CreatedToken{}, err
	}
	tok, hash, err := NewToken()
	if err != nil {
		return CreatedToken{}, err
	}
	now = now.UTC().Truncate(time.Second)
	if err := tokens.CreateToken(ctx, store.Token{Name: name, Hash: hash, Created: now}); err != nil {
		return CreatedToken{}, err
	}
	return CreatedToken{Name: name, Token: tok, Created: now}, nil
}

func (a *auth) routes(r chi.Router) {
	r.Post("/tokens", a.createToken)
	r.Get("/tokens", a.listTokens)
	r.Delete("/tokens/{name}", a.revokeToken)
}

func (a *auth) createToken(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Name *string `json:"name"`
	}
	h := &handler{log: a.cfg.Log}
	if err := decode(r, &req); err != nil {
		h.fail(w, err)
		return
	}
	if req.Name == nil {
		h.fail(w, &engine.InvalidError{Field: "name", Msg: "is required"})
		return
	}
	ct, err := CreateToken(r.Context(), a.cfg.Tokens, *req.Name, a.cfg.Now())
	if err != nil {
		h.fail(w, err)
		return
	}
	a.cfg.Log.Info("api token created", "token_name", ct.Name, "remote", r.RemoteAddr)
	write(w, http.StatusCreated, ct)
}

func (a *auth) listTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := a.cfg.Tokens.ListTokens(r.Context())
	if err != nil {
		(&handler{log: a.cfg.Log}).fail(w, err)
		return
	}
	if ts == nil {
		ts = []store.Token{}
	}
	write(w, http.StatusOK, ts)
}

func (a *auth) revokeToken(w http.ResponseWriter, r *http.Request) {
	name := chi.URLParam(r, "name")
	if err := a.cfg.Tokens.RevokeToken(r.Context(), name, a.cfg.Now()); err != nil {
		(&handler{log: a.cfg.Log}).fail(w, err)
		return
	}
	a.cfg.Log.Info("api token revoked", "token_name", name, "remote", r.RemoteAddr)
	w.WriteHeader(http.StatusNoContent)
}
