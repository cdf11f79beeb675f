package vigil

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"gopkg.in/yaml.v3"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/fence/ipmi"
	"github.com/vigil-ha/vigil/fence/redfish"
	"github.com/vigil-ha/vigil/model"
)

var redfishFields = []string{"endpoint", "username", "password", "password_env", "password_file", "system", "ca_file", "insecure", "auth", "timeout", "confirm_timeout", "uuid"}

// redfish reads a host's redfish mapping into b; it returns each field's value node.
//
//	redfish: {endpoint: https://10.0.0.21, username: admin, password_env: VIGIL_REDFISH_PASSWORD,
//	          system: /redfish/v1/Systems/1, ca_file: /etc/vigil/bmc-ca.pem, timeout: 10s,
//	          confirm_timeout: 10s, auth: session, uuid: 4c4c4544-0042-3510-8052-b4c04f4d4e31}
//
// The password comes from exactly one of password_env, password_file or password.
// system is optional when the service has one system; ca_file names the CA that
// signed the BMC's certificate, insecure: true skips the check (and allows http://);
// uuid pins the system's UUID (PowerOff refuses a system that reports another).
func (c *checker) redfish(n *yaml.Node, path string, b *redfish.BMC) map[string]*yaml.Node {
	before := len(c.errs)
	nodes := map[string]*yaml.Node{}
	pw := secretFields{base: "password"}
	for _, e := range c.mapping(n, path, "a mapping (endpoint, username, password_env, ...)", redfishFields) {
		nodes[e.Key] = e.V
		if pw.take(c, e) {
			continue
		}
		switch e.Key {
		case "endpoint":
			b.Endpoint, _ = c.str(e.V, e.Path, "the BMC's Redfish service, https://ADDRESS[:PORT]")
		case "username":
			b.Username, _ = c.str(e.V, e.Path, "the BMC user's name")
		case "system":
			b.System, _ = c.str(e.V, e.Path, "the URI of the host's ComputerSystem, "+redfish.SystemsPrefix+"ID")
		case "ca_file":
			b.CAFile, _ = c.str(e.V, e.Path, "the PEM file of the CA that signed the BMC's certificate")
		case "insecure":
			b.Insecure, _ = c.boolean(e.V, e.Path)
		case "auth":
			if a, ok := c.str(e.V, e.Path, "session or basic"); ok {
				b.Auth = redfish.Auth(a)
			}
		case "uuid":
			if u, ok := c.str(e.V, e.Path, "the system's UUID, as Redfish shows it"); ok {
				pinned, err := redfish.ParseUUID(u)
				if err != nil {
					c.bad(e.V, e.Path, "%v", err)
				}
				b.UUID = pinned
			}
		case "timeout":
			b.Timeout, _ = c.positive(e.V, e.Path, "10s")
		case "confirm_timeout":
			b.ConfirmTimeout, _ = c.positive(e.V, e.Path, "10s")
		}
	}
	if !isMapping(n) || len(c.errs) > before {
		return nodes
	}
	b.Password = pw.password(c, n, path)
	return nodes
}

// validRedfish checks a host's redfish entry (at path, its mapping n, its fields'
// values fields) once its name is known, reporting its first mistake.
func (c *checker) validRedfish(b redfish.BMC, path string, n *yaml.Node, fields map[string]*yaml.Node) bool {
	err := b.Validate()
	if err == nil {
		return true
	}
	var fe *redfish.FieldError
	if !errors.As(err, &fe) {
		c.bad(n, path, "%v", err)
		return false
	}
	at := fields[fe.Field]
	if at == nil {
		at = n
	}
	msg := fe.Msg
	const give = "give https://ADDRESS[:PORT] (http:// only with insecure: true)"
	switch {
	case fe.Field == "endpoint" && fields["endpoint"] == nil:
		msg = "missing: give the BMC's Redfish service, https://ADDRESS[:PORT]"
	case fe.Field == "endpoint" && strings.Contains(b.Endpoint, "@"):
		// Never shown: it may hold a password.
		msg = "holds a user or password: give the service's address only, and username and password_env or password_file"
	case fe.Field == "endpoint" && strings.HasPrefix(msg, "must start with https://"):
		msg = fmt.Sprintf("%q has no https:// scheme: %s", b.Endpoint, give)
	case fe.Field == "endpoint" && strings.HasSuffix(msg, "is not a URL"):
		msg = fmt.Sprintf("%q is not a URL: %s", b.Endpoint, give)
	case fe.Field == "endpoint" && strings.HasPrefix(msg, "has no address"):
		msg = fmt.Sprintf("%q has no address: %s", b.Endpoint, give)
	case fe.Field == "endpoint" && strings.HasPrefix(msg, "must be the service's scheme"):
		msg = fmt.Sprintf("%q has a path: give the service's scheme, address and port only (/redfish/v1 is added)", b.Endpoint)
	case fe.Field == "username" && fields["username"] == nil:
		msg = "missing: give the BMC user's name (Redfish services need a user to reset a system)"
	}
	c.bad(at, path+"."+fe.Field, "%s", msg)
	return false
}

// hostFencers routes each host to the driver of its entry in the fencing section
// (IPMI or Redfish). It is a cloud.Fencer and a cloud.Identifier: the engine sees
// one fencer whatever each host's BMC speaks.
type hostFencers struct {
	ipmi    *ipmi.Fencer    // nil: no host speaks IPMI
	redfish *redfish.Fencer // nil: no host speaks Redfish
}

var (
	_ cloud.Fencer     = hostFencers{}
	_ cloud.Identifier = hostFencers{}
)

// fenceDriver is what each driver offers.
type fenceDriver interface {
	cloud.Fencer
	cloud.Identifier
	PowerOn(ctx context.Context, host string) error
}

// driver is the host's driver; a host in neither goes to one that says it has no
// BMC (terminal, cloud.ErrNotFound).
func (f hostFencers) driver(host string) fenceDriver {
	if f.redfish != nil && (f.redfish.CanFence(host) || f.ipmi == nil) {
		return f.redfish
	}
	return f.ipmi
}

func (f hostFencers) CanFence(host string) bool { return f.driver(host).CanFence(host) }

func (f hostFencers) PowerOff(ctx context.Context, host string) error {
	return f.driver(host).PowerOff(ctx, host)
}

func (f hostFencers) PowerStatus(ctx context.Context, host string) (model.Power, error) {
	return f.driver(host).PowerStatus(ctx, host)
}

func (f hostFencers) Identity(ctx context.Context, host string) (string, error) {
	return f.driver(host).Identity(ctx, host)
}

// PowerOn powers the host on through its driver (returning it to service).
func (f hostFencers) PowerOn(ctx context.Context, host string) error {
	return f.driver(host).PowerOn(ctx, host)
}
