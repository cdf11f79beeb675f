// Package redfish fences hosts through their BMCs' Redfish services (DMTF
// DSP0266), with gofish: it implements cloud.Fencer (PowerOff is
// ComputerSystem.Reset ForceOff, then PowerState read back until Off;
// PowerStatus reads PowerState), cloud.Identifier (the ComputerSystem's UUID) and
// PowerOn (Reset On, then PowerState On) for returning a host to service.
//
// It owns:
//   - one connection, and one session (or HTTP basic authentication), per call,
//     deleted at its end; every request bounded by the BMC's timeout and the
//     caller's ctx, so a BMC that accepts the connection and never answers costs
//     the timeout, never more;
//   - TLS trust: the system's roots, the entry's CA file, or, only where the policy
//     file says insecure: true, none (plain http is allowed only then too);
//   - confirmation: PowerOff returns nil only once the BMC reports PowerState Off; a
//     BMC that accepts ForceOff and still says On after the confirm timeout gives
//     ErrNotConfirmed (retryable), never success;
//   - error classes at the boundary (see Error): no answer, 409/429/5xx are
//     retryable (cloud.ErrUnavailable, ErrFailed); 401, 403, an untrusted
//     certificate, a missing system, a reset refused with 400/405/501, a pinned UUID
//     that does not match are terminal (cloud.Terminal), with a sentence naming the
//     host, the endpoint and the user;
//   - one system per host: New refuses two hosts whose entries reach one system
//     (the same endpoint, aliases folded, and system; or the same pinned UUID).
//
// It never logs, never puts a password in an error or a formatted BMC (String,
// GoString and LogValue leave it out; the BMC's and the library's words are
// scrubbed of it), never caches a power state, never powers a host on unless PowerOn
// is called, and never goes through an HTTP proxy.
package redfish
