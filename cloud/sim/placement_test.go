package sim

import (
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// The simulated scheduler places an evacuated server as Nova's does: only where its
// flavor fits in what Placement counts free, never beside a member of its
// anti-affinity group, and refuses ("No valid host") when nothing fits.
func TestSchedulerHonoursRoomAndGroups(t *testing.T) {
	w := newWorld(t, Config{ActionLatency: time.Second, ServiceDownTime: 6 * time.Second})
	va, vb := w.ids[0], w.ids[1]
	for _, id := range w.ids {
		_ = w.SetFlavor(id, model.Resources{VCPUs: 2, MemoryMB: 1024, DiskGB: 10})
	}
	// 8 vCPU, 2 reserved: 6 usable, 2 used by each host's own server: 4 free.
	for _, h := range []string{"a", "b", "c"} {
		w.SetHostResources(h, model.Resources{VCPUs: 8, MemoryMB: 8192, DiskGB: 100}, model.Resources{VCPUs: 2}, 1)
	}
	if f, ok := w.Free("b"); !ok || f.VCPUs != 4 {
		t.Fatalf("free on b: %+v %v, want 4 vCPU", f, ok)
	}
	if h := w.service(t, "c"); !h.FreeKnown || h.Free.VCPUs != 4 {
		t.Fatalf("listed host c: %+v, want its free room", h)
	}
	// vm-a and vm-b are an anti-affinity pair: vm-a may not go to b (which the
	// scheduler would pick otherwise: the first of two equal hosts).
	w.AddServerGroup("pair", model.GroupAntiAffinity, va, vb)
	_ = w.KillHost("a")
	w.wait(10 * time.Second)
	if err := w.Evacuate(ctx, va, ""); err != nil {
		t.Fatal(err)
	}
	w.wait(10 * time.Second)
	if s := w.server(t, va); s.Host != "c" {
		t.Fatalf("vm-a evacuated to %s, want c (b holds its group's other member)", s.Host)
	}
}

func TestSchedulerRefusesWithoutRoom(t *testing.T) {
	w := newWorld(t, Config{ActionLatency: time.Second, ServiceDownTime: 6 * time.Second})
	for _, id := range w.ids {
		_ = w.SetFlavor(id, model.Resources{VCPUs: 4, MemoryMB: 1024, DiskGB: 10})
	}
	for _, h := range []string{"a", "b", "c"} {
		w.SetHostResources(h, model.Resources{VCPUs: 6, MemoryMB: 8192, DiskGB: 100}, model.Resources{}, 1)
	}
	_ = w.KillHost("a")
	w.wait(10 * time.Second)
	err := w.Evacuate(ctx, w.ids[0], "")
	if err == nil || !strings.Contains(err.Error(), "no valid host") {
		t.Fatalf("evacuate with 2 vCPU free per host for a 4 vCPU server: %v, want no valid host", err)
	}
}
