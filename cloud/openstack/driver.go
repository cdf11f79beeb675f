package openstack

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gophercloud/gophercloud/v2"
	gopenstack "github.com/gophercloud/gophercloud/v2/openstack"
	"github.com/gophercloud/gophercloud/v2/openstack/config/clouds"
	"gopkg.in/yaml.v3"

	"github.com/vigil-ha/vigil/cloud"
)

// NewestMicroversion is the newest compute microversion this driver knows; it
// negotiates min(Nova's maximum, this).
const NewestMicroversion = "2.93"

// oldestMicroversion is what the driver needs: 2.53 addresses services by UUID for
// force-down and lets evacuate omit the host (2.29) and onSharedStorage (2.14).
const oldestMicroversion = "2.53"

// Config says which cloud to talk to and how patiently.
type Config struct {
	// CloudName is the clouds.yaml entry; "" means $OS_CLOUD.
	CloudName string
	// CloudsFile is the clouds.yaml path; "" means $OS_CLIENT_CONFIG_FILE, then
	// ./clouds.yaml, ~/.config/openstack/clouds.yaml, /etc/openstack/clouds.yaml.
	CloudsFile string
	// Timeout bounds each request to the cloud, a GET's retries included (default
	// 10 s); a listing of many pages makes one request per page.
	Timeout time.Duration
	// ResyncInterval is how often a poller should list everything instead of
	// changes-since, to repair drift (default 5 min); see ResyncDue.
	ResyncInterval time.Duration
	// ServiceUserIDs are keystone user IDs whose stop actions do not count as an
	// owner's intent (e.g. the nova service user); requests with no user never do.
	ServiceUserIDs []string
	// Now reads the clock for ResyncDue (default time.Now).
	Now func() time.Time
	// PlacementInterval: free room per host is read from Placement at most this
	// often (default 15 s); GroupsInterval: server groups (default 60 s).
	PlacementInterval time.Duration
	GroupsInterval    time.Duration
	// Transport, when set, wraps the driver's HTTP transport (every request to
	// the cloud, authentication included, goes through it): Vigil's metrics
	// count the calls there.
	Transport func(http.RoundTripper) http.RoundTripper
}

// Driver is a cloud.Compute for one OpenStack cloud. It is safe for concurrent use.
type Driver struct {
	cfg      Config
	cloud    string // the cloud name, for messages
	compute  *gophercloud.ServiceClient
	eo       gophercloud.EndpointOpts
	version  string
	counter  *callCounter
	clock    *cloudClock
	mu       sync.Mutex
	services map[string]string // host name -> nova-compute service UUID
	intents  map[string]intentEntry
	lastFull time.Time
	// orch is Heat's endpoint (groups.go); nil with orchErr when the catalog has none.
	orch    *gophercloud.ServiceClient
	orchErr error
	heat    heatScope
	// placement is the Placement service's client (nil: not in the catalog); pl
	// its cached answers and the server groups (placement.go).
	placement *gophercloud.ServiceClient
	pl        placementCache
}

var (
	_ cloud.Compute = (*Driver)(nil)
	_ cloud.Clock   = (*Driver)(nil)
)

// New reads the cloud's entry from clouds.yaml, authenticates and negotiates the
// compute microversion. Its errors name the clouds.yaml file and the cloud.
func New(ctx context.Context, cfg Config) (*Driver, error) {
	if cfg.CloudName == "" {
		cfg.CloudName = os.Getenv("OS_CLOUD")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 10 * time.Second
	}
	if cfg.ResyncInterval <= 0 {
		cfg.ResyncInterval = 5 * time.Minute
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.PlacementInterval <= 0 {
		cfg.PlacementInterval = 15 * time.Second
	}
	if cfg.GroupsInterval <= 0 {
		cfg.GroupsInterval = time.Minute
	}
	if cfg.CloudName == "" {
		return nil, errors.New("no OpenStack cloud named: set OS_CLOUD or --os-cloud to an entry of clouds.yaml")
	}
	file, authOpts, endpointOpts, tlsCfg, err := cloudEntry(cfg.CloudsFile, cfg.CloudName)
	if err != nil {
		return nil, err
	}

	counter := &callCounter{calls: map[string]int{}}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsCfg
	provider, err := gopenstack.NewClient(authOpts.IdentityEndpoint)
	if err != nil {
		return nil, fmt.Errorf("cloud %q in %s: auth_url %q: %w", cfg.CloudName, file, authOpts.IdentityEndpoint, err)
	}
	clock := newCloudClock(time.Now)
	var rt http.RoundTripper = &clockTransport{next: transport, clock: clock}
	if cfg.Transport != nil {
		rt = cfg.Transport(rt)
	}
	provider.HTTPClient = http.Client{Timeout: cfg.Timeout, Transport: &countingTransport{next: rt, counter: counter}}

	d := &Driver{cfg: cfg, cloud: cfg.CloudName, counter: counter, clock: clock, eo: endpointOpts,
		services: map[string]string{}, intents: map[string]intentEntry{}}

	actx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	if err := gopenstack.Authenticate(withOp(actx, "auth"), provider, authOpts); err != nil {
		return nil, fmt.Errorf("authenticate to cloud %q (%s, from %s) as user %q: %w",
			cfg.CloudName, authOpts.IdentityEndpoint, file, authOpts.Username, classify(err))
	}
	d.compute, err = gopenstack.NewComputeV2(provider, endpointOpts)
	if err != nil {
		return nil, fmt.Errorf("cloud %q in %s: no compute endpoint in the catalog: %w", cfg.CloudName, file, err)
	}
	if pc, err := gopenstack.NewPlacementV1(provider, endpointOpts); err == nil {
		d.placement = pc // without it, hosts' free room is unknown and Nova's scheduler decides
	}
	endpoint, err := url.Parse(d.compute.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("cloud %q in %s: compute endpoint %q: %w", cfg.CloudName, file, d.compute.Endpoint, err)
	}
	clock.setHost(endpoint.Host)
	d.orch, d.orchErr = gopenstack.NewOrchestrationV1(provider, endpointOpts)
	if err := d.negotiate(ctx); err != nil {
		return nil, fmt.Errorf("cloud %q: %w", cfg.CloudName, err)
	}
	return d, nil
}

// findCloudsFile returns the clouds.yaml to read, with the same search order as the
// OpenStack clients, so that errors can name it.
// cloudEntry reads the clouds.yaml entry named cloudName (in cloudsFile, or where
// clouds.yaml is looked for): the file it was found in, its auth and endpoint
// options (reauthentication on) and its TLS settings (TLS 1.2 at least when the
// entry sets none). Errors name the file and the cloud.
func cloudEntry(cloudsFile, cloudName string) (string, gophercloud.AuthOptions, gophercloud.EndpointOpts, *tls.Config, error) {
	var ao gophercloud.AuthOptions
	var eo gophercloud.EndpointOpts
	file, err := findCloudsFile(cloudsFile)
	if err != nil {
		return "", ao, eo, nil, fmt.Errorf("cloud %q: %w", cloudName, err)
	}
	if err := checkCloudEntry(file, cloudName); err != nil {
		return "", ao, eo, nil, err
	}
	ao, eo, tlsCfg, err := clouds.Parse(clouds.WithLocations(file), clouds.WithCloudName(cloudName))
	if err != nil {
		return "", ao, eo, nil, fmt.Errorf("cloud %q in %s: %w", cloudName, file, err)
	}
	if ao.IdentityEndpoint == "" {
		return "", ao, eo, nil, fmt.Errorf("cloud %q in %s has no auth.auth_url", cloudName, file)
	}
	ao.AllowReauth = true
	if tlsCfg == nil {
		tlsCfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	return file, ao, eo, tlsCfg, nil
}

func findCloudsFile(explicit string) (string, error) {
	if explicit != "" {
		if _, err := os.Stat(explicit); err != nil {
			return "", fmt.Errorf("clouds.yaml %s: %w", explicit, err)
		}
		return explicit, nil
	}
	if env := os.Getenv("OS_CLIENT_CONFIG_FILE"); env != "" {
		if _, err := os.Stat(env); err != nil {
			return "", fmt.Errorf("clouds.yaml %s (from OS_CLIENT_CONFIG_FILE): %w", env, err)
		}
		return env, nil
	}
	var candidates []string
	if cwd, err := os.Getwd(); err == nil {
		candidates = append(candidates, filepath.Join(cwd, "clouds.yaml"))
	}
	if dir, err := os.UserConfigDir(); err == nil {
		candidates = append(candidates, filepath.Join(dir, "openstack", "clouds.yaml"))
	}
	candidates = append(candidates, "/etc/openstack/clouds.yaml")
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("no clouds.yaml found: set OS_CLIENT_CONFIG_FILE or put one at %s", strings.Join(candidates, ", "))
}

// checkCloudEntry reads clouds.yaml only to say clearly what is wrong with it:
// gophercloud's own errors do not name the file or the clouds that are there.
func checkCloudEntry(file, name string) error {
	data, err := os.ReadFile(file)
	if err != nil {
		return fmt.Errorf("clouds.yaml %s: %w", file, err)
	}
	var doc struct {
		Clouds map[string]yaml.Node `yaml:"clouds"`
	}
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("clouds.yaml %s is not valid YAML: %w", file, err)
	}
	if _, ok := doc.Clouds[name]; !ok {
		have := slices.Sorted(maps.Keys(doc.Clouds))
		if len(have) == 0 {
			return fmt.Errorf("cloud %q not found in %s: the file has no clouds: section", name, file)
		}
		return fmt.Errorf("cloud %q not found in %s (it has: %s)", name, file, strings.Join(have, ", "))
	}
	return checkAuth(file, name, doc.Clouds[name])
}

// negotiate reads the compute endpoint's version document and settles on
// min(Nova's maximum, NewestMicroversion).
func (d *Driver) negotiate(ctx context.Context) error {
	var doc struct {
		Version struct {
			Version    string `json:"version"`
			MinVersion string `json:"min_version"`
		} `json:"version"`
	}
	root := versionRoot(d.compute.Endpoint)
	if err := d.get(ctx, "version", root, &doc); err != nil {
		return fmt.Errorf("read compute version document at %s: %w", root, err)
	}
	max := doc.Version.Version
	if max == "" {
		return fmt.Errorf("compute endpoint %s does not support microversions (no version in its version document); Vigil needs %s or newer",
			d.compute.Endpoint, oldestMicroversion)
	}
	v := NewestMicroversion
	if lessVersion(max, v) {
		v = max
	}
	if lessVersion(v, oldestMicroversion) {
		return fmt.Errorf("compute API at %s supports microversions up to %s; Vigil needs %s or newer",
			d.compute.Endpoint, max, oldestMicroversion)
	}
	d.version = v
	d.compute.Microversion = v
	return nil
}

// versionRoot is the compute endpoint up to its API version: catalogs may still
// carry the old ".../v2.1/{project_id}/" form, whose root is ".../v2.1/".
func versionRoot(endpoint string) string {
	if i := strings.Index(endpoint, "/v2.1"); i >= 0 {
		return endpoint[:i] + "/v2.1/"
	}
	return endpoint
}

// CloudNow implements cloud.Clock: Nova's clock now, estimated from the Date
// headers of its API's answers (see cloudClock); never later than the truth by more
// than the API host's own distance from the clocks that stamp updated_at.
func (d *Driver) CloudNow() (time.Time, bool) { return d.clock.CloudNow() }

// Microversion is the negotiated compute microversion.
func (d *Driver) Microversion() string { return d.version }

// Calls returns how many HTTP requests the driver made, by operation (pages and
// retries count; "auth" is keystone).
func (d *Driver) Calls() map[string]int { return d.counter.snapshot() }

// ResyncInterval is Config.ResyncInterval.
func (d *Driver) ResyncInterval() time.Duration { return d.cfg.ResyncInterval }

// ResyncDue reports whether a full listing (since zero) is due: none succeeded yet,
// or the last one is older than the resync interval.
func (d *Driver) ResyncDue(now time.Time) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.lastFull.IsZero() || now.Sub(d.lastFull) >= d.cfg.ResyncInterval
}

// lessVersion compares "2.53" style microversions.
func lessVersion(a, b string) bool {
	am, an := splitVersion(a)
	bm, bn := splitVersion(b)
	if am != bm {
		return am < bm
	}
	return an < bn
}

func splitVersion(v string) (int, int) {
	maj, min, _ := strings.Cut(v, ".")
	x, _ := strconv.Atoi(maj)
	y, _ := strconv.Atoi(min)
	return x, y
}

type opKey struct{}

func withOp(ctx context.Context, op string) context.Context {
	return context.WithValue(ctx, opKey{}, op)
}

type callCounter struct {
	mu    sync.Mutex
	calls map[string]int
}

func (c *callCounter) add(op string) {
	c.mu.Lock()
	c.calls[op]++
	c.mu.Unlock()
}

func (c *callCounter) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return maps.Clone(c.calls)
}

// countingTransport counts every HTTP request under the operation in its context,
// so retries, pages and re-authentication are all visible.
type countingTransport struct {
	next    http.RoundTripper
	counter *callCounter
}

func (t *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	op, _ := r.Context().Value(opKey{}).(string)
	if op == "" {
		op = "auth"
	}
	t.counter.add(op)
	return t.next.RoundTrip(r)
}
