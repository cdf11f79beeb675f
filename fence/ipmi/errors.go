package ipmi

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/vigil-ha/vigil/cloud"
)

// Kind says what went wrong with a BMC, and so what to do next.
type Kind int

const (
	// Unavailable: the BMC did not answer in time (retryable; wraps
	// cloud.ErrUnavailable).
	Unavailable Kind = iota
	// Failed: the BMC answered the command with an error completion code (retryable:
	// busy, or the power request did not take; wraps ErrFailed).
	Failed
	// AuthRefused: the BMC refused the user or the password (terminal).
	AuthRefused
	// PrivilegeRefused: the user may not take the operator privilege that chassis
	// control needs (terminal).
	PrivilegeRefused
	// CipherRefused: the BMC does not offer the configured cipher suite (terminal).
	CipherRefused
	// NotConfigured: the host has no BMC (terminal; wraps cloud.ErrNotFound).
	NotConfigured
	// Canceled: the caller's context ended first (wraps its error).
	Canceled
	// NoGUID: the BMC answered but gives no GUID, so which machine it controls
	// cannot be checked (terminal; wraps ErrNoGUID).
	NoGUID
	// WrongBMC: the BMC reports a GUID other than the one its entry pins: it may
	// power another machine (terminal; wraps ErrWrongBMC).
	WrongBMC
)

// Error is a failed call to a host's BMC. Its message is a sentence an operator can
// act on; Detail keeps the IPMI library's own words, scrubbed of the password.
type Error struct {
	Host   string
	Addr   string
	User   string
	Op     string // what was asked: "power it off", "read the power state", ...
	Kind   Kind
	Detail string
	// Timeout is the bound the BMC did not answer within (Unavailable).
	Timeout time.Duration
	causes  []error
}

// ErrFailed: the BMC answered a command with an error.
var ErrFailed = errors.New("BMC command failed")

// errRefused is what a terminal Error unwraps to.
var errRefused = errors.New("BMC refused the session")

func (e *Error) Error() string {
	var s string
	switch e.Kind {
	case NotConfigured:
		return fmt.Sprintf("cannot %s: host %s has no BMC in the fencing section of the policy file", e.Op, e.Host)
	case AuthRefused:
		s = fmt.Sprintf("BMC of %s at %s refused user %s: check the fencing section of the policy file (user name and password)", e.Host, e.Addr, e.User)
	case PrivilegeRefused:
		s = fmt.Sprintf("BMC of %s at %s refused user %s the operator privilege needed to control power: give that user operator or administrator rights on the BMC", e.Host, e.Addr, e.User)
	case CipherRefused:
		s = fmt.Sprintf("BMC of %s at %s does not accept the configured cipher suite: set cipher_suite in the fencing section of the policy file to one it offers (3 on most BMCs)", e.Host, e.Addr)
	case NoGUID:
		s = fmt.Sprintf("BMC of %s at %s gives no GUID (neither Get System GUID nor Get Device GUID): which machine it powers cannot be checked", e.Host, e.Addr)
	case WrongBMC:
		return fmt.Sprintf("BMC of %s at %s is not the one the policy file names (%s): refused to %s, since it may power another machine; check the address, port and guid of %s in the fencing section", e.Host, e.Addr, e.Detail, e.Op, e.Host)
	case Canceled:
		s = fmt.Sprintf("BMC of %s at %s: stopped before it answered (could not %s)", e.Host, e.Addr, e.Op)
	case Failed:
		s = fmt.Sprintf("BMC of %s at %s could not %s: it answered with an error", e.Host, e.Addr, e.Op)
	default:
		s = fmt.Sprintf("BMC of %s at %s did not answer within %s (could not %s)", e.Host, e.Addr, e.Timeout, e.Op)
	}
	if e.Detail != "" {
		s += " [" + e.Detail + "]"
	}
	return s
}

// Unwrap gives the class: cloud.ErrUnavailable (with context.DeadlineExceeded when
// the caller's deadline was the bound), ErrFailed, cloud.ErrNotFound, or
// context.Canceled. The library's error is not wrapped, since its text may say too much.
func (e *Error) Unwrap() []error { return e.causes }

// Marks in go-ipmi v0.9.1's error texts (its session setup flattens errors to
// strings, so errors.Is cannot see them). Each is checked by a test against the
// library's own words.
var (
	// RAKP: a wrong password (the BMC's RAKP2 code does not verify) or a user the
	// BMC does not know (RMCP+ status 0x0d "Unauthorized name"), 0x0f invalid
	// integrity check value (the BMC's view of a wrong password), 0x0e GUID.
	authRMCP = regexp.MustCompile(`RAKP authentication failed|RMCP\+ status 0x0[def]\b`)
	// RMCP+ 0x09 invalid role, 0x0a unauthorized role or privilege.
	privRMCP = regexp.MustCompile(`RMCP\+ status 0x0[9a]\b`)
	// RMCP+ 0x04/0x05/0x10 an algorithm of the suite refused, 0x11 no cipher suite match.
	cipherRMCP = regexp.MustCompile(`RMCP\+ status 0x(0[45]|1[01])\b`)
	// IPMI 1.5: Get Session Challenge "Invalid user name" (cc 0x81) or null user
	// disabled (0x82); Activate Session refused for privilege (0x86); Set Session
	// Privilege Level refused (0x80 not available for the user, 0x81 exceeds limit).
	authLan = regexp.MustCompile(`GetSessionChallenge failed, err: cc: 0x8[12]\b`)
	// Any other completion code: the BMC answered and refused the command.
	completionCode = regexp.MustCompile(`cc: 0x[0-9a-f]{2}\b`)
	privLan        = regexp.MustCompile(`ActivateSession failed, err: cc: 0x86\b|SetSessionPrivilegeLevel .*cc: 0x8[01]\b|cc: 0xd4\b`)
)

// classify turns an error of go-ipmi into an *Error of the right kind, marked
// terminal where retrying cannot help. ctx is the caller's, to tell its end from
// the BMC's silence.
func classify(ctx context.Context, b BMC, op string, bound time.Duration, err error) error {
	if _, ours := errors.AsType[*Error](err); ours { // classified where it was made
		return err
	}
	detail := err.Error()
	if b.Password != "" {
		detail = strings.ReplaceAll(detail, b.Password, "<password>")
	}
	detail = strings.Join(strings.Fields(detail), " ") // the library's texts span lines
	e := &Error{Host: b.Host, Addr: b.Addr(), User: b.Username, Op: op, Detail: detail, Timeout: bound,
		causes: []error{cloud.ErrUnavailable}}
	deadline, hasDeadline := ctx.Deadline()
	switch {
	case errors.Is(ctx.Err(), context.Canceled):
		e.Kind, e.causes = Canceled, []error{context.Canceled}
		return e
	case authRMCP.MatchString(detail) || authLan.MatchString(detail) || lanSilentOnPassword(b, detail):
		e.Kind = AuthRefused
	case privRMCP.MatchString(detail) || privLan.MatchString(detail):
		e.Kind = PrivilegeRefused
	case cipherRMCP.MatchString(detail):
		e.Kind = CipherRefused
	case completionCode.MatchString(detail):
		e.Kind, e.causes = Failed, []error{ErrFailed}
		return e
	default:
		e.Kind = Unavailable
		if hasDeadline && !time.Now().Before(deadline) { // the caller's deadline was the bound
			e.causes = append(e.causes, context.DeadlineExceeded)
		}
		return e
	}
	e.causes = []error{errRefused}
	return cloud.Terminal(e)
}

// lanSilentOnPassword: an IPMI 1.5 BMC answers Get Session Challenge for a known
// user, then drops an Activate Session whose MD5 code is wrong without a word
// (ipmi_sim does; so do many). A BMC that just answered and then is silent on
// exactly that request is refusing the password, not gone. It costs the whole timeout.
func lanSilentOnPassword(b BMC, detail string) bool {
	return b.Interface == Lan && strings.HasPrefix(detail, "ActivateSession failed") &&
		(strings.Contains(detail, "no matching IPMI response") || strings.Contains(detail, "deadline exceeded"))
}
