package agent

import (
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

var t0 = time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)

// A report rides the first beat, every change, and every reportEvery beats; events
// ride every beat of a path until that path delivered them, whatever other paths did.
func TestReportsAndEventsPerPath(t *testing.T) {
	s := newState("host-a", "boot1", time.Second, nil)
	running := model.Domain{UUID: "u1", Name: "vm1", State: model.DomainRunning, Reason: model.ReasonBooted}
	s.setDomains([]model.Domain{running}, t0)

	b, m := s.nextBeat("mgmt", t0, 3, true)
	if b.Report == nil || len(b.Report.Domains) != 1 {
		t.Fatalf("first beat without the report: %+v", b)
	}
	s.delivered("mgmt", m)
	for range 2 {
		b, m = s.nextBeat("mgmt", t0, 3, true)
		if b.Report != nil {
			t.Fatalf("an unchanged report rode beat %d: %+v", b.Seq, b.Report)
		}
		s.delivered("mgmt", m)
	}
	b, m = s.nextBeat("mgmt", t0, 3, true)
	if b.Report == nil {
		t.Fatal("no report on the beat after reportEvery-1 plain ones")
	}
	s.delivered("mgmt", m)

	// A crash: the state and the event change at once.
	changed := s.changes()
	crashed := running
	crashed.State, crashed.Reason = model.DomainShutoff, model.ReasonCrashed
	s.update("u1", &crashed, []model.DomainEvent{{UUID: "u1", Name: "vm1", Event: "stopped", Detail: "failed"}}, t0.Add(time.Second))
	select {
	case <-changed:
	default:
		t.Fatal("a crash did not wake the paths")
	}
	b, _ = s.nextBeat("storage", t0, 3, true) // storage's beat is lost (Vigil away on it)
	if b.Report == nil || len(b.Report.Events) != 1 {
		t.Fatalf("storage's beat lacks the crash: %+v", b.Report)
	}
	b, m = s.nextBeat("mgmt", t0, 3, true)
	if b.Report == nil || len(b.Report.Events) != 1 || b.Report.Domains[0].State != model.DomainShutoff {
		t.Fatalf("management's beat lacks the crash: %+v", b.Report)
	}
	s.delivered("mgmt", m)
	if b, _ = s.nextBeat("mgmt", t0, 3, true); b.Report != nil && len(b.Report.Events) > 0 {
		t.Fatalf("a delivered event was sent again on its path: %+v", b.Report.Events)
	}
	b, _ = s.nextBeat("storage", t0, 3, true)
	if b.Report == nil || len(b.Report.Events) != 1 {
		t.Fatalf("the undelivered event was not re-sent on storage: %+v", b.Report)
	}
	if b.Seq != 2 {
		t.Fatalf("storage's seq = %d, want 2 (per path, every try)", b.Seq)
	}
}

// Probe failures climb while the domain runs and start afresh when it stops.
func TestProbeFailuresClimbAndReset(t *testing.T) {
	s := newState("host-a", "boot1", time.Second, nil)
	spec := model.ProbeSpec{Name: "ping", Kind: model.ProbeGuestAgent, Interval: time.Second, Timeout: time.Second, Failures: 3}
	s.setOrders(model.AgentOrders{Probes: map[string]model.DomainProbes{"u1": {GuestAgent: &spec}}})
	running := model.Domain{UUID: "u1", Name: "vm1", State: model.DomainRunning}
	s.setDomains([]model.Domain{running}, t0)
	for range 3 {
		s.probed("u1", spec, true, errTest, t0)
	}
	b, _ := s.nextBeat("mgmt", t0, 5, true)
	ga := b.Report.Domains[0].GuestAgent
	if ga == nil || ga.OK || ga.Failures != 3 || ga.Threshold != 3 {
		t.Fatalf("after 3 failures: %+v", ga)
	}
	s.probed("u1", spec, true, nil, t0)
	b, _ = s.nextBeat("mgmt", t0, 5, true)
	if ga = b.Report.Domains[0].GuestAgent; !ga.OK || ga.Failures != 0 {
		t.Fatalf("after a success: %+v", ga)
	}
	s.probed("u1", spec, true, errTest, t0)
	stopped := running
	stopped.State = model.DomainShutoff
	s.setDomains([]model.Domain{stopped}, t0)
	s.setDomains([]model.Domain{running}, t0)
	b, _ = s.nextBeat("mgmt", t0, 5, true)
	if ga = b.Report.Domains[0].GuestAgent; ga != nil {
		t.Fatalf("a restarted domain kept its old probe: %+v", ga)
	}
}

type testErr string

func (e testErr) Error() string { return string(e) }

const errTest = testErr("guest agent not responding")

func TestLibvirtNames(t *testing.T) {
	for _, tc := range []struct {
		ev, det int32
		want    [2]string
	}{
		{5, 5, [2]string{"stopped", model.ReasonFailed}},    // qemu killed
		{8, 0, [2]string{"crashed", model.ReasonPanicked}},  // guest kernel panic
		{5, 2, [2]string{"stopped", model.ReasonCrashed}},   // on_crash=destroy after a panic
		{3, 2, [2]string{"suspended", model.ReasonIOError}}, // paused on a disk error
		{3, 3, [2]string{"suspended", model.ReasonWatchdog}},
		{5, 3, [2]string{"stopped", model.ReasonMigrated}},
		{42, 9, [2]string{"event-42", "detail-9"}},
	} {
		if e, d := lifecycleNames(tc.ev, tc.det); e != tc.want[0] || d != tc.want[1] {
			t.Errorf("lifecycleNames(%d, %d) = %s/%s, want %s/%s", tc.ev, tc.det, e, d, tc.want[0], tc.want[1])
		}
	}
	for _, tc := range []struct {
		state, reason int32
		want          string
	}{
		{5, 3, model.ReasonCrashed},
		{5, 6, model.ReasonFailed},
		{6, 1, model.ReasonPanicked},
		{3, 5, model.ReasonIOError},
		{3, 3, "save"}, // same number, another state: another reason
		{1, 1, model.ReasonBooted},
	} {
		if got := reasonName(tc.state, tc.reason); got != tc.want {
			t.Errorf("reasonName(%s, %d) = %s, want %s", stateName(tc.state), tc.reason, got, tc.want)
		}
	}
}

func TestParseLibvirtURI(t *testing.T) {
	for uri, want := range map[string]string{
		"qemu+unix:///system?socket=/tmp/x.sock": "unix /tmp/x.sock qemu:///system",
		"qemu:///system":                         "unix /run/libvirt/libvirt-sock qemu:///system",
		"qemu+tcp://127.0.0.2:16509/system":      "tcp 127.0.0.2:16509 qemu:///system",
		"qemu+tcp://h/system":                    "tcp h:16509 qemu:///system",
	} {
		got, err := parseLibvirtURI(uri)
		if err != nil {
			t.Errorf("%s: %v", uri, err)
			continue
		}
		if s := got.network + " " + got.addr + " " + string(got.remote); s != want {
			t.Errorf("%s: %s, want %s", uri, s, want)
		}
	}
	for _, bad := range []string{"qemu+ssh://h/system", "qemu+tcp:///system", "nonsense", "qemu+unix://h/system"} {
		if _, err := parseLibvirtURI(bad); err == nil {
			t.Errorf("%s: accepted", bad)
		}
	}
}
