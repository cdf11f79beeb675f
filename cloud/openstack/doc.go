// Package openstack is Vigil's compute driver for OpenStack Nova: it implements
// cloud.Compute over Nova's public compute API, configured by a clouds.yaml entry.
//
// It owns the HTTP conversation with Nova: authentication (gophercloud v2, whose
// openstack/config/clouds reads clouds.yaml), microversion negotiation (the newest
// both Nova and this driver know, at most 2.93, sent on every call), bulk listing
// with changes-since, the recovery actions, and the classification of Nova's answers
// into Vigil's error classes at this boundary:
//
//   - no answer, timeouts, connection errors, 5xx: cloud.ErrUnavailable (retryable;
//     idempotent GETs are also retried here, a few times, within the call's timeout);
//   - 409, and the 400s that only mean "not yet" (evacuate while the source compute
//     is still up, force-up while evacuation records remain): cloud.ErrConflict;
//   - 404: cloud.Terminal wrapping cloud.ErrNotFound;
//   - other 400s, 401 and 403: cloud.Terminal with Nova's own message.
//
// Request builders are written here, not taken from gophercloud, where gophercloud
// lags Nova (evacuate without onSharedStorage/force, forced_down false, live
// migration with a null host) or where the driver needs fields gophercloud's types
// drop (OS-EXT-STS:vm_state, instance-action user ids).
//
// Power intent: a SHUTOFF server is reported IntentOff only when Nova's vm_state is
// "stopped" and its newest instance action is a "stop" requested by a user (not by
// Nova's power-state sync, which records no user, nor by a configured service user).
// Instance actions cost one call per server, so they are read only for SHUTOFF
// servers whose "updated" changed since the driver last looked (cached by server ID
// and updated time); every other server is IntentOn, DELETED ones IntentUnknown.
//
// Nova's clock: the driver implements cloud.Clock from the Date header of every
// answer of the compute API (keystone's and 5xx answers, possibly a proxy's, do not
// count). The estimate errs early, never late: see cloudClock.
//
// It never decides anything: it does not retry actions (only reads), never waits for
// an action's effect, and never logs credentials.
package openstack
