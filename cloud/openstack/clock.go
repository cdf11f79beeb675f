package openstack

import (
	"net/http"
	"sync"
	"time"
)

// maxDrift bounds how fast the cloud's clock may run slower than Vigil's monotonic
// clock between two answers: 500 ppm is the fastest an NTP daemon slews a clock,
// and well above the drift of an unsynchronised crystal.
const maxDrift = 500e-6

// clockWindow is how long one answer's Date is trusted: the estimate is the best of
// the answers of the last clockWindow, so a cloud clock stepped back by less than
// an answer can reveal is forgotten within it.
const clockWindow = time.Minute

// cloudClock estimates the cloud's clock from the Date headers of its answers. The
// estimate is a lower bound: a Date is floored to the second and was stamped before
// the answer arrived, so the cloud's clock as an answer arrives is at least its
// Date. An early clock only makes changes-since earlier (a few more rows, never a
// missed change) and heartbeats look younger (never a false fence); a late one
// misses changes and fences live hosts.
//
// Each answer is an anchor: a reading of Vigil's monotonic clock and the cloud's
// time then, run forward on the monotonic clock less maxDrift so that it stays a
// lower bound as the two clocks drift. The estimate is the highest of the anchors
// of the last clockWindow (several answers with different sub-second phases bring
// it within a round trip of the truth). Each answer also bounds the cloud's clock
// from above (Date + 1 s + the round trip): anchors past that are wrong (the cloud's
// clock was stepped back) and are dropped at once, so the latest answers win.
type cloudClock struct {
	mu      sync.Mutex
	now     func() time.Time // Vigil's clock; its monotonic reading is what is used
	host    string           // only answers from this host:port (Nova's API) count
	anchors []anchor         // oldest first, each with a higher estimate than the next
}

type anchor struct {
	local time.Time // Vigil's clock when the answer arrived
	cloud time.Time // the cloud's clock then (a lower bound)
}

// at is the anchor's lower bound for the cloud's clock at local.
func (a anchor) at(local time.Time) time.Time {
	elapsed := local.Sub(a.local)
	if elapsed < 0 {
		elapsed = 0
	}
	return a.cloud.Add(elapsed - time.Duration(float64(elapsed)*maxDrift))
}

func newCloudClock(now func() time.Time) *cloudClock {
	if now == nil {
		now = time.Now
	}
	return &cloudClock{now: now}
}

// setHost names the compute API's host:port. Answers from elsewhere (keystone,
// a proxy, another service) do not tell Nova's clock.
func (c *cloudClock) setHost(host string) {
	c.mu.Lock()
	c.host = host
	c.mu.Unlock()
}

// CloudNow is the estimate now; ok is false until the cloud answered with a Date.
func (c *cloudClock) CloudNow() (time.Time, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := c.now()
	c.expireLocked(now)
	if len(c.anchors) == 0 {
		return time.Time{}, false
	}
	return c.anchors[0].at(now).UTC(), true
}

// expireLocked drops the anchors older than clockWindow, keeping the newest one
// (the latest answer is better than none).
func (c *cloudClock) expireLocked(now time.Time) {
	for len(c.anchors) > 1 && now.Sub(c.anchors[0].local) > clockWindow {
		c.anchors = c.anchors[1:]
	}
}

// observe takes an answer from host stamped date, to a request sent at sent and
// answered at received (both read from c.now).
func (c *cloudClock) observe(host string, date, sent, received time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if host == "" || host != c.host {
		return
	}
	a := anchor{local: received, cloud: date}
	high := date.Add(time.Second + received.Sub(sent))
	// Keep the older anchors that say more than this one and are not past this
	// answer's upper bound (the cloud's clock stepped back), in order.
	kept := c.anchors[:0]
	for _, old := range c.anchors {
		if t := old.at(received); t.After(a.cloud) && t.Before(high) {
			kept = append(kept, old)
		}
	}
	c.anchors = append(kept, a)
	c.expireLocked(received)
}

// clockTransport reads the Date header of every answer the cloud gives.
type clockTransport struct {
	next  http.RoundTripper
	clock *cloudClock
}

func (t *clockTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	sent := t.clock.now()
	resp, err := t.next.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	received := t.clock.now()
	// A 5xx may come from a proxy in front of Nova, with its own clock.
	if resp.StatusCode < 500 {
		if date, err := http.ParseTime(resp.Header.Get("Date")); err == nil {
			t.clock.observe(r.URL.Host, date, sent, received)
		}
	}
	return resp, err
}
