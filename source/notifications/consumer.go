package notifications

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"sync"
	"time"

	amqp "github.com/rabbitmq/amqp091-go"
)

// Config says where Nova's notifications are and how to wait for them.
type Config struct {
	// URL of RabbitMQ, e.g. amqp://user:password@host:5672/ (never logged with its password).
	URL string
	// Exchange and RoutingKey default to Nova's: "nova", "versioned_notifications.*".
	Exchange   string
	RoutingKey string
	// ServiceUserIDs are keystone user IDs whose power-offs are not an owner's intent.
	ServiceUserIDs []string
	// MinBackoff and MaxBackoff bound the wait between reconnections (0.5 s, 30 s).
	MinBackoff, MaxBackoff time.Duration
	Logger                 *slog.Logger
}

// Stats counts what the consumer saw since it was made.
type Stats struct {
	Received   int64 // messages delivered
	Emitted    int64 // events handed on
	Ignored    int64 // well-formed, of a type Vigil does not use
	Malformed  int64 // could not be understood (logged with the reason)
	Connects   int64 // successful connections (the first included)
	Connected  bool  // consuming now
	LastError  string
	LastReason string // the last malformed message's reason
}

// Consumer reads Nova's versioned notifications from RabbitMQ.
type Consumer struct {
	cfg   Config
	log   *slog.Logger
	mu    sync.Mutex
	stats Stats
}

// New returns a consumer; Run starts it.
func New(cfg Config) *Consumer {
	if cfg.Exchange == "" {
		cfg.Exchange = "nova"
	}
	if cfg.RoutingKey == "" {
		cfg.RoutingKey = "versioned_notifications.*"
	}
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = 500 * time.Millisecond
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	return &Consumer{cfg: cfg, log: log.With("source", Source, "amqp", redact(cfg.URL))}
}

// Stats returns a copy of the counters.
func (c *Consumer) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.stats
}

func (c *Consumer) update(f func(*Stats)) {
	c.mu.Lock()
	f(&c.stats)
	c.mu.Unlock()
}

// Run consumes until ctx ends, calling emit for each event in delivery order, and
// reconnects after any failure with capped exponential backoff. It returns
// ctx.Err().
func (c *Consumer) Run(ctx context.Context, emit func(Event)) error {
	backoff := c.cfg.MinBackoff
	for {
		consumed, err := c.session(ctx, emit)
		c.update(func(s *Stats) { s.Connected = false })
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if consumed {
			backoff = c.cfg.MinBackoff
		}
		c.update(func(s *Stats) { s.LastError = err.Error() })
		c.log.Warn("notification consumer disconnected; reconnecting", "error", err, "in", backoff)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(backoff*2, c.cfg.MaxBackoff)
	}
}

// session connects, binds its queue and consumes until the connection or ctx ends.
// consumed reports whether it got as far as consuming.
func (c *Consumer) session(ctx context.Context, emit func(Event)) (consumed bool, err error) {
	conn, err := amqp.DialConfig(c.cfg.URL, amqp.Config{Heartbeat: 10 * time.Second, Dial: amqp.DefaultDial(5 * time.Second)})
	if err != nil {
		return false, fmt.Errorf("connect to RabbitMQ at %s: %w", redact(c.cfg.URL), err)
	}
	defer conn.Close()
	ch, err := conn.Channel()
	if err != nil {
		return false, fmt.Errorf("open AMQP channel: %w", err)
	}
	// Nova (oslo.messaging) declares this exchange the same way: topic, not durable.
	if err := ch.ExchangeDeclare(c.cfg.Exchange, "topic", false, false, false, false, nil); err != nil {
		return false, fmt.Errorf("declare exchange %q: %w", c.cfg.Exchange, err)
	}
	q, err := ch.QueueDeclare("", false, true, true, false, nil)
	if err != nil {
		return false, fmt.Errorf("declare queue: %w", err)
	}
	if err := ch.QueueBind(q.Name, c.cfg.RoutingKey, c.cfg.Exchange, false, nil); err != nil {
		return false, fmt.Errorf("bind queue to %s/%s: %w", c.cfg.Exchange, c.cfg.RoutingKey, err)
	}
	if err := ch.Qos(256, 0, false); err != nil {
		return false, fmt.Errorf("set prefetch: %w", err)
	}
	deliveries, err := ch.ConsumeWithContext(ctx, q.Name, "vigil", false, true, false, false, nil)
	if err != nil {
		return false, fmt.Errorf("consume from %s: %w", q.Name, err)
	}
	closed := conn.NotifyClose(make(chan *amqp.Error, 1))
	c.update(func(s *Stats) { s.Connected = true; s.Connects++ })
	c.log.Info("consuming Nova notifications", "exchange", c.cfg.Exchange, "routing_key", c.cfg.RoutingKey, "queue", q.Name)
	for {
		select {
		case <-ctx.Done():
			return true, ctx.Err()
		case e := <-closed:
			if e == nil {
				return true, errors.New("connection closed")
			}
			return true, fmt.Errorf("connection closed: %w", e)
		case d, ok := <-deliveries:
			if !ok {
				return true, errors.New("delivery channel closed")
			}
			c.handle(d.Body, emit)
			if err := d.Ack(false); err != nil {
				return true, fmt.Errorf("ack: %w", err)
			}
		}
	}
}

func (c *Consumer) handle(body []byte, emit func(Event)) {
	c.update(func(s *Stats) { s.Received++ })
	ev, err := Parse(body, c.cfg.ServiceUserIDs)
	var bad *MalformedError
	switch {
	case err == nil:
		// At is Vigil's clock; Nova's (the message's timestamp) is CloudAt.
		ev.Obs.At = time.Now().UTC()
		c.update(func(s *Stats) { s.Emitted++ })
		emit(ev)
	case errors.Is(err, ErrIgnored):
		c.update(func(s *Stats) { s.Ignored++ })
	case errors.As(err, &bad):
		c.update(func(s *Stats) { s.Malformed++; s.LastReason = bad.Reason })
		c.log.Warn("skipped a malformed notification", "reason", bad.Reason, "bytes", len(body))
	default:
		c.update(func(s *Stats) { s.Malformed++; s.LastReason = err.Error() })
		c.log.Warn("skipped a notification", "reason", err.Error(), "bytes", len(body))
	}
}

// redact drops the password from an AMQP URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparseable AMQP URL)"
	}
	return u.Redacted()
}
