package openstack

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A clouds.yaml entry without auth: (or with an empty one, or without auth_url)
// made `vigil serve` panic; it is now an error naming the file, the cloud and the
// missing key. No network is reached: the entry is refused before.
func TestCloudsYAMLEntryWithoutAuthIsAnError(t *testing.T) {
	cases := map[string]string{
		"no auth":           "clouds:\n  c1:\n    region_name: RegionOne\n",
		"empty auth":        "clouds:\n  c1:\n    auth:\n    region_name: RegionOne\n",
		"auth not a map":    "clouds:\n  c1:\n    auth: yes\n",
		"no auth_url":       "clouds:\n  c1:\n    auth:\n      username: admin\n      password: secret-pw\n",
		"cloud not a map":   "clouds:\n  c1: 3\n",
		"empty cloud entry": "clouds:\n  c1:\n",
	}
	for name, doc := range cases {
		t.Run(name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "clouds.yaml")
			if err := os.WriteFile(file, []byte(doc), 0o600); err != nil {
				t.Fatal(err)
			}
			var err error
			func() {
				defer func() {
					if p := recover(); p != nil {
						t.Fatalf("panic: %v", p)
					}
				}()
				_, err = New(context.Background(), Config{CloudName: "c1", CloudsFile: file})
			}()
			if err == nil || !strings.Contains(err.Error(), file) || !strings.Contains(err.Error(), `"c1"`) || !strings.Contains(err.Error(), "auth") {
				t.Fatalf("got %v, want an error naming %s, cloud c1 and the auth key", err, file)
			}
			if strings.Contains(err.Error(), "secret-pw") {
				t.Fatalf("the error shows the password: %v", err)
			}
		})
	}
}
