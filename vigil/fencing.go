package vigil

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/fence/ipmi"
	"github.com/vigil-ha/vigil/fence/redfish"
)

// Fencer returns the fence driver of the policy file's fencing section, or nil
// (no host can be fenced) when it names no host. With Redfish hosts it routes
// each host to its own driver (see hostFencers).
func (c Config) Fencer() (cloud.Fencer, error) {
	if len(c.Fencing) == 0 && len(c.Redfish) == 0 {
		return nil, nil
	}
	f, err := ipmi.New(c.Fencing)
	if err != nil {
		return nil, fmt.Errorf("fencing: %w", err)
	}
	if len(c.Redfish) == 0 {
		return f, nil
	}
	rf, err := redfish.New(c.Redfish)
	if err != nil {
		return nil, fmt.Errorf("fencing: %w", err)
	}
	both := hostFencers{redfish: rf}
	if len(c.Fencing) > 0 {
		both.ipmi = f
	}
	return both, nil
}

// parseFencing reads the fencing section:
//
//	fencing:
//	  hosts:
//	    - name: fake-compute-1
//	      ipmi: {address: 10.0.0.11, port: 623, username: admin, password_env: VIGIL_IPMI_PASSWORD,
//	             interface: lanplus, cipher_suite: 3, timeout: 5s,
//	             guid: 00112233-4455-6677-8899-aabbccddeeff}
//	    - name: fake-compute-2
//	      redfish: {endpoint: https://10.0.0.12, username: admin, password_env: VIGIL_REDFISH_PASSWORD}
//
// Each host has exactly one of ipmi (see below) or redfish (see parseRedfish).
// The password comes from exactly one of password_env (an environment variable),
// password_file (a file's first line) or password (in the policy file itself:
// discouraged). guid (optional) pins the GUID the BMC must report (as `ipmitool mc
// guid` prints it): a BMC that reports another is never used to power off. Two
// hosts whose entries reach one BMC (the same address and port, aliases such as
// localhost and 127.0.0.1 folded, or the same pinned GUID; for Redfish the same
// endpoint and system, or the same pinned UUID) are refused: powering off one
// would power off the other. It is walked by hand, not decoded into a struct, so
// that every error names its field's whole path (fencing.hosts[1].ipmi.port).
func parseFencing(n *yaml.Node) ([]ipmi.BMC, []redfish.BMC, error) {
	if n == nil || n.Kind == 0 {
		return nil, nil, nil
	}
	var bmcs []ipmi.BMC
	var rfs []redfish.BMC
	ipmiAt, rfAt := map[string]string{}, map[string]string{} // host -> its entry's path
	err := fields(n, "fencing", func(key string, v *yaml.Node, path string) error {
		if key != "hosts" {
			return unknown(path)
		}
		if v.Kind != yaml.SequenceNode {
			return fmt.Errorf("%s: must be a list of hosts", path)
		}
		seen := map[string]bool{}
		for i, h := range v.Content {
			hp := fmt.Sprintf("%s[%d]", path, i)
			e, err := parseFencedHost(h, hp)
			if err != nil {
				return err
			}
			if seen[e.host()] {
				return fmt.Errorf("%s.name: host %q is listed twice", hp, e.host())
			}
			seen[e.host()] = true
			if e.redfish != nil {
				for _, o := range rfs {
					if err := oneSystemEach(o, *e.redfish, rfAt[o.Host], hp); err != nil {
						return err
					}
				}
				for _, o := range bmcs {
					if err := onePinEach(o, *e.redfish, ipmiAt[o.Host], hp); err != nil {
						return err
					}
				}
				rfs, rfAt[e.redfish.Host] = append(rfs, *e.redfish), hp
				continue
			}
			b := *e.ipmi
			for _, o := range bmcs {
				if err := oneBMCEach(o, b, ipmiAt[o.Host], hp); err != nil {
					return err
				}
			}
			for _, o := range rfs {
				if err := onePinEach(b, o, hp, rfAt[o.Host]); err != nil {
					return err
				}
			}
			bmcs, ipmiAt[b.Host] = append(bmcs, b), hp
		}
		return nil
	})
	return bmcs, rfs, err
}

// onePinEach refuses an IPMI entry and a Redfish entry that pin one machine (the
// IPMI system GUID and the Redfish UUID are both its SMBIOS UUID). Their addresses
// are not compared: ports differ by protocol, and simulators share 127.0.0.1; the
// engine compares the identities the BMCs report (cloud.Identifier).
func onePinEach(i ipmi.BMC, r redfish.BMC, ipath, rpath string) error {
	if i.GUID == "" || !strings.EqualFold(i.GUID, r.UUID) {
		return nil
	}
	return fmt.Errorf("%s and %s: hosts %s and %s pin the same machine (%s): powering off one would power off the other; give each host its own BMC",
		ipath, rpath, i.Host, r.Host, r.UUID)
}

// oneBMCEach refuses b (at path) when it reaches the BMC of o (at opath).
func oneBMCEach(o, b ipmi.BMC, opath, path string) error {
	if !ipmi.SameBMC(o, b) {
		return nil
	}
	if o.GUID != "" && strings.EqualFold(o.GUID, b.GUID) {
		return fmt.Errorf("%s.ipmi.guid: hosts %s and %s pin the same BMC GUID %s (%s.ipmi.guid): a BMC powers one machine; give %s its own BMC's GUID",
			path, o.Host, b.Host, b.GUID, opath, b.Host)
	}
	return fmt.Errorf("%s.ipmi.address: hosts %s and %s share one BMC, %s (%s.ipmi): powering off one would power off the other; give %s its own BMC's address and port",
		path, o.Host, b.Host, b.Addr(), opath, b.Host)
}

// fencedHost is one entry of fencing.hosts: exactly one of ipmi and redfish is set.
type fencedHost struct {
	ipmi    *ipmi.BMC
	redfish *redfish.BMC
}

func (e fencedHost) host() string {
	if e.redfish != nil {
		return e.redfish.Host
	}
	return e.ipmi.Host
}

func parseFencedHost(n *yaml.Node, path string) (fencedHost, error) {
	var b ipmi.BMC
	var rf redfish.BMC
	var name string
	var sawIPMI, sawRedfish bool
	err := fields(n, path, func(key string, v *yaml.Node, p string) error {
		switch key {
		case "name":
			return scalar(v, p, &name)
		case "ipmi":
			sawIPMI = true
			return parseIPMI(v, p, &b)
		case "redfish":
			sawRedfish = true
			return parseRedfish(v, p, &rf)
		}
		return unknown(p)
	})
	b.Host, rf.Host = name, name
	switch {
	case err != nil:
		return fencedHost{}, err
	case name == "":
		return fencedHost{}, fmt.Errorf("%s.name: must not be empty (the compute host's name, as Nova lists it)", path)
	case sawIPMI && sawRedfish:
		return fencedHost{}, fmt.Errorf("%s: give one of ipmi and redfish, not both (the one BMC that powers the host)", path)
	case sawRedfish:
		return fencedHost{redfish: &rf}, validRedfish(rf, path)
	case !sawIPMI:
		return fencedHost{}, fmt.Errorf("%s.ipmi: missing (how to reach the host's BMC: give ipmi or redfish)", path)
	}
	if err := b.Validate(); err != nil {
		var fe *ipmi.FieldError
		if errors.As(err, &fe) {
			return fencedHost{}, fmt.Errorf("%s.ipmi.%s: %s", path, fe.Field, fe.Msg)
		}
		return fencedHost{}, fmt.Errorf("%s.ipmi: %w", path, err)
	}
	return fencedHost{ipmi: &b}, nil
}

func parseIPMI(n *yaml.Node, path string, b *ipmi.BMC) error {
	var intf string
	pw := secretFields{base: "password"}
	err := fields(n, path, func(key string, v *yaml.Node, p string) error {
		if ok, err := pw.take(key, v, p); ok {
			return err
		}
		switch key {
		case "address":
			return scalar(v, p, &b.Address)
		case "port":
			return scalar(v, p, &b.Port)
		case "username":
			return scalar(v, p, &b.Username)
		case "interface":
			return scalar(v, p, &intf)
		case "guid":
			var g string
			if err := scalar(v, p, &g); err != nil {
				return err
			}
			pinned, err := ipmi.ParseGUID(g)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			b.GUID = pinned
			return nil
		case "cipher_suite":
			return scalar(v, p, &b.CipherSuite)
		case "timeout":
			var d time.Duration
			if err := scalar(v, p, &d); err != nil {
				return err
			}
			if d <= 0 {
				return fmt.Errorf("%s: must be positive, got %s", p, d)
			}
			b.Timeout = d
			return nil
		}
		return unknown(p)
	})
	if err != nil {
		return err
	}
	b.Interface = ipmi.Interface(intf)
	switch len(pw.sources) {
	case 0:
		return fmt.Errorf("%s: no password: give password_env (an environment variable) or password_file", path)
	case 1:
	default:
		return fmt.Errorf("%s: %s: give only one way to the password", path, strings.Join(pw.sources, " and "))
	}
	if b.Password, err = pw.read(path); err != nil {
		return err
	}
	return nil
}

// secret reads a secret given inline, by an environment variable (key_env) or by a
// file's first line (key_file), whichever one is set; path names the mapping.
func secret(path, key, inline, env, file string) (string, error) {
	switch {
	case env != "":
		v, ok := os.LookupEnv(env)
		if !ok || v == "" {
			return "", fmt.Errorf("%s.%s_env: environment variable %s is not set", path, key, env)
		}
		return v, nil
	case file != "":
		data, err := os.ReadFile(file)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the path is in the message already
			}
			return "", fmt.Errorf("%s.%s_file: cannot read %s: %v", path, key, file, err)
		}
		v, _, _ := strings.Cut(string(data), "\n")
		v = strings.TrimSuffix(v, "\r")
		if v == "" {
			return "", fmt.Errorf("%s.%s_file: %s is empty", path, key, file)
		}
		return v, nil
	}
	return inline, nil
}

// secretFields collects the three ways a secret named base may be given in a
// mapping: base (inline), base_env, base_file.
type secretFields struct {
	base, inline, env, file string
	sources                 []string // the keys given, in order
}

// take reads key into the secret when it is one of its three keys.
func (sf *secretFields) take(key string, v *yaml.Node, path string) (bool, error) {
	var dst *string
	switch key {
	case sf.base:
		dst = &sf.inline
	case sf.base + "_env":
		dst = &sf.env
	case sf.base + "_file":
		dst = &sf.file
	default:
		return false, nil
	}
	sf.sources = append(sf.sources, key)
	return true, scalar(v, path, dst)
}

// read returns the secret from the way it was given (see secret); path names the mapping.
func (sf *secretFields) read(path string) (string, error) {
	return secret(path, sf.base, sf.inline, sf.env, sf.file)
}

// fields calls fn with each key of a mapping node, its value and its path.
func fields(n *yaml.Node, path string, fn func(key string, v *yaml.Node, path string) error) error {
	if n.Kind != yaml.MappingNode {
		return fmt.Errorf("%s: must be a mapping (line %d)", path, n.Line)
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		key := n.Content[i].Value
		p := path + "." + key
		if seen[key] {
			return fmt.Errorf("%s: given twice (line %d)", p, n.Content[i].Line)
		}
		seen[key] = true
		if err := fn(key, n.Content[i+1], p); err != nil {
			return err
		}
	}
	return nil
}

func scalar[T any](v *yaml.Node, path string, dst *T) error {
	if v.Kind != yaml.ScalarNode {
		return fmt.Errorf("%s: must be a single value (line %d)", path, v.Line)
	}
	if err := v.Decode(dst); err != nil {
		return fmt.Errorf("%s: cannot read %q as %T (line %d)", path, v.Value, *dst, v.Line)
	}
	return nil
}

func unknown(path string) error {
	return fmt.Errorf("%s: unknown field", path)
}
