package vigil

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	gopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"

	"github.com/vigil-ha/vigil/cloud/openstack"
)

// keystoneToken is a token of clouds.yaml's entry name, and that entry's password.
func keystoneToken(t *testing.T, name string) (token, password string) {
	t.Helper()
	ao, _, _, err := clouds.Parse(clouds.WithCloudName(name))
	if err != nil {
		t.Fatalf("cloud %s: %v", name, err)
	}
	pc, err := gopenstack.AuthenticatedClient(context.Background(), ao)
	if err != nil {
		t.Fatalf("authenticate as %s: %v", name, err)
	}
	return pc.Token(), ao.Password
}

// Against the OpenStack peer's real Keystone (read only: tokens are validated,
// nothing is changed): the admin cloud's token may change Vigil, the demo user's
// (no admin role) gets 403, garbage 401; no token or password in the log.
func TestIntegrationKeystoneAuth(t *testing.T) {
	cloudName := os.Getenv("VIGIL_OPENSTACK_CLOUD")
	if cloudName == "" {
		t.Skip("VIGIL_OPENSTACK_CLOUD is not set: no OpenStack peer (. test/peers/openstack/env.sh)")
	}
	k, err := openstack.NewKeystone(context.Background(), openstack.Config{CloudName: cloudName})
	if err != nil {
		t.Fatal(err)
	}
	admin, adminPW := keystoneToken(t, cloudName)
	demo, demoPW := keystoneToken(t, cloudName+"-demo")

	app, logs := startWalkVigil(t, "auth: {keystone: true}\n", KeystoneAuth(k))
	srv := httptest.NewServer(app.api)
	body := `{"name": "ks", "members": ["` + app.Engine.Servers()[0].Server.ID + `"]}`
	defer srv.Close()

	for _, c := range []struct {
		what, token string
		want        int
	}{
		{"the admin's token", admin, http.StatusCreated},
		{"the admin's token again (cached)", admin, http.StatusConflict},
		{"the demo user's token (no admin role)", demo, http.StatusForbidden},
		{"garbage", "gAAAAABgarbage", http.StatusUnauthorized},
	} {
		code, _, body := send(t, srv.URL, http.MethodPost, "/v1/clusters", body, map[string]string{"X-Auth-Token": c.token})
		if code != c.want {
			t.Errorf("POST /v1/clusters with %s: %d %s, want %d", c.what, code, strings.TrimSpace(body), c.want)
		}
	}
	log := logs.String()
	for _, s := range []string{admin, demo, adminPW, demoPW} {
		if s != "" && strings.Contains(log, s) {
			t.Errorf("the log holds a Keystone token or password (%.6s...)", s)
		}
	}
}
