// Package notifications turns Nova's versioned notifications, read from RabbitMQ,
// into partial observations: a server's new status within milliseconds of Nova
// changing it, and compute-service changes (forced down/up, disabled, restarted).
//
// It owns one AMQP consumer: its own exclusive, auto-delete queue bound to Nova's
// non-durable topic exchange "nova" with routing key "versioned_notifications.*"
// (never oslo's own versioned_notifications.info queue), reconnecting with capped
// exponential backoff. Parse is a pure function from a message body to an Event;
// the consumer only does I/O around it.
//
// Notifications make Vigil fast, polling keeps it correct: a lost or reordered
// notification is repaired by the next poll, so every Event is a partial
// observation (Full false) and nothing here is authoritative. Malformed messages
// are logged with their reason, acknowledged, counted (Stats) and skipped; they
// never stop the consumer.
//
// model.Observation has no field for a single host's update (its Hosts is the
// complete list), so service.update arrives as Event.Host, beside an empty
// observation, rather than in model.Observation.
//
// instance.delete.end lists the server with status DELETED in Obs.Servers, as a
// changes-since listing does, and its ID in Obs.Deleted.
//
// Two clocks, never mixed: Obs.CloudAt is the message's own timestamp (Nova's clock,
// UTC) and each server's Updated is its payload's updated_at (Nova's clock; the
// message's timestamp when the payload has none), so that a late notification can
// be told from news by comparing it with a listing's updated (hole 9 of issue 13);
// Obs.At is Vigil's clock when the consumer received the message (Parse leaves it
// zero: it reads no clock).
//
// Power intent from a notification: IntentOff only when a real user (not the
// request context of Nova's own periodic tasks, which has no user, nor a
// configured service user) powered the server off; IntentOn for servers running
// or in ERROR; IntentUnknown when the notification cannot tell (e.g. an
// instance.update of a SHUTOFF server that was not a power-off transition): the
// consumer of events keeps the intent the poller found.
package notifications
