package vigil

import (
	"net/http"
	"time"
)

// Timeouts bound each connection to the API (agents' and monitors' endpoints
// included), so that a client that sends less than it announced, or reads
// nothing, cannot hold a connection for ever. Zero fields take DefaultTimeouts'.
type Timeouts struct {
	// ReadHeader: the request line and headers.
	ReadHeader time.Duration
	// Read: the whole request, body included (a Content-Length larger than the
	// body sent ends here).
	Read time.Duration
	// Write: from the end of the request's headers to the end of the answer. It
	// bounds every ordinary route; the longest, POST /v1/hosts/{name}/return,
	// waits up to the engine's ReturnWait (1 min by default). A long-lived stream
	// (server-sent events) extends its own deadline per write with
	// http.ResponseController.SetWriteDeadline.
	Write time.Duration
	// Idle: a kept-alive connection between requests.
	Idle time.Duration
}

// DefaultTimeouts are the API server's timeouts unless Options.Timeouts says.
func DefaultTimeouts() Timeouts {
	return Timeouts{ReadHeader: 10 * time.Second, Read: 30 * time.Second, Write: 2 * time.Minute, Idle: 2 * time.Minute}
}

// withDefaults fills the zero fields.
func (t Timeouts) withDefaults() Timeouts {
	d := DefaultTimeouts()
	for _, f := range []struct{ v, def *time.Duration }{{&t.ReadHeader, &d.ReadHeader}, {&t.Read, &d.Read}, {&t.Write, &d.Write}, {&t.Idle, &d.Idle}} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	return t
}

// apply sets the timeouts on the API's server.
func (t Timeouts) apply(srv *http.Server) {
	t = t.withDefaults()
	srv.ReadHeaderTimeout, srv.ReadTimeout, srv.WriteTimeout, srv.IdleTimeout = t.ReadHeader, t.Read, t.Write, t.Idle
}
