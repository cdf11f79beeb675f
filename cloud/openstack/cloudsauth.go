package openstack

import (
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"
)

// checkAuth refuses a cloud entry without a usable auth: mapping, which
// gophercloud's clouds.Parse dereferences (a nil auth was a panic of `vigil
// serve`). The auth may also come from secure.yaml beside clouds.yaml, as the
// OpenStack clients read it. Values are never quoted: they may be secrets.
func checkAuth(file, name string, entry yaml.Node) error {
	where := fmt.Sprintf("cloud %q in %s", name, file)
	if entry.Kind != yaml.MappingNode {
		return fmt.Errorf("%s (line %d): want a mapping with an auth: section (auth_url, credentials), got %s", where, entry.Line, kindName(entry))
	}
	auth := mapValue(&entry, "auth")
	if auth == nil {
		auth = secureAuth(file, name)
	}
	switch {
	case auth == nil:
		return fmt.Errorf("%s (line %d): no auth: section; give auth: with auth_url and the credentials (username and password, or an application credential)", where, entry.Line)
	case auth.Kind != yaml.MappingNode || len(auth.Content) == 0:
		return fmt.Errorf("%s (line %d): auth: is empty or not a mapping; give auth_url and the credentials under it", where, auth.Line)
	case mapValue(auth, "auth_url") == nil:
		return fmt.Errorf("%s (line %d): auth: has no auth_url (Keystone's URL, e.g. https://keystone.example:5000/v3)", where, auth.Line)
	}
	return nil
}

// secureAuth is the cloud's auth: in secure.yaml beside clouds.yaml, or nil.
func secureAuth(file, name string) *yaml.Node {
	data, err := os.ReadFile(filepath.Join(filepath.Dir(file), "secure.yaml"))
	if err != nil {
		return nil
	}
	var doc struct {
		Clouds map[string]yaml.Node `yaml:"clouds"`
	}
	if yaml.Unmarshal(data, &doc) != nil {
		return nil
	}
	entry, ok := doc.Clouds[name]
	if !ok || entry.Kind != yaml.MappingNode {
		return nil
	}
	return mapValue(&entry, "auth")
}

// mapValue is the value of key in a mapping node, or nil (also for a null value).
func mapValue(m *yaml.Node, key string) *yaml.Node {
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			v := m.Content[i+1]
			if v.Kind == yaml.ScalarNode && v.Tag == "!!null" {
				return nil
			}
			return v
		}
	}
	return nil
}

func kindName(n yaml.Node) string {
	switch n.Kind {
	case yaml.ScalarNode:
		if n.Tag == "!!null" {
			return "nothing"
		}
		return "a scalar"
	case yaml.SequenceNode:
		return "a list"
	}
	return "nothing"
}
