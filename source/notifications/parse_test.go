package notifications

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// The testdata files are real messages captured from the OpenStack peer (Nova 26),
// wrapped in the oslo.messaging envelope as they arrive on RabbitMQ.
func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name + ".json")
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	user    = "f52e441a9ca6426985e2c356b2ae990d" // the admin who made the captured requests
	server  = "8dc200b8-5db1-43c9-b0a1-92f652f40961"
	novaSvc = "0000000000000000000000000000nova"
)

func TestParseRealMessages(t *testing.T) {
	tests := []struct {
		file         string
		serviceUsers []string
		status       string
		intent       model.PowerIntent
		deleted      bool
	}{
		{"instance.update-error", nil, model.StatusError, model.IntentOn, false},
		{"instance.update-stopped", nil, model.StatusShutoff, model.IntentOff, false},
		// the same power-off by a service user is not the owner's wish
		{"instance.update-stopped", []string{user}, model.StatusShutoff, model.IntentUnknown, false},
		{"instance.power_off.end", nil, model.StatusShutoff, model.IntentOff, false},
		{"instance.power_off.end", []string{novaSvc, user}, model.StatusShutoff, model.IntentOn, false},
		// shutdown during a delete: ERROR with task deleting, not a power intent
		{"instance.shutdown.end", nil, model.StatusError, model.IntentOn, false},
		{"instance.delete.end", nil, model.StatusDeleted, model.IntentUnknown, true},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			ev, err := Parse(sample(t, tt.file), tt.serviceUsers)
			if err != nil {
				t.Fatal(err)
			}
			if ev.Obs.Source != Source || ev.Obs.Full || ev.Host != nil {
				t.Fatalf("want a partial server observation from %q, got %+v", Source, ev)
			}
			if len(ev.Obs.Servers) != 1 {
				t.Fatalf("want one server, got %+v", ev.Obs.Servers)
			}
			s := ev.Obs.Servers[0]
			if s.ID != server || s.Status != tt.status || s.Intent != tt.intent {
				t.Fatalf("got %s %s intent %q, want %s %s intent %q", s.ID, s.Status, s.Intent, server, tt.status, tt.intent)
			}
			if s.Host != "fake-compute-2" {
				t.Fatalf("host %q", s.Host)
			}
			if (len(ev.Obs.Deleted) == 1) != tt.deleted {
				t.Fatalf("deleted %v, want %v", ev.Obs.Deleted, tt.deleted)
			}
			if ev.Obs.CloudAt.IsZero() || ev.Obs.CloudAt.Location() != time.UTC || ev.Obs.CloudAt.Year() != 2026 {
				t.Fatalf("timestamp %v: want the zone-less Nova time read as UTC", ev.Obs.CloudAt)
			}
		})
	}
}

func TestParseServiceUpdate(t *testing.T) {
	ev, err := Parse(sample(t, "service.update-disabled"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Host == nil || ev.Host.Name != "fake-compute-3" || !ev.Host.Disabled || ev.Host.ForcedDown {
		t.Fatalf("got host %+v", ev.Host)
	}
	if ev.Host.Service != "" {
		t.Fatalf("a disabled (not forced down) service's liveness is unknown from a notification, got %q", ev.Host.Service)
	}
	if len(ev.Obs.Servers) != 0 || ev.Obs.Hosts != nil {
		t.Fatalf("service.update must not claim a host list or servers: %+v", ev.Obs)
	}
}

// wrap builds an envelope around an inner message.
func wrap(inner any) []byte {
	b, _ := json.Marshal(inner)
	out, _ := json.Marshal(map[string]string{"oslo.version": "2.0", "oslo.message": string(b)})
	return out
}

func instanceMsg(event string, data map[string]any) map[string]any {
	return map[string]any{"event_type": event, "timestamp": "2026-11-24 11:44:56.694970",
		"payload": map[string]any{"nova_object.name": "InstanceActionPayload", "nova_object.data": data}}
}

func TestParseForcedDown(t *testing.T) {
	ev, err := Parse(wrap(map[string]any{"event_type": "service.update", "timestamp": "2026-11-24T11:44:56Z",
		"payload": map[string]any{"nova_object.name": "ServiceStatusPayload", "nova_object.data": map[string]any{
			"host": "fake-compute-1", "binary": "nova-compute", "forced_down": true, "disabled": false,
			"last_seen_up": "2026-11-24T11:44:55Z", "availability_zone": nil}}}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Host == nil || !ev.Host.ForcedDown || ev.Host.Service != model.ServiceDown || ev.Host.LastSeenUp.IsZero() {
		t.Fatalf("got %+v", ev.Host)
	}
}

func TestParseRejects(t *testing.T) {
	tests := []struct {
		name    string
		body    []byte
		ignored bool
	}{
		{"not json", []byte("{nope"), false},
		{"no envelope", []byte(`{"event_type":"instance.update"}`), false},
		{"old envelope version", []byte(`{"oslo.version":"1.0","oslo.message":"{}"}`), false},
		{"inner not json", []byte(`{"oslo.version":"2.0","oslo.message":"[1,2"}`), false},
		{"no event type", wrap(map[string]any{"payload": map[string]any{}}), false},
		{"bad timestamp", wrap(instanceMsg("instance.update", map[string]any{"uuid": "x", "state": "active"}) /*ok*/), false},
		{"payload not an object", wrap(map[string]any{"event_type": "instance.update", "payload": 42}), false},
		{"no uuid", wrap(instanceMsg("instance.power_off.end", map[string]any{"state": "stopped"})), false},
		{"no state", wrap(instanceMsg("instance.update", map[string]any{"uuid": "x"})), false},
		{"uuid not a string", wrap(instanceMsg("instance.update", map[string]any{"uuid": 7, "state": "active"})), false},
		{"service without host", wrap(map[string]any{"event_type": "service.update",
			"payload": map[string]any{"nova_object.data": map[string]any{"binary": "nova-compute"}}}), false},
		{"unused type", wrap(map[string]any{"event_type": "instance.create.start"}), true},
		{"scheduler", sample(t, "scheduler.select_destinations.end"), true},
		{"conductor service", wrap(map[string]any{"event_type": "service.update",
			"payload": map[string]any{"nova_object.data": map[string]any{"host": "c", "binary": "nova-conductor"}}}), true},
	}
	// a valid one to prove the table's helper builds good messages
	tests[5].body = wrap(map[string]any{"event_type": "instance.update", "timestamp": "yesterday",
		"payload": map[string]any{"nova_object.data": map[string]any{"uuid": "x", "state": "active"}}})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(tt.body, nil)
			var bad *MalformedError
			switch {
			case tt.ignored && !errors.Is(err, ErrIgnored):
				t.Fatalf("want ErrIgnored, got %v", err)
			case !tt.ignored && !errors.As(err, &bad):
				t.Fatalf("want a MalformedError, got %v", err)
			case !tt.ignored && bad.Reason == "":
				t.Fatal("a malformed message needs a reason")
			}
		})
	}
}

func TestStatus(t *testing.T) {
	tests := []struct{ vm, task, want string }{
		{"active", "", model.StatusActive},
		{"stopped", "", model.StatusShutoff},
		{"error", "", model.StatusError},
		{"building", "spawning", model.StatusBuild},
		{"active", "rebooting", model.StatusReboot},
		{"active", "rebooting_hard", model.StatusHardReboot},
		{"active", "reboot_started_hard", model.StatusHardReboot},
		{"active", "rebuilding", model.StatusRebuild},
		{"active", "rebuild_spawning", model.StatusRebuild},
		{"error", "rebuilding", model.StatusRebuild},
		{"stopped", "rebuilding", model.StatusRebuild},
		{"active", "migrating", model.StatusMigrating},
		{"paused", "", model.StatusPaused},
		{"suspended", "", model.StatusSuspended},
		{"resized", "", model.StatusVerify},
		{"active", "resize_migrating", model.StatusResize},
		{"deleted", "", model.StatusDeleted},
		{"shelved_offloaded", "", "SHELVED_OFFLOADED"},
		{"active", "powering-off", model.StatusActive},
	}
	for _, tt := range tests {
		if got := Status(tt.vm, tt.task); got != tt.want {
			t.Errorf("Status(%q, %q) = %s, want %s", tt.vm, tt.task, got, tt.want)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"instance.update-error", "instance.power_off.end", "service.update-disabled", "instance.delete.end"} {
		f.Add(sample(f, name))
	}
	f.Add([]byte(`{"oslo.version":"2.0","oslo.message":"{\"event_type\":\"instance.update\",\"payload\":{\"nova_object.data\":{\"uuid\":\"u\",\"state\":\"stopped\",\"state_update\":null}}}"}`))
	f.Add([]byte(`{"oslo.version":"2.0","oslo.message":"{\"event_type\":\"instance.update\",\"payload\":{\"nova_object.data\":{\"uuid\":\"u\",\"state\":\"stopped\",\"state_update\":{\"nova_object.data\":7}}}}"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := Parse(body, []string{"nova"})
		if err == nil && len(ev.Obs.Servers) == 0 && ev.Host == nil {
			t.Fatalf("no error and nothing observed: %+v", ev)
		}
	})
}

// Each notification carries Nova's clock twice: the message's timestamp (when it
// was sent) as Obs.CloudAt, and the server's updated_at as Server.Updated; the
// consumer stamps Obs.At on Vigil's clock as it receives the message. Nothing of
// Nova's clock ends up in At, nor Vigil's in CloudAt or Updated.
func TestNotificationTimesAreNovas(t *testing.T) {
	tests := []struct {
		file    string
		cloudAt time.Time
		updated time.Time
	}{
		{"instance.update-error", time.Date(2026, 11, 30, 3, 32, 31, 594561000, time.UTC), time.Date(2026, 11, 30, 3, 32, 23, 0, time.UTC)},
		{"instance.update-stopped", time.Date(2026, 11, 30, 3, 32, 17, 103774000, time.UTC), time.Date(2026, 11, 30, 3, 32, 16, 0, time.UTC)},
		{"instance.power_off.end", time.Date(2026, 11, 30, 3, 32, 17, 110756000, time.UTC), time.Date(2026, 11, 30, 3, 32, 16, 0, time.UTC)},
		{"instance.shutdown.end", time.Date(2026, 11, 30, 3, 32, 31, 960324000, time.UTC), time.Date(2026, 11, 30, 3, 32, 23, 0, time.UTC)},
		{"instance.delete.end", time.Date(2026, 11, 30, 3, 32, 32, 127953000, time.UTC), time.Date(2026, 11, 30, 3, 32, 31, 0, time.UTC)},
		{"service.update-disabled", time.Date(2026, 11, 30, 3, 32, 27, 326832000, time.UTC), time.Time{}},
	}
	c := New(Config{})
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			var got []Event
			before := time.Now()
			c.handle(sample(t, tt.file), func(ev Event) { got = append(got, ev) })
			after := time.Now()
			if len(got) != 1 {
				t.Fatalf("handled into %d events", len(got))
			}
			obs := got[0].Obs
			if !obs.CloudAt.Equal(tt.cloudAt) || obs.CloudAt.Location() != time.UTC {
				t.Errorf("CloudAt %v, want the message's timestamp %v (Nova's clock)", obs.CloudAt, tt.cloudAt)
			}
			if obs.At.Before(before.Truncate(time.Microsecond)) || obs.At.After(after) {
				t.Errorf("At %v, want Vigil's clock at receipt (between %v and %v)", obs.At, before, after)
			}
			if tt.updated.IsZero() {
				return
			}
			if len(obs.Servers) != 1 || !obs.Servers[0].Updated.Equal(tt.updated) {
				t.Errorf("servers %+v, want one with Updated = the payload's updated_at %v", obs.Servers, tt.updated)
			}
		})
	}
	// A payload without updated_at: the message's timestamp is the best Nova gives.
	ev, err := Parse(wrap(instanceMsg("instance.update", map[string]any{"uuid": "x", "state": "active"})), nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := time.Date(2026, 11, 24, 11, 44, 56, 694970000, time.UTC); !ev.Obs.CloudAt.Equal(want) || !ev.Obs.Servers[0].Updated.Equal(want) {
		t.Fatalf("without updated_at: CloudAt %v, Updated %v; want both %v", ev.Obs.CloudAt, ev.Obs.Servers[0].Updated, want)
	}
	// A message without a timestamp: no cloud time is claimed.
	ev, err = Parse(wrap(map[string]any{"event_type": "instance.update",
		"payload": map[string]any{"nova_object.data": map[string]any{"uuid": "x", "state": "active"}}}), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !ev.Obs.CloudAt.IsZero() || !ev.Obs.Servers[0].Updated.IsZero() {
		t.Fatalf("without a timestamp: CloudAt %v, Updated %v; want zero", ev.Obs.CloudAt, ev.Obs.Servers[0].Updated)
	}
}
