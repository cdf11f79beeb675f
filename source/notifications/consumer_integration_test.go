package notifications

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// These tests need the RabbitMQ of the OpenStack peer (test/peers/openstack/up.sh,
// then source test/peers/openstack/env.sh for VIGIL_AMQP_URL). They publish to an
// exchange of their own, declared like Nova's, so that no other consumer of Nova's
// notifications sees their made-up messages.
const testExchange = "vigil-test-notifications"

func amqpURL(t *testing.T) string {
	u := os.Getenv("VIGIL_AMQP_URL")
	if u == "" {
		t.Skip("VIGIL_AMQP_URL unset: start the peer with test/peers/openstack/up.sh and source test/peers/openstack/env.sh")
	}
	return u
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v", what, within)
		}
		<-time.After(50 * time.Millisecond)
	}
}

func publish(t *testing.T, rawURL string, bodies ...[]byte) {
	t.Helper()
	conn, err := amqp.Dial(rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range bodies {
		if err := ch.PublishWithContext(context.Background(), testExchange, "versioned_notifications.info", false, false,
			amqp.Publishing{ContentType: "application/json", Body: b}); err != nil {
			t.Fatal(err)
		}
	}
}

type collector struct {
	mu     sync.Mutex
	events []Event
}

func (c *collector) add(ev Event) { c.mu.Lock(); c.events = append(c.events, ev); c.mu.Unlock() }
func (c *collector) has(id string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ev := range c.events {
		for _, s := range ev.Obs.Servers {
			if s.ID == id {
				return true
			}
		}
	}
	return false
}

func start(t *testing.T, cfg Config) (*Consumer, *collector) {
	t.Helper()
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	c := New(cfg)
	col := &collector{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, col.add) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("Run returned %v after cancel, want context.Canceled", err)
		}
	})
	return c, col
}

func TestIntegrationMalformedMessagesDoNotStopTheConsumer(t *testing.T) {
	u := amqpURL(t)
	c, col := start(t, Config{URL: u, Exchange: testExchange})
	waitUntil(t, 10*time.Second, "connected", func() bool { return c.Stats().Connected })

	valid := wrap(instanceMsg("instance.update", map[string]any{"uuid": "vigil-test-after-garbage", "state": "error"}))
	publish(t, u, []byte("not json at all"), []byte(`{"oslo.version":"2.0"}`),
		wrap(instanceMsg("instance.update", map[string]any{"state": "error"})), valid)
	waitUntil(t, 10*time.Second, "the valid message after three malformed ones", func() bool { return col.has("vigil-test-after-garbage") })
	st := c.Stats()
	if st.Malformed < 3 || !st.Connected || st.Connects != 1 || st.LastReason == "" {
		t.Fatalf("stats %+v: want 3 malformed counted with a reason, still on the first connection", st)
	}
	t.Logf("stats after 3 malformed + 1 valid: %+v", st)
}

// TestIntegrationReconnects cuts the consumer's connection (through a proxy the
// test owns) and checks that it reconnects with backoff and consumes again.
func TestIntegrationReconnects(t *testing.T) {
	u := amqpURL(t)
	target, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	var conns []net.Conn
	go func() {
		for {
			in, err := ln.Accept()
			if err != nil {
				return
			}
			out, err := net.Dial("tcp", target.Host)
			if err != nil {
				in.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, in, out)
			mu.Unlock()
			go func() { io.Copy(out, in); out.Close() }()
			go func() { io.Copy(in, out); in.Close() }()
		}
	}()
	cut := func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
		conns = nil
	}
	proxied := *target
	proxied.Host = ln.Addr().String()
	c, col := start(t, Config{URL: proxied.String(), Exchange: testExchange, MinBackoff: 100 * time.Millisecond, MaxBackoff: time.Second})
	waitUntil(t, 10*time.Second, "connected", func() bool { return c.Stats().Connected })
	cut()
	waitUntil(t, 10*time.Second, "reconnected", func() bool { st := c.Stats(); return st.Connects >= 2 && st.Connected })
	publish(t, u, wrap(instanceMsg("instance.update", map[string]any{"uuid": "vigil-test-after-reconnect", "state": "active"})))
	waitUntil(t, 10*time.Second, "a message after the reconnection", func() bool { return col.has("vigil-test-after-reconnect") })
	st := c.Stats()
	if pw, _ := target.User.Password(); pw != "" && strings.Contains(st.LastError, pw) {
		t.Fatalf("the AMQP password shows in an error: %s", st.LastError)
	}
	t.Logf("after a cut: %+v", st)
}
