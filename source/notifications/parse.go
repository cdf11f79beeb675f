package notifications

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/vigil-ha/vigil/cloud/openstack/novatime"
	"github.com/vigil-ha/vigil/model"
)

// Source is the Observation.Source of every event from this package.
const Source = "notification"

// Event is one notification as Vigil sees it. Obs is a partial observation (one
// server, or none for service.update); Host is set for service.update only, with
// Service ServiceDown when the service is forced down and "" (unknown) otherwise,
// since Nova sends no notification when a service simply stops reporting.
type Event struct {
	Type      string // Nova's event_type, e.g. "instance.update"
	MessageID string
	Obs       model.Observation
	Host      *model.Host
}

// ErrIgnored: a well-formed notification of a type Vigil does not use.
var ErrIgnored = errors.New("notification type not used")

// MalformedError says why a message could not be understood.
type MalformedError struct{ Reason string }

func (e *MalformedError) Error() string { return "malformed notification: " + e.Reason }

func malformed(format string, args ...any) error {
	return &MalformedError{Reason: fmt.Sprintf(format, args...)}
}

// instanceEvents are the instance notifications that become observations.
var instanceEvents = []string{
	"instance.update", "instance.power_off.end", "instance.shutdown.end", "instance.power_on.end",
	"instance.reboot.end", "instance.rebuild.end", "instance.evacuate", "instance.delete.end",
}

type envelope struct {
	Version *string `json:"oslo.version"`
	Message *string `json:"oslo.message"`
}

type message struct {
	EventType string          `json:"event_type"`
	Publisher string          `json:"publisher_id"`
	Timestamp string          `json:"timestamp"`
	MessageID string          `json:"message_id"`
	Payload   json.RawMessage `json:"payload"`
}

type versioned struct {
	Name string          `json:"nova_object.name"`
	Data json.RawMessage `json:"nova_object.data"`
}

type instancePayload struct {
	UUID        string           `json:"uuid"`
	Name        string           `json:"display_name"`
	Host        *string          `json:"host"`
	State       string           `json:"state"`
	TaskState   *string          `json:"task_state"`
	ImageUUID   string           `json:"image_uuid"`
	UpdatedAt   *string          `json:"updated_at"`
	Initiator   *string          `json:"action_initiator_user"`
	StateUpdate *json.RawMessage `json:"state_update"`
}

type stateUpdate struct {
	OldState     *string `json:"old_state"`
	State        *string `json:"state"`
	OldTaskState *string `json:"old_task_state"`
	NewTaskState *string `json:"new_task_state"`
}

type servicePayload struct {
	Host       string  `json:"host"`
	Binary     string  `json:"binary"`
	Disabled   bool    `json:"disabled"`
	ForcedDown bool    `json:"forced_down"`
	LastSeenUp *string `json:"last_seen_up"`
	Zone       *string `json:"availability_zone"`
}

// Parse turns one AMQP message body into an Event. It returns ErrIgnored for
// notifications Vigil does not use and a *MalformedError for anything it cannot
// read. serviceUsers are user IDs whose power-offs are not an owner's intent.
// It never panics.
func Parse(body []byte, serviceUsers []string) (Event, error) {
	var env envelope
	if err := json.Unmarshal(body, &env); err != nil {
		return Event{}, malformed("body is not JSON: %v", err)
	}
	if env.Message == nil {
		return Event{}, malformed("no oslo.message in the body (not an oslo.messaging 2.0 envelope)")
	}
	if env.Version == nil || *env.Version != "2.0" {
		return Event{}, malformed("oslo.version is not 2.0")
	}
	var msg message
	if err := json.Unmarshal([]byte(*env.Message), &msg); err != nil {
		return Event{}, malformed("oslo.message is not a JSON object: %v", err)
	}
	if msg.EventType == "" {
		return Event{}, malformed("no event_type")
	}
	ev := Event{Type: msg.EventType, MessageID: msg.MessageID,
		Obs: model.Observation{Source: Source, Full: false}}
	if msg.Timestamp != "" {
		at, err := novatime.Parse(msg.Timestamp)
		if err != nil {
			return Event{}, malformed("%s: timestamp: %v", msg.EventType, err)
		}
		ev.Obs.CloudAt = at // Nova's clock; the consumer sets At on Vigil's as it receives it
	}
	isInstance := slices.Contains(instanceEvents, msg.EventType)
	if !isInstance && msg.EventType != "service.update" {
		return ev, ErrIgnored
	}
	var obj versioned
	if len(msg.Payload) == 0 || json.Unmarshal(msg.Payload, &obj) != nil || len(obj.Data) == 0 {
		return Event{}, malformed("%s: payload is not a versioned Nova object", msg.EventType)
	}
	if isInstance {
		return parseInstance(ev, obj, serviceUsers)
	}
	return parseService(ev, obj)
}

func parseInstance(ev Event, obj versioned, serviceUsers []string) (Event, error) {
	var p instancePayload
	if err := json.Unmarshal(obj.Data, &p); err != nil {
		return Event{}, malformed("%s: %s payload: %v", ev.Type, obj.Name, err)
	}
	if p.UUID == "" {
		return Event{}, malformed("%s: payload has no uuid", ev.Type)
	}
	if p.State == "" {
		return Event{}, malformed("%s: server %s: payload has no state", ev.Type, p.UUID)
	}
	task := ""
	if p.TaskState != nil {
		task = *p.TaskState
	}
	s := model.Server{ID: p.UUID, Name: p.Name, Status: Status(p.State, task), TaskState: task, Image: p.ImageUUID}
	if p.Host != nil {
		s.Host = *p.Host
	}
	// Updated is Nova's updated_at, compared with a listing's (on Nova's clock too) to
	// tell a late notification from news; without one, when the message was sent.
	s.Updated = ev.Obs.CloudAt
	if p.UpdatedAt != nil && *p.UpdatedAt != "" {
		if t, err := novatime.Parse(*p.UpdatedAt); err == nil {
			s.Updated = t
		}
	}
	byUser := p.Initiator != nil && *p.Initiator != "" && !slices.Contains(serviceUsers, *p.Initiator)
	s.Intent = intent(ev.Type, s.Status, p.State, byUser, p.StateUpdate)
	ev.Obs.Servers = []model.Server{s}
	if ev.Type == "instance.delete.end" || s.Status == model.StatusDeleted {
		s.Status = model.StatusDeleted
		s.Intent = model.IntentUnknown
		ev.Obs.Servers[0] = s
		ev.Obs.Deleted = []string{s.ID}
	}
	return ev, nil
}

func intent(eventType, status, vmState string, byUser bool, su *json.RawMessage) model.PowerIntent {
	switch eventType {
	case "instance.power_off.end", "instance.shutdown.end":
		if vmState == "stopped" {
			if byUser {
				return model.IntentOff
			}
			return model.IntentOn // stopped by Nova itself (power sync): not the owner's wish
		}
	case "instance.power_on.end", "instance.reboot.end", "instance.rebuild.end", "instance.evacuate":
		return model.IntentOn
	case "instance.update":
		if vmState == "stopped" {
			var u stateUpdate
			if su != nil {
				var obj versioned
				if json.Unmarshal(*su, &obj) == nil {
					_ = json.Unmarshal(obj.Data, &u)
				}
			}
			if byUser && u.OldTaskState != nil && *u.OldTaskState == "powering-off" {
				return model.IntentOff
			}
			return model.IntentUnknown
		}
	}
	switch status {
	case model.StatusShutoff, model.StatusDeleted, "SHELVED", "SHELVED_OFFLOADED", "SOFT_DELETED":
		return model.IntentUnknown
	}
	return model.IntentOn
}

func parseService(ev Event, obj versioned) (Event, error) {
	var p servicePayload
	if err := json.Unmarshal(obj.Data, &p); err != nil {
		return Event{}, malformed("service.update: %s payload: %v", obj.Name, err)
	}
	if p.Host == "" {
		return Event{}, malformed("service.update: payload has no host")
	}
	if p.Binary != "nova-compute" {
		return ev, ErrIgnored
	}
	h := &model.Host{Name: p.Host, ForcedDown: p.ForcedDown, Disabled: p.Disabled}
	if p.ForcedDown {
		h.Service = model.ServiceDown
	}
	if p.Zone != nil {
		h.Segment = *p.Zone
	}
	if p.LastSeenUp != nil && *p.LastSeenUp != "" {
		if t, err := novatime.Parse(*p.LastSeenUp); err == nil {
			h.LastSeenUp = t
		}
	}
	ev.Host = h
	return ev, nil
}

// Status maps Nova's vm_state and task_state to the API status, as Nova's
// nova.api.openstack.common.status_from_state does.
func Status(vmState, taskState string) string {
	switch vmState {
	case "active":
		switch taskState {
		case "rebooting", "reboot_pending", "reboot_started":
			return model.StatusReboot
		case "rebooting_hard", "reboot_pending_hard", "reboot_started_hard":
			return model.StatusHardReboot
		case "rebuilding", "rebuild_block_device_mapping", "rebuild_spawning":
			return model.StatusRebuild
		case "migrating":
			return model.StatusMigrating
		case "resize_prep", "resize_migrating", "resize_migrated", "resize_finish":
			return model.StatusResize
		case "updating_password":
			return "PASSWORD"
		}
		return model.StatusActive
	case "building":
		return model.StatusBuild
	case "stopped":
		switch taskState {
		case "resize_prep", "resize_migrating", "resize_migrated", "resize_finish":
			return model.StatusResize
		case "rebuilding", "rebuild_block_device_mapping", "rebuild_spawning":
			return model.StatusRebuild
		}
		return model.StatusShutoff
	case "resized":
		if taskState == "resize_reverting" {
			return "REVERT_RESIZE"
		}
		return model.StatusVerify
	case "paused":
		if taskState == "migrating" {
			return model.StatusMigrating
		}
		return model.StatusPaused
	case "suspended":
		return model.StatusSuspended
	case "rescued":
		return "RESCUE"
	case "error":
		if taskState == "rebuilding" || taskState == "rebuild_block_device_mapping" || taskState == "rebuild_spawning" {
			return model.StatusRebuild
		}
		return model.StatusError
	case "deleted":
		return model.StatusDeleted
	case "soft-delete":
		return "SOFT_DELETED"
	case "shelved":
		return "SHELVED"
	case "shelved_offloaded":
		return "SHELVED_OFFLOADED"
	}
	return strings.ToUpper(vmState)
}
