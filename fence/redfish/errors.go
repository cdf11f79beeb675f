package redfish

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/stmcginnis/gofish/schemas"

	"github.com/vigil-ha/vigil/cloud"
)

// Kind says what went wrong with a BMC, and so what to do next.
type Kind int

const (
	// Unavailable: the BMC did not answer in time, or the connection failed
	// (retryable; wraps cloud.ErrUnavailable).
	Unavailable Kind = iota
	// Failed: the BMC answered with an error it may not give next time (busy 409,
	// 429, 5xx) or with something that is not Redfish (retryable; wraps ErrFailed).
	Failed
	// AuthRefused: 401, the BMC refused the user or the password (terminal).
	AuthRefused
	// PrivilegeRefused: 403, the user may not do that (terminal).
	PrivilegeRefused
	// TLSRefused: the BMC's certificate is not trusted, or it does not speak the
	// scheme of the endpoint (terminal).
	TLSRefused
	// NotConfigured: the host has no Redfish BMC (terminal; wraps cloud.ErrNotFound).
	NotConfigured
	// Canceled: the caller's context ended first (wraps its error).
	Canceled
	// NoSystem: the system is not there (404), or the entry names none and the
	// service has several or none (terminal).
	NoSystem
	// Refused: the BMC refused the request for good (400, 405, 501, ...: a reset
	// type it will not perform) (terminal; wraps ErrRefused).
	Refused
	// NotConfirmed: the BMC accepted the reset, but PowerState did not reach the
	// state asked within the confirm timeout (retryable; wraps ErrNotConfirmed):
	// a BMC that says done and does nothing is caught here.
	NotConfirmed
	// NoUUID: the system gives no UUID (terminal; wraps cloud.ErrNoIdentity).
	NoUUID
	// WrongSystem: the system reports a UUID other than the one its entry pins
	// (terminal; wraps ErrWrongSystem).
	WrongSystem
)

// Error is a failed call to a host's Redfish BMC. Its message is a sentence an
// operator can act on; Detail keeps the BMC's or the library's own words, scrubbed
// of the password.
type Error struct {
	Host     string
	Endpoint string
	User     string
	Op       string // what was asked: "power it off", "read the power state", ...
	Kind     Kind
	Detail   string
	// Timeout is the bound the BMC did not answer within (Unavailable), or the
	// confirm timeout (NotConfirmed).
	Timeout time.Duration
	causes  []error
}

var (
	// ErrFailed: the BMC answered with an error that may pass.
	ErrFailed = errors.New("Redfish request failed")
	// ErrRefused: the BMC refused the request for good.
	ErrRefused = errors.New("Redfish request refused")
	// ErrNotConfirmed: the power state did not reach what was asked in time.
	ErrNotConfirmed = errors.New("power state not confirmed")
	// ErrWrongSystem: the system is not the one pinned.
	ErrWrongSystem = errors.New("Redfish system is not the one pinned")
	// errDenied is what the other terminal Errors unwrap to.
	errDenied = errors.New("Redfish BMC refused the client")
)

func (e *Error) Error() string {
	var s string
	switch e.Kind {
	case NotConfigured:
		return fmt.Sprintf("cannot %s: host %s has no Redfish BMC in the fencing section of the policy file", e.Op, e.Host)
	case AuthRefused:
		s = fmt.Sprintf("Redfish BMC of %s at %s refused user %s (401): check the fencing section of the policy file (username and password)", e.Host, e.Endpoint, e.User)
	case PrivilegeRefused:
		s = fmt.Sprintf("Redfish BMC of %s at %s does not let user %s %s (403): give that user the Operator or Administrator role on the BMC", e.Host, e.Endpoint, e.User, e.Op)
	case TLSRefused:
		s = fmt.Sprintf("Redfish BMC of %s at %s: the TLS connection was refused, so it cannot %s: give its CA in ca_file (or, knowingly, insecure: true), or fix the endpoint's scheme and port", e.Host, e.Endpoint, e.Op)
	case NoSystem:
		s = fmt.Sprintf("Redfish BMC of %s at %s: cannot %s: the system is not there; set system in the fencing section to the URI of the host's ComputerSystem", e.Host, e.Endpoint, e.Op)
	case Refused:
		s = fmt.Sprintf("Redfish BMC of %s at %s refused to %s", e.Host, e.Endpoint, e.Op)
	case NotConfirmed:
		s = fmt.Sprintf("Redfish BMC of %s at %s accepted the request to %s, but its PowerState did not follow within %s: the host is not proven off", e.Host, e.Endpoint, e.Op, e.Timeout)
	case NoUUID:
		s = fmt.Sprintf("Redfish BMC of %s at %s gives no UUID for the system: which machine it powers cannot be checked", e.Host, e.Endpoint)
	case WrongSystem:
		return fmt.Sprintf("Redfish BMC of %s at %s is not the one the policy file names (%s): refused to %s, since it may power another machine; check endpoint, system and uuid of %s in the fencing section", e.Host, e.Endpoint, e.Detail, e.Op, e.Host)
	case Canceled:
		s = fmt.Sprintf("Redfish BMC of %s at %s: stopped before it answered (could not %s)", e.Host, e.Endpoint, e.Op)
	case Failed:
		s = fmt.Sprintf("Redfish BMC of %s at %s could not %s: it answered with an error", e.Host, e.Endpoint, e.Op)
	default:
		s = fmt.Sprintf("Redfish BMC of %s at %s did not answer within %s (could not %s)", e.Host, e.Endpoint, e.Timeout, e.Op)
	}
	if e.Detail != "" {
		s += " [" + e.Detail + "]"
	}
	return s
}

// Unwrap gives the class: cloud.ErrUnavailable (with context.DeadlineExceeded when
// the caller's deadline was the bound), ErrFailed, ErrRefused, ErrNotConfirmed,
// ErrWrongSystem, cloud.ErrNoIdentity, cloud.ErrNotFound or context.Canceled. The
// library's error is not wrapped, since its text may say too much.
func (e *Error) Unwrap() []error { return e.causes }

// newError builds an Error about b; terminal ones come marked cloud.Terminal.
func newError(b BMC, op string, kind Kind, detail string, causes ...error) error {
	e := &Error{Host: b.Host, Endpoint: b.Endpoint, User: b.Username, Op: op, Kind: kind, Detail: detail,
		Timeout: b.Timeout, causes: causes}
	if terminal(kind) {
		return cloud.Terminal(e)
	}
	return e
}

func terminal(k Kind) bool {
	switch k {
	case AuthRefused, PrivilegeRefused, TLSRefused, NotConfigured, NoSystem, Refused, NoUUID, WrongSystem:
		return true
	}
	return false
}

// classify turns an error of gofish or net/http into an *Error of the right kind,
// marked terminal where retrying cannot help. ctx is the caller's, to tell its end
// from the BMC's silence; bound is the time the call had.
func classify(ctx context.Context, b BMC, op string, bound time.Duration, err error) error {
	if _, ours := errors.AsType[*Error](err); ours { // classified where it was made
		return err
	}
	if cloud.IsTerminal(err) {
		return err
	}
	detail := scrub(b, err.Error())
	mk := func(k Kind, causes ...error) error {
		e := newError(b, op, k, detail, causes...)
		if x, ok := errors.AsType[*Error](e); ok {
			x.Timeout = bound
		}
		return e
	}
	if rf, ok := errors.AsType[*schemas.Error](err); ok && rf.HTTPReturnedStatusCode != 0 {
		detail = scrub(b, redfishWords(rf))
		switch code := rf.HTTPReturnedStatusCode; {
		case code == http.StatusUnauthorized:
			return mk(AuthRefused, errDenied)
		case code == http.StatusForbidden:
			return mk(PrivilegeRefused, errDenied)
		case code == http.StatusNotFound:
			return mk(NoSystem, errDenied, cloud.ErrNotFound)
		case code == http.StatusRequestTimeout || code == http.StatusConflict || code == http.StatusTooManyRequests ||
			code == http.StatusPreconditionFailed || code >= 500 && code != http.StatusNotImplemented:
			return mk(Failed, ErrFailed)
		default: // 400, 405, 501, ...: asking again gets the same answer
			return mk(Refused, ErrRefused)
		}
	}
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		return mk(Canceled, context.Canceled)
	case isTLS(err):
		return mk(TLSRefused, errDenied)
	}
	if _, ok := errors.AsType[*json.SyntaxError](err); ok {
		return mk(Failed, ErrFailed)
	}
	if _, ok := errors.AsType[*json.UnmarshalTypeError](err); ok {
		return mk(Failed, ErrFailed)
	}
	causes := []error{cloud.ErrUnavailable}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) { // the caller's deadline was the bound
		causes = append(causes, context.DeadlineExceeded)
	}
	return mk(Unavailable, causes...)
}

// isTLS: the certificate was not trusted, or one side does not speak TLS.
func isTLS(err error) bool {
	if _, ok := errors.AsType[*tls.CertificateVerificationError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.UnknownAuthorityError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.HostnameError](err); ok {
		return true
	}
	if _, ok := errors.AsType[x509.CertificateInvalidError](err); ok {
		return true
	}
	if _, ok := errors.AsType[tls.RecordHeaderError](err); ok {
		return true
	}
	return strings.Contains(err.Error(), "server gave HTTP response to HTTPS client")
}

// redfishWords is what a Redfish error body says: its status, message ID and message.
func redfishWords(e *schemas.Error) string {
	msg, id := e.Message, e.Code
	if len(e.ExtendedInfos) > 0 {
		if m := e.ExtendedInfos[0].Message; m != "" {
			msg = m
		}
		if m := e.ExtendedInfos[0].MessageID; m != "" {
			id = m
		}
	}
	s := fmt.Sprintf("HTTP %d", e.HTTPReturnedStatusCode)
	if id != "" {
		s += " " + id
	}
	if msg = strings.Join(strings.Fields(msg), " "); msg != "" {
		s += ": " + msg
	}
	return s
}

// scrub takes the password out of a text and keeps it short.
func scrub(b BMC, s string) string {
	if b.Password != "" {
		s = strings.ReplaceAll(s, b.Password, "<password>")
	}
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}
