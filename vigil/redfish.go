package vigil

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vigil-ha/vigil/cloud"
	"github.com/vigil-ha/vigil/fence/ipmi"
	"github.com/vigil-ha/vigil/fence/redfish"
	"github.com/vigil-ha/vigil/model"
)

// parseRedfish reads a host's redfish entry:
//
//	redfish: {endpoint: https://10.0.0.21, username: admin, password_env: VIGIL_REDFISH_PASSWORD,
//	          system: /redfish/v1/Systems/1, ca_file: /etc/vigil/bmc-ca.pem, timeout: 10s,
//	          confirm_timeout: 10s, auth: session, uuid: 4c4c4544-0042-3510-8052-b4c04f4d4e31}
//
// The password comes from exactly one of password_env, password_file or password.
// system is optional when the service has one system; ca_file names the CA that
// signed the BMC's certificate, insecure: true skips the check (and allows http://);
// uuid pins the system's UUID (PowerOff refuses a system that reports another).
func parseRedfish(n *yaml.Node, path string, b *redfish.BMC) error {
	pw := secretFields{base: "password"}
	err := fields(n, path, func(key string, v *yaml.Node, p string) error {
		if ok, err := pw.take(key, v, p); ok {
			return err
		}
		switch key {
		case "endpoint":
			return scalar(v, p, &b.Endpoint)
		case "username":
			return scalar(v, p, &b.Username)
		case "system":
			return scalar(v, p, &b.System)
		case "ca_file":
			return scalar(v, p, &b.CAFile)
		case "insecure":
			return scalar(v, p, &b.Insecure)
		case "auth":
			var a string
			err := scalar(v, p, &a)
			b.Auth = redfish.Auth(a)
			return err
		case "uuid":
			var u string
			if err := scalar(v, p, &u); err != nil {
				return err
			}
			pinned, err := redfish.ParseUUID(u)
			if err != nil {
				return fmt.Errorf("%s: %w", p, err)
			}
			b.UUID = pinned
			return nil
		case "timeout", "confirm_timeout":
			var d time.Duration
			if err := scalar(v, p, &d); err != nil {
				return err
			}
			if d <= 0 {
				return fmt.Errorf("%s: must be positive, got %s", p, d)
			}
			if key == "timeout" {
				b.Timeout = d
			} else {
				b.ConfirmTimeout = d
			}
			return nil
		}
		return unknown(p)
	})
	if err != nil {
		return err
	}
	switch len(pw.sources) {
	case 0:
		return fmt.Errorf("%s: no password: give password_env (an environment variable) or password_file", path)
	case 1:
	default:
		return fmt.Errorf("%s: %s: give only one way to the password", path, strings.Join(pw.sources, " and "))
	}
	b.Password, err = pw.read(path)
	return err
}

// validRedfish checks a host's redfish entry once its name is known; path names
// the entry.
func validRedfish(b redfish.BMC, path string) error {
	if err := b.Validate(); err != nil {
		var fe *redfish.FieldError
		if errors.As(err, &fe) {
			return fmt.Errorf("%s.redfish.%s: %s", path, fe.Field, fe.Msg)
		}
		return fmt.Errorf("%s.redfish: %w", path, err)
	}
	return nil
}

// oneSystemEach refuses b (at path) when it reaches the system of o (at opath).
func oneSystemEach(o, b redfish.BMC, opath, path string) error {
	if !redfish.SameSystem(o, b) {
		return nil
	}
	if o.UUID != "" && o.UUID == b.UUID {
		return fmt.Errorf("%s.redfish.uuid: hosts %s and %s pin the same system UUID %s (%s.redfish.uuid): powering off one would power off the other; give %s its own system's UUID",
			path, o.Host, b.Host, b.UUID, opath, b.Host)
	}
	return fmt.Errorf("%s.redfish.system: hosts %s and %s reach one system, %s %s (%s.redfish): powering off one would power off the other; give %s its own endpoint or system",
		path, o.Host, b.Host, o.Endpoint, orOnly(o.System), opath, b.Host)
}

func orOnly(system string) string {
	if system == "" {
		return "(its only system)"
	}
	return system
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
