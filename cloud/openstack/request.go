package openstack

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/vigil-ha/vigil/cloud"
)

// getAttempts bounds the retries of an idempotent GET inside one call; the call's
// Timeout bounds them too.
const getAttempts = 3

// get fetches url into out, retrying unavailability a few times with backoff,
// all within the driver's Timeout.
func (d *Driver) get(ctx context.Context, op, url string, out any) error {
	ctx, cancel := context.WithTimeout(withOp(ctx, op), d.cfg.Timeout)
	defer cancel()
	backoff := 200 * time.Millisecond
	var err error
	for attempt := 1; ; attempt++ {
		_, err = d.compute.Get(ctx, url, out, &gophercloud.RequestOpts{OkCodes: []int{200}})
		if err == nil {
			return nil
		}
		err = classify(err)
		if !errors.Is(err, cloud.ErrUnavailable) || attempt == getAttempts || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff *= 2
	}
}

// send makes one non-idempotent request (never retried here: the caller checks
// the cloud, e.g. its instance actions, before repeating an action).
func (d *Driver) send(ctx context.Context, op, method, url string, body any) error {
	ctx, cancel := context.WithTimeout(withOp(ctx, op), d.cfg.Timeout)
	defer cancel()
	_, err := d.compute.Request(ctx, method, url, &gophercloud.RequestOpts{
		JSONBody: body, OkCodes: []int{200, 201, 202, 204}})
	if err != nil {
		return classify(err)
	}
	return nil
}

// novaMessage is the message inside Nova's error bodies, which look like
// {"conflictingRequest": {"code": 409, "message": "..."}}.
func novaMessage(body []byte) string {
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) == nil {
		for _, raw := range doc {
			var inner struct {
				Message string `json:"message"`
			}
			if json.Unmarshal(raw, &inner) == nil && inner.Message != "" {
				return inner.Message
			}
		}
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	if s == "" {
		return "(no message)"
	}
	return s
}

// httpError is an HTTP answer Nova gave, with its own message.
type httpError struct {
	Status  int
	Message string
}

func (e *httpError) Error() string {
	return fmt.Sprintf("OpenStack answered %d %s: %s", e.Status, http.StatusText(e.Status), e.Message)
}

// classify turns what gophercloud returned into Vigil's error classes.
func classify(err error) error {
	if err == nil {
		return nil
	}
	var code gophercloud.ErrUnexpectedResponseCode
	var pcode *gophercloud.ErrUnexpectedResponseCode
	switch {
	case errors.As(err, &code):
	case errors.As(err, &pcode):
		code = *pcode
	default:
		if errors.Is(err, context.Canceled) {
			return err // the caller gave up: not the cloud's fault
		}
		if isUnavailable(err) {
			return fmt.Errorf("%w: %v", cloud.ErrUnavailable, err)
		}
		return err
	}
	he := &httpError{Status: code.Actual, Message: novaMessage(code.Body)}
	switch {
	case code.Actual >= 500:
		return fmt.Errorf("%w: %w", cloud.ErrUnavailable, he)
	case code.Actual == http.StatusConflict:
		return fmt.Errorf("%w: %w", cloud.ErrConflict, he)
	case code.Actual == http.StatusNotFound:
		return cloud.Terminal(fmt.Errorf("%w: %w", cloud.ErrNotFound, he))
	case code.Actual == http.StatusTooManyRequests:
		return fmt.Errorf("%w: rate limited: %w", cloud.ErrUnavailable, he)
	case code.Actual == http.StatusUnauthorized:
		return cloud.Terminal(fmt.Errorf("credentials rejected (check clouds.yaml): %w", he))
	case code.Actual == http.StatusForbidden:
		return cloud.Terminal(fmt.Errorf("not allowed for this user (Vigil needs an admin role): %w", he))
	default:
		return cloud.Terminal(fmt.Errorf("request refused: %w", he))
	}
}

// isUnavailable: the cloud did not answer (timeout, refused, reset, DNS).
func isUnavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	s := err.Error()
	return strings.Contains(s, "connection refused") || strings.Contains(s, "EOF") ||
		strings.Contains(s, "connection reset")
}

// statusOf returns the HTTP status inside a classified error, 0 when none.
func statusOf(err error) (int, string) {
	var he *httpError
	if errors.As(err, &he) {
		return he.Status, he.Message
	}
	return 0, ""
}
