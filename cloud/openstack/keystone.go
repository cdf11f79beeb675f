package openstack

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/identity/v3/tokens"
)

// Keystone validates other users' tokens with Vigil's own credentials (those of
// its clouds.yaml entry: validating another's token takes the admin or service
// role in Keystone's default policy). It only reads.
type Keystone struct {
	identity *gophercloud.ServiceClient
	cloud    string
}

// TokenInfo is what Vigil needs of a validated token.
type TokenInfo struct {
	User    string
	Project string
	Roles   []string
	Expires time.Time
}

// ErrTokenInvalid: Keystone does not know the token, or it expired.
var ErrTokenInvalid = errors.New("Keystone does not accept the token")

// NewKeystone authenticates as the clouds.yaml entry cfg names (CloudName,
// CloudsFile and Timeout of Config; the rest is ignored).
func NewKeystone(ctx context.Context, cfg Config) (*Keystone, error) {
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.CloudName == "" {
		return nil, errors.New("Keystone validation: no OpenStack cloud named (--os-cloud or OS_CLOUD)")
	}
	file, authOpts, endpointOpts, tlsCfg, err := cloudEntry(cfg.CloudsFile, cfg.CloudName)
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsCfg
	provider, err := gopenstack.NewClient(authOpts.IdentityEndpoint)
	if err != nil {
		return nil, fmt.Errorf("cloud %q in %s: auth_url %q: %w", cfg.CloudName, file, authOpts.IdentityEndpoint, err)
	}
	provider.HTTPClient = http.Client{Timeout: cfg.Timeout, Transport: transport}
	actx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := gopenstack.Authenticate(actx, provider, authOpts); err != nil {
		return nil, fmt.Errorf("Keystone validation: authenticate to cloud %q (%s, from %s) as user %q: %w",
			cfg.CloudName, authOpts.IdentityEndpoint, file, authOpts.Username, classify(err))
	}
	identity, err := gopenstack.NewIdentityV3(provider, endpointOpts)
	if err != nil {
		return nil, fmt.Errorf("cloud %q in %s: no identity v3 endpoint: %w", cfg.CloudName, file, err)
	}
	return &Keystone{identity: identity, cloud: cfg.CloudName}, nil
}

// Validate asks Keystone about token (GET /v3/auth/tokens, X-Subject-Token): its
// user, project, roles and expiry; ErrTokenInvalid when Keystone refuses it. The
// token never appears in an error.
func (k *Keystone) Validate(ctx context.Context, token string) (TokenInfo, error) {
	res := tokens.Get(ctx, k.identity, token)
	if res.Err != nil {
		if gophercloud.ResponseCodeIs(res.Err, http.StatusNotFound) || gophercloud.ResponseCodeIs(res.Err, http.StatusUnauthorized) {
			return TokenInfo{}, ErrTokenInvalid
		}
		return TokenInfo{}, fmt.Errorf("validate a token with the Keystone of cloud %q: %w", k.cloud, classify(res.Err))
	}
	t, err := res.ExtractToken()
	if err != nil {
		return TokenInfo{}, fmt.Errorf("Keystone's answer: %w", err)
	}
	info := TokenInfo{Expires: t.ExpiresAt}
	if u, err := res.ExtractUser(); err == nil {
		info.User = u.Name
	}
	if p, err := res.ExtractProject(); err == nil && p != nil {
		info.Project = p.Name
	}
	roles, err := res.ExtractRoles()
	if err != nil {
		return TokenInfo{}, fmt.Errorf("Keystone's answer: roles: %w", err)
	}
	for _, r := range roles {
		info.Roles = append(info.Roles, r.Name)
	}
	return info, nil
}
