package redfish

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"
)

// Fault is how the service misbehaves, for the tests of a client's error paths.
type Fault string

const (
	// NoFault: the service behaves.
	NoFault Fault = ""
	// Hang: every request is held without an answer until the client gives up (a
	// BMC whose web server is wedged: the TCP connection opens, no reply comes).
	Hang Fault = "hang"
	// RefuseForceOff: a ForceOff reset is answered 400 with a Redfish error, as a BMC
	// answers a reset type it will not perform; the system stays on.
	RefuseForceOff Fault = "refuse-forceoff"
	// Lie: a ForceOff reset is answered 204 (done) and nothing happens: PowerState
	// stays On. Only a client that reads PowerState back notices.
	Lie Fault = "lie"
)

// Faults lists the fault modes, for the command's flag.
var Faults = []Fault{NoFault, Hang, RefuseForceOff, Lie}

// Power states of a ComputerSystem (Resource.PowerState).
const (
	On          = "On"
	Off         = "Off"
	PoweringOn  = "PoweringOn"
	PoweringOff = "PoweringOff"
)

// ResetTypes are the reset types the service performs, in the order it lists them.
var ResetTypes = []string{"On", "ForceOff", "GracefulShutdown", "ForceRestart", "PowerCycle"}

// SystemSpec describes one ComputerSystem of the service.
type SystemSpec struct {
	ID    string // the last segment of its URI: /redfish/v1/Systems/<ID>
	UUID  string // its UUID (lower case 8-4-4-4-12)
	Power string // On or Off at start (On when empty)
}

// Config is how the service starts.
type Config struct {
	Username, Password string
	Systems            []SystemSpec // one system "1" with a random UUID when empty
	// Transition is how long a power change takes: PowerState reads PoweringOff
	// (or PoweringOn) for that long, then Off (or On). Zero: at once.
	Transition time.Duration
}

type system struct {
	SystemSpec
	power    string    // the state the system is in, or goes to
	settleAt time.Time // when a transition to power ends (zero: settled)
	resets   []string  // reset types received, in order
}

// Service is an in-memory Redfish service (DMTF DSP0266, the schemas of
// DSP8010): a service root, a Systems collection of ComputerSystems with PowerState,
// UUID and the #ComputerSystem.Reset action, a Managers collection, and a
// SessionService whose sessions give X-Auth-Token. Every resource but the service
// root (and /redfish) needs a session token or HTTP basic authentication; wrong
// credentials get 401. Safe for concurrent use.
type Service struct {
	cfg Config

	mu       sync.Mutex
	systems  []*system
	sessions map[string]string // token -> session ID
	nextSess int
	fault    Fault
	closed   chan struct{}
	closeMu  sync.Once
}

// New returns a service with cfg's systems.
func New(cfg Config) *Service {
	if len(cfg.Systems) == 0 {
		cfg.Systems = []SystemSpec{{ID: "1", UUID: NewUUID()}}
	}
	s := &Service{cfg: cfg, sessions: map[string]string{}, closed: make(chan struct{})}
	for _, sp := range cfg.Systems {
		if sp.Power == "" {
			sp.Power = On
		}
		s.systems = append(s.systems, &system{SystemSpec: sp, power: sp.Power})
	}
	return s
}

// NewUUID returns a random (version 4) UUID.
func NewUUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// SetFault makes the service misbehave from now on (NoFault: behave again).
func (s *Service) SetFault(f Fault) {
	s.mu.Lock()
	s.fault = f
	s.mu.Unlock()
}

// Close releases the requests held by Hang (call it before closing the server).
func (s *Service) Close() { s.closeMu.Do(func() { close(s.closed) }) }

// PowerState is the PowerState the service reports for the system with that ID.
func (s *Service) PowerState(id string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sys := s.system(id); sys != nil {
		return sys.state(time.Now())
	}
	return ""
}

// SetPower puts the system into state (On or Off) at once, as a person at the
// machine would.
func (s *Service) SetPower(id, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sys := s.system(id); sys != nil {
		sys.power, sys.settleAt = state, time.Time{}
	}
}

// Resets lists the reset types the system received, in order.
func (s *Service) Resets(id string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if sys := s.system(id); sys != nil {
		return slices.Clone(sys.resets)
	}
	return nil
}

// Sessions is the number of open sessions (a client that logs out leaves none).
func (s *Service) Sessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

func (s *Service) system(id string) *system {
	for _, sys := range s.systems {
		if sys.ID == id {
			return sys
		}
	}
	return nil
}

// state is the PowerState at now: the target once settled, else the transition's.
func (sys *system) state(now time.Time) string {
	if sys.settleAt.IsZero() || !now.Before(sys.settleAt) {
		return sys.power
	}
	if sys.power == Off {
		return PoweringOff
	}
	return PoweringOn
}

// powerTo starts a change to target (On or Off), taking d.
func (sys *system) powerTo(target string, now time.Time, d time.Duration) {
	if sys.state(now) == target {
		return
	}
	sys.power = target
	sys.settleAt = time.Time{}
	if d > 0 {
		sys.settleAt = now.Add(d)
	}
}

// ServeHTTP answers the Redfish API.
func (s *Service) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	fault := s.fault
	s.mu.Unlock()
	if fault == Hang {
		select { // no answer: the client's timeout is what ends this
		case <-r.Context().Done():
		case <-s.closed:
		}
		return
	}
	w.Header().Set("OData-Version", "4.0")
	path := strings.TrimSuffix(r.URL.Path, "/")
	switch path {
	case "/redfish":
		writeJSON(w, http.StatusOK, map[string]any{"v1": "/redfish/v1/"})
		return
	case "/redfish/v1":
		s.root(w, r)
		return
	}
	if r.Method == http.MethodPost && path == "/redfish/v1/SessionService/Sessions" {
		s.login(w, r)
		return
	}
	sessID, ok := s.authenticated(r)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Basic realm="redfish-sim"`)
		writeError(w, http.StatusUnauthorized, "Base.1.8.NoValidSession", "There is no valid session established with the implementation.")
		return
	}
	s.resource(w, r, path, sessID)
}

// resource serves the resources that need authentication.
func (s *Service) resource(w http.ResponseWriter, r *http.Request, path, sessID string) {
	const systems = "/redfish/v1/Systems/"
	switch {
	case path == "/redfish/v1/Systems":
		s.get(w, r, func() any {
			return s.collection("#ComputerSystemCollection.ComputerSystemCollection", "Computer System Collection", "/redfish/v1/Systems", s.systemIDs())
		})
	case strings.HasPrefix(path, systems) && strings.HasSuffix(path, "/Actions/ComputerSystem.Reset"):
		s.reset(w, r, strings.TrimSuffix(strings.TrimPrefix(path, systems), "/Actions/ComputerSystem.Reset"))
	case strings.HasPrefix(path, systems) && !strings.Contains(strings.TrimPrefix(path, systems), "/"):
		id := strings.TrimPrefix(path, systems)
		s.mu.Lock()
		sys := s.system(id)
		var body map[string]any
		if sys != nil {
			body = s.systemBody(sys)
		}
		s.mu.Unlock()
		if sys == nil {
			notFound(w, path)
			return
		}
		s.get(w, r, func() any { return body })
	case path == "/redfish/v1/Managers":
		s.get(w, r, func() any {
			return s.collection("#ManagerCollection.ManagerCollection", "Manager Collection", "/redfish/v1/Managers", []string{"BMC"})
		})
	case path == "/redfish/v1/Managers/BMC":
		s.get(w, r, func() any { return s.manager() })
	case path == "/redfish/v1/SessionService":
		s.get(w, r, func() any {
			return map[string]any{
				"@odata.id": "/redfish/v1/SessionService", "@odata.type": "#SessionService.v1_1_8.SessionService",
				"Id": "SessionService", "Name": "Session Service", "ServiceEnabled": true, "SessionTimeout": 1800,
				"Status":   map[string]any{"State": "Enabled", "Health": "OK"},
				"Sessions": map[string]any{"@odata.id": "/redfish/v1/SessionService/Sessions"},
			}
		})
	case path == "/redfish/v1/SessionService/Sessions":
		s.get(w, r, func() any {
			s.mu.Lock()
			ids := make([]string, 0, len(s.sessions))
			for _, id := range s.sessions {
				ids = append(ids, id)
			}
			s.mu.Unlock()
			slices.Sort(ids)
			return s.collection("#SessionCollection.SessionCollection", "Session Collection", "/redfish/v1/SessionService/Sessions", ids)
		})
	case strings.HasPrefix(path, "/redfish/v1/SessionService/Sessions/"):
		s.session(w, r, strings.TrimPrefix(path, "/redfish/v1/SessionService/Sessions/"), sessID)
	default:
		notFound(w, path)
	}
}

func (s *Service) root(w http.ResponseWriter, r *http.Request) {
	s.get(w, r, func() any {
		return map[string]any{
			"@odata.id": "/redfish/v1/", "@odata.type": "#ServiceRoot.v1_15_0.ServiceRoot",
			"Id": "RootService", "Name": "Root Service", "RedfishVersion": "1.17.0",
			"UUID": "92384634-2938-2342-8820-489239905423", "Vendor": "Vigil test service",
			"Systems":        map[string]any{"@odata.id": "/redfish/v1/Systems"},
			"Managers":       map[string]any{"@odata.id": "/redfish/v1/Managers"},
			"SessionService": map[string]any{"@odata.id": "/redfish/v1/SessionService"},
			"Links":          map[string]any{"Sessions": map[string]any{"@odata.id": "/redfish/v1/SessionService/Sessions"}},
		}
	})
}

func (s *Service) systemIDs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	ids := make([]string, 0, len(s.systems))
	for _, sys := range s.systems {
		ids = append(ids, sys.ID)
	}
	return ids
}

// systemBody is a ComputerSystem (ComputerSystem.v1_20_0); s.mu is held.
func (s *Service) systemBody(sys *system) map[string]any {
	uri := "/redfish/v1/Systems/" + sys.ID
	return map[string]any{
		"@odata.id": uri, "@odata.type": "#ComputerSystem.v1_20_0.ComputerSystem",
		"Id": sys.ID, "Name": "System " + sys.ID, "SystemType": "Physical",
		"Manufacturer": "Vigil", "Model": "redfish-sim", "SerialNumber": "SIM-" + sys.ID,
		"UUID": sys.UUID, "PowerState": sys.state(time.Now()),
		"Status": map[string]any{"State": "Enabled", "Health": "OK"},
		// Boot is required by some clients (sushy); the service changes nothing of it.
		"Boot": map[string]any{"BootSourceOverrideEnabled": "Disabled", "BootSourceOverrideTarget": "None",
			"BootSourceOverrideTarget@Redfish.AllowableValues": []string{"None", "Pxe", "Hdd"}},
		"Actions": map[string]any{"#ComputerSystem.Reset": map[string]any{
			"target":                            uri + "/Actions/ComputerSystem.Reset",
			"ResetType@Redfish.AllowableValues": ResetTypes,
		}},
		"Links": map[string]any{"ManagedBy": []any{map[string]any{"@odata.id": "/redfish/v1/Managers/BMC"}}},
	}
}

func (s *Service) manager() map[string]any {
	return map[string]any{
		"@odata.id": "/redfish/v1/Managers/BMC", "@odata.type": "#Manager.v1_19_0.Manager",
		"Id": "BMC", "Name": "Manager", "ManagerType": "BMC", "FirmwareVersion": "1.0",
		"PowerState": On, "Status": map[string]any{"State": "Enabled", "Health": "OK"},
	}
}

func (s *Service) collection(typ, name, uri string, ids []string) map[string]any {
	members := make([]any, 0, len(ids))
	for _, id := range ids {
		members = append(members, map[string]any{"@odata.id": uri + "/" + id})
	}
	return map[string]any{"@odata.id": uri, "@odata.type": typ, "Name": name,
		"Members": members, "Members@odata.count": len(members)}
}

// reset performs #ComputerSystem.Reset (its ResetType parameter).
func (s *Service) reset(w http.ResponseWriter, r *http.Request, id string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		writeError(w, http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed", "The action target accepts POST only.")
		return
	}
	var body struct{ ResetType string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", "The request body submitted was malformed JSON.")
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	sys := s.system(id)
	if sys == nil {
		notFound(w, r.URL.Path)
		return
	}
	if !slices.Contains(ResetTypes, body.ResetType) {
		writeError(w, http.StatusBadRequest, "Base.1.8.ActionParameterValueNotInList",
			fmt.Sprintf("The value '%s' for the parameter ResetType is not in the list of acceptable values.", body.ResetType))
		return
	}
	sys.resets = append(sys.resets, body.ResetType)
	now, d := time.Now(), s.cfg.Transition
	switch {
	case s.fault == RefuseForceOff && body.ResetType == "ForceOff":
		writeError(w, http.StatusBadRequest, "Base.1.8.ActionNotSupported",
			"The action ComputerSystem.Reset with ResetType ForceOff is not supported by the resource.")
		return
	case s.fault == Lie && body.ResetType == "ForceOff":
		// says done, does nothing
	case body.ResetType == "On":
		sys.powerTo(On, now, d)
	case body.ResetType == "ForceOff" || body.ResetType == "GracefulShutdown":
		sys.powerTo(Off, now, d)
	case body.ResetType == "PowerCycle" || body.ResetType == "ForceRestart":
		sys.power, sys.settleAt = On, time.Time{} // off and on again: On at the end
		if d > 0 {
			sys.settleAt = now.Add(d)
		}
	}
	w.WriteHeader(http.StatusNoContent)
}

// login creates a session (POST to the Sessions collection).
func (s *Service) login(w http.ResponseWriter, r *http.Request) {
	var body struct{ UserName, Password string }
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", "The request body submitted was malformed JSON.")
		return
	}
	if !s.credentials(body.UserName, body.Password) {
		writeError(w, http.StatusUnauthorized, "Base.1.8.NoValidSession", "Invalid user name or password.")
		return
	}
	var b [16]byte
	_, _ = rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	s.mu.Lock()
	s.nextSess++
	id := fmt.Sprint(s.nextSess)
	s.sessions[token] = id
	s.mu.Unlock()
	uri := "/redfish/v1/SessionService/Sessions/" + id
	w.Header().Set("X-Auth-Token", token)
	w.Header().Set("Location", uri)
	writeJSON(w, http.StatusCreated, s.sessionBody(id))
}

func (s *Service) sessionBody(id string) map[string]any {
	return map[string]any{"@odata.id": "/redfish/v1/SessionService/Sessions/" + id, "@odata.type": "#Session.v1_7_0.Session",
		"Id": id, "Name": "User Session", "UserName": s.cfg.Username}
}

// session answers GET and DELETE (log out) of one session.
func (s *Service) session(w http.ResponseWriter, r *http.Request, id, _ string) {
	s.mu.Lock()
	var token string
	for t, sid := range s.sessions {
		if sid == id {
			token = t
		}
	}
	if token != "" && r.Method == http.MethodDelete {
		delete(s.sessions, token)
	}
	s.mu.Unlock()
	switch {
	case token == "":
		notFound(w, r.URL.Path)
	case r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusNoContent)
	default:
		s.get(w, r, func() any { return s.sessionBody(id) })
	}
}

// authenticated checks X-Auth-Token, then basic authentication; it returns the
// session's ID ("" for basic).
func (s *Service) authenticated(r *http.Request) (string, bool) {
	if tok := r.Header.Get("X-Auth-Token"); tok != "" {
		s.mu.Lock()
		defer s.mu.Unlock()
		id, ok := s.sessions[tok]
		return id, ok
	}
	if u, p, ok := r.BasicAuth(); ok {
		return "", s.credentials(u, p)
	}
	return "", false
}

func (s *Service) credentials(user, password string) bool {
	okU := subtle.ConstantTimeCompare([]byte(user), []byte(s.cfg.Username)) == 1
	okP := subtle.ConstantTimeCompare([]byte(password), []byte(s.cfg.Password)) == 1
	return okU && okP
}

// get answers a GET (or HEAD) with body(); other methods get 405.
func (s *Service) get(w http.ResponseWriter, r *http.Request, body func() any) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, "Base.1.8.OperationNotAllowed", "The resource does not accept "+r.Method+".")
		return
	}
	writeJSON(w, http.StatusOK, body())
}

func notFound(w http.ResponseWriter, path string) {
	writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", fmt.Sprintf("The resource at the URI %s was not found.", path))
}

// writeError writes a Redfish error response (DSP0266 9.8.1).
func writeError(w http.ResponseWriter, status int, id, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{
		"code": id, "message": msg,
		"@Message.ExtendedInfo": []any{map[string]any{"@odata.type": "#Message.v1_1_1.Message", "MessageId": id, "Message": msg}},
	}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
