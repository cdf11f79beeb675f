package api

// The Masakari-compatible notifications endpoint: clouds that already run
// masakari-monitors (hostmonitor, instancemonitor, processmonitor) point them at
// Vigil unchanged. A notification is an observation (model.MonitorReport), never a
// command: Vigil weighs it with its other signals and decides itself.
//
// Compatibility target: Debian 12's Masakari 14.0.2 (Zed) and python3-masakariclient
// 8.0.0 / openstacksdk 0.101. Requests are validated as Masakari's JSON schemas do
// (masakari/api/openstack/ha/schemas/{notifications,payload}.py); answers have
// Masakari's status codes and bodies, so a monitor that parses them works.

import (
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/vigil-ha/vigil/model"
)

// MasakariConfig configures the notifications endpoint.
type MasakariConfig struct {
	// Observe receives one observation per accepted notification, before the
	// monitor is answered (so a 202 means Vigil has it). It must not block long.
	Observe func(model.Observation)
	// Now is Vigil's clock.
	Now func() time.Time
	// Tokens, when non-empty, are the accepted X-Auth-Token values: a request
	// without one of them gets 401. When empty the endpoint is open, like the rest
	// of Vigil's API today (it has no auth yet); Masakari itself validates keystone
	// tokens, which Vigil does not. Tokens are compared in constant time and never
	// logged.
	Tokens []string
	// Log records each notification accepted or refused (never its token).
	Log *slog.Logger
}

// Masakari serves POST /v1/notifications and POST /v1/{project_id}/notifications.
type Masakari struct {
	cfg MasakariConfig
	seq atomic.Int64
}

// NewMasakari returns the endpoint; mount it with Routes under /v1.
func NewMasakari(cfg MasakariConfig) *Masakari {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Observe == nil {
		cfg.Observe = func(model.Observation) {}
	}
	return &Masakari{cfg: cfg}
}

// Routes adds the notification routes to r, a router for /v1. Masakari's catalog
// endpoint is http://host:port/v1/$(project_id)s, so openstacksdk (what
// masakari-monitors and python3-masakariclient use) posts to
// /v1/{project_id}/notifications; an endpoint override without the project posts
// to /v1/notifications. The project is not checked: Vigil has no projects.
//
// GET /v1 answers Masakari's version document, without a token: keystoneauth
// reads it (version discovery) before it posts anything, and fails without it.
func (m *Masakari) Routes(r chi.Router) {
	r.Get("/", m.version)
	r.Handle("/notifications", m)
	r.Handle("/{project_id}/notifications", m)
}

// Masakari 14's API versions: the notification create Vigil serves is the same
// in all of them.
const (
	masakariMinVersion = "1.0"
	masakariMaxVersion = "1.2"
)

// version is Masakari's GET /v1 answer (masakari/api/openstack/ha/versionsV1.py).
func (m *Masakari) version(w http.ResponseWriter, r *http.Request) {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	write(w, http.StatusOK, map[string]any{"version": map[string]any{
		"id": "v1.0", "status": "CURRENT", "version": masakariMaxVersion, "min_version": masakariMinVersion,
		"updated": "2016-07-01T11:33:21Z",
		"links": []map[string]string{
			{"rel": "self", "href": scheme + "://" + r.Host + "/v1/"},
			{"rel": "describedby", "type": "text/html", "href": "https://docs.openstack.org/"},
		},
		"media-types": []map[string]string{{"base": "application/json", "type": "application/vnd.openstack.masakari+json;version=1"}},
	}})
}

// maxMasakariBody is oslo.middleware's default max_request_body_size, the limit
// Masakari's API pipeline applies (413 above it).
const maxMasakariBody = 114688

// masakariSource is the Source of the observations this endpoint emits.
const masakariSource = "masakari"

func (m *Masakari) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	// Masakari's pipeline authenticates (keystonemiddleware) before it routes, so
	// an unauthenticated request gets 401 whatever its method.
	if !m.authorized(r) {
		m.cfg.Log.Warn("masakari notification refused: no valid X-Auth-Token", "remote", r.RemoteAddr)
		// keystonemiddleware's 401 body; the challenge names the header to send,
		// not a keystone (Vigil has none).
		w.Header().Set("WWW-Authenticate", `X-Auth-Token realm="vigil masakari notifications"`)
		write(w, http.StatusUnauthorized, map[string]any{"error": map[string]any{
			"code": http.StatusUnauthorized, "title": "Unauthorized",
			"message": "The request you have made requires authentication."}})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeFault(w, http.StatusMethodNotAllowed, "", "method "+r.Method+" not allowed on "+r.URL.Path+": Vigil accepts only POST (create) of notifications")
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxMasakariBody))
	if err != nil {
		if mbe, ok := errors.AsType[*http.MaxBytesError](err); ok {
			writeFault(w, http.StatusRequestEntityTooLarge, "", fmt.Sprintf("Request is too large: the body exceeds %d bytes.", mbe.Limit))
			return
		}
		writeFault(w, http.StatusBadRequest, "body", "cannot read the request body: "+err.Error())
		return
	}
	n, ferr := parseNotification(body)
	if ferr != nil {
		m.cfg.Log.Info("masakari notification refused", "field", ferr.Field, "error", ferr.Msg, "remote", r.RemoteAddr)
		writeFault(w, http.StatusBadRequest, ferr.Field, ferr.Error())
		return
	}
	now := m.cfg.Now()
	id := newUUID()
	m.cfg.Observe(model.Observation{At: now, Source: masakariSource, Monitors: []model.MonitorReport{n.report(id, now)}})
	m.cfg.Log.Info("masakari notification", "id", id, "type", n.Type, "host", n.Hostname, "event", n.Payload["event"], "remote", r.RemoteAddr)
	write(w, http.StatusAccepted, map[string]any{"notification": n.view(id, m.seq.Add(1), now)})
}

// authorized says whether r carries one of the configured tokens (any request
// when none is configured).
func (m *Masakari) authorized(r *http.Request) bool {
	if len(m.cfg.Tokens) == 0 {
		return true
	}
	got := []byte(r.Header.Get("X-Auth-Token"))
	ok := 0
	for _, t := range m.cfg.Tokens {
		ok |= subtle.ConstantTimeCompare(got, []byte(t))
	}
	return ok == 1 && len(got) > 0
}

// Duplicates: Masakari refuses (409) a notification of the same type, host and
// payload as one it already has whose generated_time is less than 180 s later
// than the new one's (so also any earlier-received one generated after it),
// whatever became of that one. Vigil does not: it accepts (202) and observes every
// notification. An observation seen twice changes nothing (detection is
// level-triggered), while a 409 would hide a second real failure of the same kind
// within 3 minutes (a host that came back and died again). hostmonitor takes a
// 409 as "already sent" and stops retrying, instancemonitor retries on any error:
// neither needs the 409.

// notification is a validated Masakari notification.
type notification struct {
	Type      string
	Hostname  string
	Generated time.Time
	Payload   map[string]string
}

// report is the observation of n.
func (n notification) report(id string, now time.Time) model.MonitorReport {
	rep := model.MonitorReport{ID: id, Type: n.Type, Host: n.Hostname, Event: n.Payload["event"],
		Generated: n.Generated, At: now, Payload: map[string]string{}}
	for k, v := range n.Payload {
		switch {
		case k == "event":
		case k == "instance_uuid" && n.Type == masakariVM:
			// Canonical form, so it matches Nova's server IDs whatever spelling the
			// monitor used (Masakari accepts upper case, braces, no dashes).
			rep.Server = canonicalUUID(v)
		default:
			rep.Payload[k] = v
		}
	}
	if len(rep.Payload) == 0 {
		rep.Payload = nil
	}
	return rep
}

// masakariTime is how Masakari writes its timestamps (UTC, no zone).
const masakariTime = "2006-01-02T15:04:05.000000"

// view is Masakari's notification object, as its create answers it (see
// doc/api_samples/notifications/*-create-resp.json). Vigil has no host records,
// so source_host_uuid is a name-based UUID of the hostname: stable per host.
func (n notification) view(id string, seq int64, now time.Time) map[string]any {
	return map[string]any{
		"notification_uuid": id,
		"status":            "new",
		"source_host_uuid":  hostUUID(n.Hostname),
		"deleted":           false,
		"created_at":        now.UTC().Format(masakariTime),
		"updated_at":        nil,
		"deleted_at":        nil,
		"id":                seq,
		"generated_time":    n.Generated.UTC().Format(masakariTime),
		"type":              n.Type,
		"payload":           n.Payload,
	}
}

// Notification types, events and statuses as Masakari 14 defines them
// (masakari/objects/fields.py).
const (
	masakariComputeHost = "COMPUTE_HOST"
	masakariVM          = "VM"
	masakariProcess     = "PROCESS"
)

var (
	masakariTypes          = []string{masakariComputeHost, masakariVM, masakariProcess}
	masakariEvents         = []string{"STARTED", "STOPPED"}
	masakariHostStatuses   = []string{"NORMAL", "UNKNOWN"}
	masakariClusterStatues = []string{"ONLINE", "OFFLINE"}
)

// Patterns of Masakari's schema. Python's `$` also matches before a final
// newline; these do not: a host name or key ending in a newline is refused
// (nothing a monitor sends, and nothing a Nova host can be named).
var (
	hostnamePattern   = regexp.MustCompile(`^[a-zA-Z0-9._-]*$`)
	payloadKeyPattern = regexp.MustCompile(`^[a-zA-Z0-9_:. -]{1,255}$`)
)

// fieldError says which field of a notification is wrong and why.
type fieldError struct {
	Field string
	Msg   string
}

func (e *fieldError) Error() string {
	return "Invalid input for field/attribute " + e.Field + ". " + e.Msg
}

func invalid(field, format string, args ...any) *fieldError {
	return &fieldError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// parseNotification validates body as Masakari does: the envelope
// (schemas/notifications.py create), then the payload of its type
// (schemas/payload.py).
func parseNotification(body []byte) (notification, *fieldError) {
	// Masakari decodes the body as strict UTF-8; Go's decoder would quietly
	// replace bad bytes instead.
	if !utf8.Valid(body) {
		return notification{}, invalid("body", "Malformed request body: it is not UTF-8.")
	}
	var top any
	if err := json.Unmarshal(body, &top); err != nil {
		return notification{}, invalid("body", "Malformed request body: %v.", err)
	}
	env, ferr := object("body", top, []string{"notification"}, nil)
	if ferr != nil {
		return notification{}, ferr
	}
	fields, ferr := object("notification", env["notification"], []string{"type", "hostname", "generated_time", "payload"}, nil)
	if ferr != nil {
		return notification{}, ferr
	}
	var n notification
	if n.Type, ferr = enumString("notification.type", fields["type"], masakariTypes); ferr != nil {
		return n, ferr
	}
	if n.Hostname, ferr = hostname("notification.hostname", fields["hostname"]); ferr != nil {
		return n, ferr
	}
	if n.Generated, ferr = generatedTime("notification.generated_time", fields["generated_time"]); ferr != nil {
		return n, ferr
	}
	if n.Payload, ferr = payload("notification.payload", fields["payload"]); ferr != nil {
		return n, ferr
	}
	return n, payloadOfType(n.Type, n.Payload)
}

// object checks that v is a JSON object holding every required key and no key
// outside required+optional.
func object(field string, v any, required, optional []string) (map[string]any, *fieldError) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, invalid(field, "Value: %s. %s is not of type 'object'", show(v), show(v))
	}
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if !slices.Contains(required, k) && !slices.Contains(optional, k) {
			return nil, invalid(join(field, k), "Additional properties are not allowed (%q was unexpected)", k)
		}
	}
	for _, k := range required {
		if _, ok := obj[k]; !ok {
			return nil, invalid(join(field, k), "%q is a required property", k)
		}
	}
	return obj, nil
}

func join(parent, key string) string {
	if parent == "body" {
		return key
	}
	return parent + "." + key
}

func str(field string, v any, minLen, maxLen int) (string, *fieldError) {
	s, ok := v.(string)
	if !ok {
		return "", invalid(field, "Value: %s. %s is not of type 'string'", show(v), show(v))
	}
	// Python's len(): code points, not bytes.
	n := utf8.RuneCountInString(s)
	if n < minLen {
		return "", invalid(field, "Value: %s. %s is too short (at least %d characters)", show(s), show(s), minLen)
	}
	if n > maxLen {
		return "", invalid(field, "Value: %s. It is too long: %d characters, at most %d", show(s), n, maxLen)
	}
	return s, nil
}

func enumString(field string, v any, allowed []string) (string, *fieldError) {
	s, ferr := str(field, v, 0, 1<<30)
	if ferr != nil {
		return "", ferr
	}
	if !slices.Contains(allowed, s) {
		return "", invalid(field, "Value: %s. %s is not one of %s", show(s), show(s), strings.Join(allowed, ", "))
	}
	return s, nil
}

func hostname(field string, v any) (string, *fieldError) {
	s, ferr := str(field, v, 1, 255)
	if ferr != nil {
		return "", ferr
	}
	if !hostnamePattern.MatchString(s) {
		return "", invalid(field, "Value: %s. It may hold only letters, digits, '-', '.' and '_'", show(s))
	}
	return s, nil
}

func generatedTime(field string, v any) (time.Time, *fieldError) {
	s, ferr := str(field, v, 0, 1<<30)
	if ferr != nil {
		return time.Time{}, ferr
	}
	t, err := parseISOTime(s)
	if err != nil {
		return time.Time{}, invalid(field, "Value: %s. %s is not a 'date-time': %v (want e.g. 2026-11-24T16:06:42.123456, UTC unless a zone is given)", show(s), show(s), err)
	}
	return t, nil
}

// payload checks Masakari's generic payload: an object of strings of at most 255
// characters, keyed by short plain names.
func payload(field string, v any) (map[string]string, *fieldError) {
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, invalid(field, "Value: %s. %s is not of type 'object'", show(v), show(v))
	}
	out := make(map[string]string, len(obj))
	for _, k := range slices.Sorted(maps.Keys(obj)) {
		if !payloadKeyPattern.MatchString(k) {
			return nil, invalid(field+"."+k, "Additional properties are not allowed (%q was unexpected): a key may hold only letters, digits, '-', '_', ':', '.' and spaces, 1 to 255 of them", k)
		}
		s, ferr := str(field+"."+k, obj[k], 0, 255)
		if ferr != nil {
			return nil, ferr
		}
		out[k] = s
	}
	return out, nil
}

// payloadOfType checks the payload against its type's schema.
func payloadOfType(typ string, p map[string]string) *fieldError {
	const f = "notification.payload"
	var known, required []string
	switch typ {
	case masakariComputeHost:
		known, required = []string{"event", "host_status", "cluster_status"}, []string{"event"}
	case masakariProcess:
		known, required = []string{"event", "process_name"}, []string{"process_name", "event"}
	case masakariVM:
		known, required = []string{"event", "instance_uuid", "vir_domain_event"}, []string{"instance_uuid", "vir_domain_event", "event"}
	}
	for _, k := range slices.Sorted(maps.Keys(p)) {
		if !slices.Contains(known, k) {
			return invalid(f+"."+k, "Additional properties are not allowed (%q was unexpected in a %s payload, which may hold %s)", k, typ, strings.Join(known, ", "))
		}
	}
	for _, k := range required {
		if _, ok := p[k]; !ok {
			return invalid(f+"."+k, "%q is a required property of a %s payload", k, typ)
		}
	}
	var ferr *fieldError
	switch typ {
	case masakariComputeHost:
		_, ferr = enumString(f+".event", p["event"], masakariEvents)
		if v, ok := p["host_status"]; ok && ferr == nil {
			_, ferr = enumString(f+".host_status", v, masakariHostStatuses)
		}
		if v, ok := p["cluster_status"]; ok && ferr == nil {
			_, ferr = enumString(f+".cluster_status", v, masakariClusterStatues)
		}
	case masakariProcess:
		if _, ferr = str(f+".process_name", p["process_name"], 1, 4096); ferr == nil {
			_, ferr = enumString(f+".event", p["event"], masakariEvents)
		}
	case masakariVM:
		if !uuidLike(p["instance_uuid"]) {
			return invalid(f+".instance_uuid", "Value: %s. %s is not a 'uuid'", show(p["instance_uuid"]), show(p["instance_uuid"]))
		}
		if _, ferr = str(f+".vir_domain_event", p["vir_domain_event"], 1, 255); ferr == nil {
			_, ferr = str(f+".event", p["event"], 1, 255)
		}
	}
	return ferr
}

// show renders a value for an error message, cut short: a message names the
// field and shows enough of the value to find it, not a whole oversized body.
func show(v any) string {
	var s string
	switch v := v.(type) {
	case string:
		s = strconv.Quote(v)
	default:
		b, err := json.Marshal(v)
		if err != nil {
			s = fmt.Sprint(v)
		} else {
			s = string(b)
		}
	}
	if r := []rune(s); len(r) > 80 {
		s = string(r[:77]) + "..."
	}
	return s
}

// isoTimeRE is the grammar of python3-iso8601 1.0 (what Masakari's date-time
// check, oslo.utils timeutils.parse_isotime, uses): a year, then optionally a
// month, a day, a time and a zone, in extended or basic format.
var isoTimeRE = regexp.MustCompile(`^(?P<year>[0-9]{4})` +
	`(?:(?:-(?P<monthdash>[0-9]{1,2})|(?P<month>[0-9]{2}))` +
	`(?:(?:-(?P<daydash>[0-9]{1,2})|(?P<day>[0-9]{2}))` +
	`(?:[ T](?P<hour>[0-9]{2})(?::?(?P<minute>[0-9]{2}))?` +
	`(?::?(?P<second>[0-9]{1,2})(?:[.,](?P<frac>[0-9]+))?)?` +
	`(?P<tz>Z|(?P<tzsign>[-+])(?P<tzhour>[0-9]{2}):?(?P<tzmin>[0-9]{2})?)?)?)?)?$`)

// parseISOTime parses s as Masakari does (UTC when s has no zone).
func parseISOTime(s string) (time.Time, error) {
	m := isoTimeRE.FindStringSubmatch(s)
	if m == nil {
		return time.Time{}, errors.New("unable to parse it as an ISO 8601 date and time")
	}
	g := func(name string) string { return m[isoTimeRE.SubexpIndex(name)] }
	if g("month") != "" && g("day") == "" && g("daydash") == "" {
		// iso8601 refuses YYYYMM (it would read as a year and a bit).
		return time.Time{}, errors.New("YYYYMM is not a date")
	}
	num := func(name string, def int) int {
		if v := g(name); v != "" {
			n, _ := strconv.Atoi(v)
			return n
		}
		return def
	}
	year, month, day := num("year", 0), num("month", num("monthdash", 1)), num("day", num("daydash", 1))
	hour, minute, second := num("hour", 0), num("minute", 0), num("second", 0)
	switch {
	case year < 1:
		return time.Time{}, errors.New("year must be in 1..9999")
	case month < 1 || month > 12:
		return time.Time{}, errors.New("month must be in 1..12")
	case day < 1 || day > daysIn(year, time.Month(month)):
		return time.Time{}, errors.New("day is out of range for month")
	case hour > 23:
		return time.Time{}, errors.New("hour must be in 0..23")
	case minute > 59:
		return time.Time{}, errors.New("minute must be in 0..59")
	case second > 59:
		return time.Time{}, errors.New("second must be in 0..59")
	}
	nsec := 0
	if f := g("frac"); f != "" {
		// Python keeps microseconds and drops the rest.
		f = (f + "000000")[:6]
		us, _ := strconv.Atoi(f)
		nsec = us * 1000
	}
	loc := time.UTC
	if g("tzsign") != "" {
		off := num("tzhour", 0)*3600 + num("tzmin", 0)*60
		if off >= 24*3600 {
			return time.Time{}, errors.New("the zone offset must be under 24 hours")
		}
		if g("tzsign") == "-" {
			off = -off
		}
		loc = time.FixedZone(g("tz"), off)
	}
	return time.Date(year, time.Month(month), day, hour, minute, second, nsec, loc), nil
}

func daysIn(year int, m time.Month) int {
	return time.Date(year, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// uuidLike is oslo.utils' is_uuid_like: once "urn:", "uuid:", braces and dashes
// are removed, 32 hex digits in either case.
func uuidLike(s string) bool {
	h := uuidHex(s)
	return len(h) == 32 && strings.Trim(h, "0123456789abcdef") == ""
}

// uuidHex is oslo.utils' _format_uuid_string.
func uuidHex(s string) string {
	s = strings.ReplaceAll(s, "urn:", "")
	s = strings.ReplaceAll(s, "uuid:", "")
	s = strings.Trim(s, "{}")
	s = strings.ReplaceAll(s, "-", "")
	return strings.ToLower(s)
}

// canonicalUUID writes a UUID-like string as Nova writes server IDs.
func canonicalUUID(s string) string {
	h := uuidHex(s)
	if len(h) != 32 {
		return s
	}
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

// hostNamespace is the namespace of the name-based UUIDs Vigil answers as a
// notification's source_host_uuid.
var hostNamespace = [16]byte{0x5e, 0x0c, 0x7a, 0x1d, 0x3b, 0x54, 0x4f, 0x0e, 0x9a, 0x61, 0x2c, 0x88, 0x47, 0x1f, 0xd0, 0x93}

// hostUUID is the version-5 (SHA-1, name-based) UUID of a host name.
func hostUUID(name string) string {
	h := sha1.New()
	h.Write(hostNamespace[:])
	h.Write([]byte(name))
	var u [16]byte
	copy(u[:], h.Sum(nil))
	u[6] = u[6]&0x0f | 0x50
	u[8] = u[8]&0x3f | 0x80
	return formatUUID(u)
}

func newUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:]) // crypto/rand.Read never fails (Go 1.24+)
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	return formatUUID(u)
}

func formatUUID(u [16]byte) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}

// writeFault answers an error as Masakari does ({"badRequest": {"code": 400,
// "message": ...}}; openstacksdk shows the message), plus the field at fault.
func writeFault(w http.ResponseWriter, code int, field, msg string) {
	name, ok := map[int]string{
		http.StatusBadRequest:            "badRequest",
		http.StatusUnauthorized:          "unauthorized",
		http.StatusMethodNotAllowed:      "badMethod",
		http.StatusConflict:              "conflictingRequest",
		http.StatusRequestEntityTooLarge: "overLimit",
	}[code]
	if !ok {
		name = "masakariFault"
	}
	f := map[string]any{"code": code, "message": msg}
	if field != "" {
		f["field"] = field
	}
	write(w, code, map[string]any{name: f})
}
