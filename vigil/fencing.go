package vigil

import (
	"errors"
	"fmt"
	"os"
	"strings"

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

// fencing reads the fencing section:
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
// Each host has exactly one of ipmi (see below) or redfish (see checker.redfish).
// The password comes from exactly one of password_env (an environment variable),
// password_file (a file's first line) or password (in the policy file itself:
// discouraged). guid (optional) pins the GUID the BMC must report (as `ipmitool mc
// guid` prints it): a BMC that reports another is never used to power off. Two
// hosts whose entries reach one BMC (the same address and port, aliases such as
// localhost and 127.0.0.1 folded, or the same pinned GUID; for Redfish the same
// endpoint and system, or the same pinned UUID; an IPMI GUID and a Redfish UUID
// that are equal) are refused: powering off one would power off the other. Every
// host is read, a wrong one reported and left out (so the mistakes of all are
// found at once).
func (c *checker) fencing(sec entry) ([]ipmi.BMC, []redfish.BMC) {
	var bmcs []ipmi.BMC
	var rfs []redfish.BMC
	var ipaths, rpaths []string
	for _, e := range c.mapping(sec.V, sec.Path, "a mapping", []string{"hosts"}) {
		seen := map[string]int{}
		for i, h := range c.list(e.V, e.Path, "hosts (each with a name and its ipmi or redfish)") {
			hp := index(e.Path, i)
			fh, ok := c.fencedHost(h, hp)
			if fh.nameNode != nil && fh.name != "" {
				if line, dup := seen[fh.name]; dup {
					c.bad(fh.nameNode, hp+".name", "host %q is listed twice (first at line %d): list each host once", fh.name, line)
					continue
				}
				seen[fh.name] = fh.nameNode.Line
			}
			if !ok {
				continue
			}
			if fh.redfish != nil {
				b := *fh.redfish
				if c.oneMachineEach(fh, hp, bmcs, ipaths, rfs, rpaths) {
					rfs = append(rfs, b)
					rpaths = append(rpaths, hp)
				}
				continue
			}
			if c.oneMachineEach(fh, hp, bmcs, ipaths, rfs, rpaths) {
				bmcs = append(bmcs, *fh.ipmi)
				ipaths = append(ipaths, hp)
			}
		}
	}
	return bmcs, rfs
}

// oneMachineEach reports fh (at hp) when it reaches the machine of an entry read
// before it (IPMI entries bmcs at ipaths, Redfish entries rfs at rpaths), and says
// whether it may be kept.
func (c *checker) oneMachineEach(fh fencedHost, hp string, bmcs []ipmi.BMC, ipaths []string, rfs []redfish.BMC, rpaths []string) bool {
	report := func(field, msg string) bool {
		at := fh.fields[field]
		if at == nil {
			at = fh.node
		}
		c.bad(at, hp+"."+fh.kind+"."+field, "%s", msg)
		return false
	}
	if b := fh.ipmi; b != nil {
		for j, o := range bmcs {
			if msg := oneBMCEach(o, *b, ipaths[j]); msg != "" {
				field := "address"
				if o.GUID != "" && strings.EqualFold(o.GUID, b.GUID) {
					field = "guid"
				}
				return report(field, msg)
			}
		}
		for j, o := range rfs {
			if msg := onePinEach(o.Host, o.UUID, rpaths[j]+".redfish.uuid", b.Host, b.GUID); msg != "" {
				return report("guid", msg)
			}
		}
		return true
	}
	b := *fh.redfish
	for j, o := range rfs {
		if field, msg := oneSystemEach(o, b, rpaths[j]); msg != "" {
			return report(field, msg)
		}
	}
	for j, o := range bmcs {
		if msg := onePinEach(o.Host, o.GUID, ipaths[j]+".ipmi.guid", b.Host, b.UUID); msg != "" {
			return report("uuid", msg)
		}
	}
	return true
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

// oneSystemEach says which field of b is wrong, and how, when b reaches the
// Redfish system of o (at opath).
func oneSystemEach(o, b redfish.BMC, opath string) (field, msg string) {
	if !redfish.SameSystem(o, b) {
		return "", ""
	}
	if o.UUID != "" && o.UUID == b.UUID {
		return "uuid", fmt.Sprintf("hosts %s and %s pin the same system UUID %s (%s.redfish.uuid): powering off one would power off the other: give %s its own system's UUID",
			o.Host, b.Host, b.UUID, opath, b.Host)
	}
	return "system", fmt.Sprintf("hosts %s and %s reach one system, %s %s (%s.redfish): powering off one would power off the other: give %s its own endpoint or system",
		o.Host, b.Host, o.Endpoint, orOnly(o.System), opath, b.Host)
}

func orOnly(system string) string {
	if system == "" {
		return "(its only system)"
	}
	return system
}

// onePinEach says what is wrong when a host (name, pin) pins the machine an entry
// of the other protocol (oname, opin at opath) pins: the IPMI system GUID and the
// Redfish UUID are both the machine's SMBIOS UUID. Their addresses are not
// compared: ports differ by protocol, and simulators share 127.0.0.1; the engine
// compares the identities the BMCs report (cloud.Identifier).
func onePinEach(oname, opin, opath, name, pin string) string {
	if opin == "" || !strings.EqualFold(opin, pin) {
		return ""
	}
	return fmt.Sprintf("hosts %s and %s pin the same machine %s (%s): powering off one would power off the other: give each host its own BMC",
		oname, name, strings.ToLower(pin), opath)
}

// fencedHost is one entry of fencing.hosts as read: exactly one of ipmi and
// redfish is set when it is valid.
type fencedHost struct {
	name     string
	nameNode *yaml.Node
	ipmi     *ipmi.BMC
	redfish  *redfish.BMC
	kind     string                // "ipmi" or "redfish"
	node     *yaml.Node            // the ipmi or redfish mapping
	fields   map[string]*yaml.Node // its fields' values
}

var fencedHostFields = []string{"name", "ipmi", "redfish"}

func (c *checker) fencedHost(n *yaml.Node, path string) (fencedHost, bool) {
	before := len(c.errs)
	var fh fencedHost
	var b ipmi.BMC
	var rf redfish.BMC
	var ipmiKey, redfishKey *yaml.Node
	var ipmiFields, redfishFields map[string]*yaml.Node
	for _, e := range c.mapping(n, path, "a host (name, and ipmi or redfish)", fencedHostFields) {
		switch e.Key {
		case "name":
			fh.nameNode = e.V
			if h, ok := c.str(e.V, e.Path, "the compute host's name, as Nova lists it"); ok {
				if strings.TrimSpace(h) == "" {
					c.bad(e.V, e.Path, "empty: give the compute host's name, as Nova lists it")
				}
				fh.name = h
			}
		case "ipmi":
			ipmiKey, fh.kind, fh.node = e.KeyNode, "ipmi", e.V
			ipmiFields = c.ipmi(e.V, e.Path, &b)
		case "redfish":
			redfishKey, fh.kind, fh.node = e.KeyNode, "redfish", e.V
			redfishFields = c.redfish(e.V, e.Path, &rf)
		}
	}
	b.Host, rf.Host = fh.name, fh.name
	if !isMapping(n) {
		return fh, false
	}
	if ipmiKey != nil && redfishKey != nil {
		second := max(ipmiKey.Line, redfishKey.Line)
		c.at(second, path, "both ipmi and redfish given: give one of them, the one BMC that powers the host")
		return fh, false
	}
	if len(c.errs) > before {
		return fh, false // a field's mistake first (a typo'd ipmi is not also missing)
	}
	if fh.nameNode == nil {
		c.bad(n, path+".name", "missing: give the compute host's name, as Nova lists it")
	}
	if ipmiKey == nil && redfishKey == nil {
		c.bad(n, path+".ipmi", "missing: give how to reach the host's BMC: ipmi (address, username, password_env) or redfish (endpoint, username, password_env)")
	}
	if len(c.errs) > before {
		return fh, false
	}
	if redfishKey != nil {
		fh.fields = redfishFields
		if !c.validRedfish(rf, path+".redfish", fh.node, redfishFields) {
			return fh, false
		}
		fh.redfish = &rf
		return fh, true
	}
	fh.fields = ipmiFields
	if err := b.Validate(); err != nil {
		var fe *ipmi.FieldError
		if errors.As(err, &fe) {
			at := ipmiFields[fe.Field]
			if at == nil {
				at = fh.node
			}
			if rest, empty := strings.CutPrefix(fe.Msg, "must not be empty"); empty && ipmiFields[fe.Field] == nil {
				c.bad(at, path+".ipmi."+fe.Field, "missing: give it%s", rest)
			} else {
				c.bad(at, path+".ipmi."+fe.Field, "%s", fe.Msg)
			}
		} else {
			c.bad(fh.node, path+".ipmi", "%v", err)
		}
		return fh, false
	}
	fh.ipmi = &b
	return fh, true
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
	b.Password = pw.password(c, n, path)
	return nodes
}

// password reads a BMC entry's password (at path, its mapping n): given exactly
// one way, else an error saying what to give.
func (sf *secretFields) password(c *checker, n *yaml.Node, path string) string {
	switch len(sf.sources) {
	case 0:
		c.bad(n, path, "no password: give password_env (an environment variable) or password_file")
	case 1:
		pw, _ := sf.read(c, path)
		return pw
	default:
		c.bad(sf.nodes[sf.sources[1]], path, "%s: give only one way to the password", strings.Join(sf.sources, " and "))
	}
	return ""
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
