package main

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A wrong clouds.yaml is an error that names the file and the cloud: no panic, and
// no Vigil that starts watching nothing.
func TestServeWithAWrongCloudsFile(t *testing.T) {
	other := filepath.Join(t.TempDir(), "clouds.yaml")
	if err := os.WriteFile(other, []byte("clouds:\n  prod:\n    auth: {auth_url: http://127.0.0.1:1/v3}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ name, file string }{
		{"missing file", "/nonexistent.yaml"},
		{"no such cloud in the file", other},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv("VIGIL_AMQP_URL", "")
			cmd := rootCmd()
			cmd.SetArgs([]string{"serve", "--os-cloud", "nope", "--os-client-config-file", c.file,
				"--db", filepath.Join(t.TempDir(), "vigil.db"), "--listen", "127.0.0.1:0"})
			err := cmd.ExecuteContext(context.Background())
			if err == nil {
				t.Fatal("serve with a wrong clouds.yaml: no error")
			}
			for _, want := range []string{c.file, `"nope"`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %s", err, want)
				}
			}
			t.Log(err)
		})
	}
}
