// Package ipmi fences hosts through their BMCs over IPMI: it implements cloud.Fencer
// (power off, power status) with IPMI 2.0 RMCP+ ("lanplus", the default) or IPMI 1.5
// ("lan"), one BMC per host name, and adds PowerOn for returning a host to service,
// and cloud.Identifier: Identity is the BMC's GUID (Get System GUID, else Get
// Device GUID), so that a caller can tell two entries that reach one BMC.
//
// It owns:
//   - one session per call, opened and closed within that call (BMCs drop idle
//     sessions and have few slots), bounded by the BMC's timeout and the caller's ctx;
//   - idempotence: PowerOff of a host already off succeeds without sending anything,
//     and PowerOff returns only once the BMC accepted the request;
//   - error classes at the boundary (see Error): a BMC that does not answer is
//     retryable (wraps cloud.ErrUnavailable); one that refuses the user, the password,
//     the privilege or the cipher suite is terminal (cloud.Terminal), with a sentence
//     naming the host, the BMC's address and the user; a host without a BMC is
//     terminal and wraps cloud.ErrNotFound (CanFence says false for it);
//   - one BMC per host: New refuses two hosts whose entries reach one BMC (the same
//     address and port, obvious aliases folded, or the same pinned GUID), and
//     PowerOff through an entry that pins a GUID first checks that the BMC reports
//     it (terminal ErrWrongBMC otherwise: it may power another machine).
//
// It never logs, never puts a password in an error or a formatted BMC (String,
// GoString and LogValue leave it out; the library's words are scrubbed of it), never
// caches a power state (each PowerStatus asks the BMC), never powers a host on unless
// PowerOn is called, and never keeps a session open between calls.
package ipmi
