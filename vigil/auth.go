package vigil

import (
	"context"
	"errors"
	"time"

	"github.com/vigil-ha/vigil/api"
	"github.com/vigil-ha/vigil/cloud/openstack"
	"github.com/vigil-ha/vigil/store"
)

// authOption is the API's auth: always on (a Vigil's API is never open to
// changes without a token), reads opened and Keystone added by the policy file.
func authOption(o Options, tokens store.Tokens) (api.Option, error) {
	a := o.Config.Auth
	if a.Keystone && o.Keystone == nil {
		return nil, errors.New("auth.keystone is on in the policy file but this Vigil watches no OpenStack cloud to validate tokens with (vigil serve --os-cloud)")
	}
	var ks api.Keystone
	if a.Keystone {
		ks = o.Keystone
	}
	return api.WithAuth(api.AuthConfig{Tokens: tokens, OpenReads: a.OpenReads, Keystone: ks,
		KeystoneCache: a.KeystoneCache, Now: o.Now, Log: o.Log}), nil
}

// CreateToken makes an API token named name in the App's store and returns it:
// the only time it is seen (the demo prints one; tests call the API with one).
func (a *App) CreateToken(ctx context.Context, name string) (string, error) {
	now := time.Now
	if a.opts.Now != nil {
		now = a.opts.Now
	}
	ct, err := api.CreateToken(ctx, a.Store, name, now())
	return ct.Token, err
}

// KeystoneAuth adapts the OpenStack driver's Keystone to the API's auth.
func KeystoneAuth(k *openstack.Keystone) api.Keystone { return keystoneAuth{k} }

type keystoneAuth struct{ k *openstack.Keystone }

func (k keystoneAuth) ValidateToken(ctx context.Context, token string) (api.KeystoneToken, error) {
	info, err := k.k.Validate(ctx, token)
	if errors.Is(err, openstack.ErrTokenInvalid) {
		return api.KeystoneToken{}, api.ErrInvalidToken
	}
	if err != nil {
		return api.KeystoneToken{}, err
	}
	user := info.User
	if info.Project != "" {
		user += " (project " + info.Project + ")"
	}
	return api.KeystoneToken{User: user, Roles: info.Roles, Expires: info.Expires}, nil
}
