package vigil

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/fence/ipmi"
)

// Fencer returns the fence driver of the policy file's fencing section, or nil
// (no host can be fenced) when it names no host.
func (c Config) Fencer() (cloud.Fencer, error) {
	if len(c.Fencing) == 0 {
		return nil, nil
	}
	f, err := ipmi.New(c.Fencing)
	if err != nil {
		return nil, fmt.Errorf("fencing: %w", err)
	}
	return f, nil
}

// fencing reads the fencing section:
//
//	fencing:
//	  hosts:
//	    - name: fake-compute-1
//	      ipmi: {address: 10.0.0.11, port: 623, username: admin, password_env: VIGIL_IPMI_PASSWORD,
//	             interface: lanplus, cipher_suite: 3, timeout: 5s,
//	             guid: 00112233-4455-6677-8899-aabbccddeeff}
//
// The password comes from exactly one of password_env (an environment variable),
// password_file (a file's first line) or password (in the policy file itself:
// discouraged). guid (optional) pins the GUID the BMC must report (as `ipmitool mc
// guid` prints it): a BMC that reports another is never used to power off. Two
// hosts whose entries reach one BMC (the same address and port, aliases such as
// localhost and 127.0.0.1 folded, or the same pinned GUID) are refused: powering
// off one would power off the other. Every host is read, a wrong one reported and
// left out (so the mistakes of all are found at once).
func (c *checker) fencing(sec entry) []ipmi.BMC {
	var bmcs []ipmi.BMC
	var paths []string
	for _, e := range c.mapping(sec.V, sec.Path, "a mapping", []string{"hosts"}) {
		seen := map[string]int{}
		for i, h := range c.list(e.V, e.Path, "hosts (each with a name and its ipmi)") {
			hp := index(e.Path, i)
			b, nameNode, ok := c.fencedHost(h, hp)
			if nameNode != nil && b.Host != "" {
				if line, dup := seen[b.Host]; dup {
					c.bad(nameNode, hp+".name", "host %q is listed twice (first at line %d): list each host once", b.Host, line)
					continue
				}
				seen[b.Host] = nameNode.Line
			}
			if !ok {
				continue
			}
			for j, o := range bmcs {
				if msg := oneBMCEach(o, b, paths[j]); msg != "" {
					field := ".ipmi.address"
					if o.GUID != "" && strings.EqualFold(o.GUID, b.GUID) {
						field = ".ipmi.guid"
					}
					c.bad(h, hp+field, "%s", msg)
					ok = false
					break
				}
			}
			if ok {
				bmcs = append(bmcs, b)
				paths = append(paths, hp)
			}
		}
	}
	return bmcs
}

// oneBMCEach says what is wrong with b when it reaches the BMC of o (at opath).
func oneBMCEach(o, b ipmi.BMC, opath string) string {
	if !ipmi.SameBMC(o, b) {
		return ""
	}
	if o.GUID != "" && strings.EqualFold(o.GUID, b.GUID) {
		return fmt.Sprintf("hosts %s and %s pin the same BMC GUID %s (%s.ipmi.guid): a BMC powers one machine: give %s its own BMC's GUID",
			o.Host, b.Host, b.GUID, opath, b.Host)
	}
	return fmt.Sprintf("hosts %s and %s share one BMC, %s (%s.ipmi): powering off one would power off the other: give %s its own BMC's address and port",
		o.Host, b.Host, b.Addr(), opath, b.Host)
}

func (c *checker) fencedHost(n *yaml.Node, path string) (ipmi.BMC, *yaml.Node, bool) {
	before := len(c.errs)
	var b ipmi.BMC
	var nameNode, ipmiNode *yaml.Node
	var fields map[string]*yaml.Node
	for _, e := range c.mapping(n, path, "a host (name and ipmi)", []string{"name", "ipmi"}) {
		switch e.Key {
		case "name":
			nameNode = e.V
			if h, ok := c.str(e.V, e.Path, "the compute host's name, as Nova lists it"); ok {
				if strings.TrimSpace(h) == "" {
					c.bad(e.V, e.Path, "empty: give the compute host's name, as Nova lists it")
				}
				b.Host = h
			}
		case "ipmi":
			ipmiNode = e.V
			fields = c.ipmi(e.V, e.Path, &b)
		}
	}
	if !isMapping(n) {
		return b, nil, false
	}
	if len(c.errs) > before {
		return b, nameNode, false // a field's mistake first (a typo'd ipmi is not also missing)
	}
	if nameNode == nil {
		c.bad(n, path+".name", "missing: give the compute host's name, as Nova lists it")
	}
	if ipmiNode == nil {
		c.bad(n, path+".ipmi", "missing: give how to reach the host's BMC (address, username, password_env)")
	}
	if len(c.errs) > before {
		return b, nameNode, false
	}
	if err := b.Validate(); err != nil {
		var fe *ipmi.FieldError
		if errors.As(err, &fe) {
			at := fields[fe.Field]
			if at == nil {
				at = ipmiNode
			}
			if rest, empty := strings.CutPrefix(fe.Msg, "must not be empty"); empty && fields[fe.Field] == nil {
				c.bad(at, path+".ipmi."+fe.Field, "missing: give it%s", rest)
			} else {
				c.bad(at, path+".ipmi."+fe.Field, "%s", fe.Msg)
			}
		} else {
			c.bad(ipmiNode, path+".ipmi", "%v", err)
		}
		return b, nameNode, false
	}
	return b, nameNode, true
}

var ipmiFields = []string{"address", "port", "username", "password", "password_env", "password_file", "interface", "guid", "cipher_suite", "timeout"}

// ipmi reads a host's ipmi mapping into b; it returns each field's value node.
func (c *checker) ipmi(n *yaml.Node, path string, b *ipmi.BMC) map[string]*yaml.Node {
	before := len(c.errs)
	nodes := map[string]*yaml.Node{}
	pw := secretFields{base: "password"}
	for _, e := range c.mapping(n, path, "a mapping (address, username, password_env, ...)", ipmiFields) {
		nodes[e.Key] = e.V
		if pw.take(c, e) {
			continue
		}
		switch e.Key {
		case "address":
			b.Address, _ = c.str(e.V, e.Path, "the BMC's address")
		case "port":
			b.Port, _ = c.between(e.V, e.Path, 1, 65535, "a UDP port: give 1 to 65535 (623 is IPMI's)")
		case "username":
			b.Username, _ = c.str(e.V, e.Path, "the BMC user's name")
		case "interface":
			var intf string
			if intf, _ = c.str(e.V, e.Path, "lanplus or lan"); intf != "" {
				b.Interface = ipmi.Interface(intf)
			}
		case "guid":
			if g, ok := c.str(e.V, e.Path, "the BMC's GUID, as `ipmitool mc guid` prints it"); ok {
				pinned, err := ipmi.ParseGUID(g)
				if err != nil {
					c.bad(e.V, e.Path, "%v", err)
				}
				b.GUID = pinned
			}
		case "cipher_suite":
			b.CipherSuite, _ = c.between(e.V, e.Path, 0, 19, "an RMCP+ cipher suite: give 0 to 19 (3 is the usual one)")
		case "timeout":
			b.Timeout, _ = c.positive(e.V, e.Path, "5s")
		}
	}
	if !isMapping(n) || len(c.errs) > before {
		return nodes
	}
	switch len(pw.sources) {
	case 0:
		c.bad(n, path, "no password: give password_env (an environment variable) or password_file")
	case 1:
		b.Password, _ = pw.read(c, path)
	default:
		c.bad(pw.nodes[pw.sources[1]], path, "%s: give only one way to the password", strings.Join(pw.sources, " and "))
	}
	return nodes
}

// secretFields collects the three ways a secret named base may be given in a
// mapping: base (inline), base_env, base_file. Its value never appears in an error.
type secretFields struct {
	base, inline, env, file string
	sources                 []string              // the keys given, in order
	nodes                   map[string]*yaml.Node // key -> its value
}

// take reads the entry into the secret when it is one of its three keys.
func (sf *secretFields) take(c *checker, e entry) bool {
	var dst *string
	switch e.Key {
	case sf.base:
		dst = &sf.inline
	case sf.base + "_env":
		dst = &sf.env
	case sf.base + "_file":
		dst = &sf.file
	default:
		return false
	}
	sf.sources = append(sf.sources, e.Key)
	if sf.nodes == nil {
		sf.nodes = map[string]*yaml.Node{}
	}
	sf.nodes[e.Key] = e.V
	if n := c.deref(e.V, e.Path); n != nil && (n.Kind != yaml.ScalarNode || isNull(n)) {
		c.bad(n, e.Path, "%s: must be a single value", kindOf(n))
		return true
	}
	*dst, _ = c.str(e.V, e.Path, "a single value")
	return true
}

// read returns the secret from the way it was given: inline, by an environment
// variable (base_env) or by a file's first line (base_file); path names the mapping.
func (sf *secretFields) read(c *checker, path string) (string, bool) {
	switch {
	case sf.env != "":
		k := sf.base + "_env"
		v, ok := os.LookupEnv(sf.env)
		if !ok || v == "" {
			c.bad(sf.nodes[k], join(path, k), "environment variable %s is not set: set it where Vigil runs, or give %s_file", sf.env, sf.base)
			return "", false
		}
		return v, true
	case sf.file != "":
		k := sf.base + "_file"
		data, err := os.ReadFile(sf.file)
		if err != nil {
			var pe *os.PathError
			if errors.As(err, &pe) {
				err = pe.Err // the path is in the message already
			}
			c.bad(sf.nodes[k], join(path, k), "cannot read %s (%v): give a file Vigil can read, its first line the %s", sf.file, err, sf.base)
			return "", false
		}
		v, _, _ := strings.Cut(string(data), "\n")
		v = strings.TrimSuffix(v, "\r")
		if v == "" {
			c.bad(sf.nodes[k], join(path, k), "%s is empty: its first line must be the %s", sf.file, sf.base)
			return "", false
		}
		return v, true
	}
	return sf.inline, true
}
