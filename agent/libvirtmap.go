package agent

import (
	"fmt"

	libvirt "github.com/digitalocean/go-libvirt"

	"github.com/vigil-ha/vigil/model"
)

// The names below are libvirt's own (virsh domstate --reason, virsh event), lower
// case and dashed, so an operator reading a report finds them in libvirt's docs.

func stateName(s int32) string {
	switch libvirt.DomainState(s) {
	case libvirt.DomainRunning:
		return model.DomainRunning
	case libvirt.DomainBlocked:
		return model.DomainBlocked
	case libvirt.DomainPaused:
		return model.DomainPaused
	case libvirt.DomainShutdown:
		return model.DomainShutdown
	case libvirt.DomainShutoff:
		return model.DomainShutoff
	case libvirt.DomainCrashed:
		return model.DomainCrashed
	case libvirt.DomainPmsuspended:
		return model.DomainPMSusp
	}
	return "nostate"
}

// reasonName names a state's reason; the same number means different things in
// different states (3 is "crashed" when shut off, "save" when paused).
func reasonName(state, reason int32) string {
	var names []string
	switch libvirt.DomainState(state) {
	case libvirt.DomainRunning:
		names = []string{"unknown", model.ReasonBooted, model.ReasonMigrated, "restored", "from-snapshot", "unpaused",
			"migration-canceled", "save-canceled", "wakeup", model.ReasonCrashed, "post-copy", "post-copy-failed"}
	case libvirt.DomainPaused:
		names = []string{"unknown", model.ReasonUser, model.ReasonMigrated, "save", "dump", model.ReasonIOError, model.ReasonWatchdog,
			"from-snapshot", "shutting-down", "snapshot", model.ReasonCrashed, "starting-up", "post-copy", "post-copy-failed", "api-error"}
	case libvirt.DomainShutdown:
		names = []string{"unknown", model.ReasonUser}
	case libvirt.DomainShutoff:
		names = []string{"unknown", model.ReasonShutdown, model.ReasonDestroyed, model.ReasonCrashed, model.ReasonMigrated, "saved",
			model.ReasonFailed, "from-snapshot", "daemon"}
	case libvirt.DomainCrashed:
		names = []string{"unknown", model.ReasonPanicked}
	default:
		names = []string{"unknown"}
	}
	if reason >= 0 && int(reason) < len(names) {
		return names[reason]
	}
	return fmt.Sprintf("reason-%d", reason)
}

// Lifecycle event names (virsh event's, lower case).
var eventNames = []string{"defined", "undefined", "started", "suspended", "resumed", "stopped", "shutdown", "pmsuspended", "crashed"}

// eventDetails are each lifecycle event's details, by event.
var eventDetails = map[libvirt.DomainEventType][]string{
	libvirt.DomainEventDefined:     {"added", "updated", "renamed", "from-snapshot"},
	libvirt.DomainEventUndefined:   {"removed", "renamed"},
	libvirt.DomainEventStarted:     {"booted", model.ReasonMigrated, "restored", "from-snapshot", "wakeup", "recreated"},
	libvirt.DomainEventSuspended:   {"paused", model.ReasonMigrated, model.ReasonIOError, model.ReasonWatchdog, "restored", "from-snapshot", "api-error", "post-copy", "post-copy-failed"},
	libvirt.DomainEventResumed:     {"unpaused", model.ReasonMigrated, "from-snapshot", "post-copy", "post-copy-failed"},
	libvirt.DomainEventStopped:     {model.ReasonShutdown, model.ReasonDestroyed, model.ReasonCrashed, model.ReasonMigrated, "saved", model.ReasonFailed, "from-snapshot", "recreated"},
	libvirt.DomainEventShutdown:    {"finished", "guest", "host"},
	libvirt.DomainEventPmsuspended: {"memory", "disk"},
	libvirt.DomainEventCrashed:     {model.ReasonPanicked, "crashloaded"},
}

// lifecycleNames names a lifecycle event and its detail: (5, 5) is stopped/failed,
// what a killed qemu gives; (8, 0) is crashed/panicked, a guest kernel panic.
func lifecycleNames(event, detail int32) (string, string) {
	ev := fmt.Sprintf("event-%d", event)
	if event >= 0 && int(event) < len(eventNames) {
		ev = eventNames[event]
	}
	det := fmt.Sprintf("detail-%d", detail)
	if names := eventDetails[libvirt.DomainEventType(event)]; detail >= 0 && int(detail) < len(names) {
		det = names[detail]
	}
	return ev, det
}

// uuidString formats libvirt's 16 bytes as the usual dashed UUID (Nova's server ID).
func uuidString(u libvirt.UUID) string {
	return fmt.Sprintf("%x-%x-%x-%x-%x", u[0:4], u[4:6], u[6:8], u[8:10], u[10:16])
}
