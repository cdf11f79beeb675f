// Package novatime reads the timestamps Nova writes: RFC 3339 with a zone in the API
// ("Z", "+00:00"), and without one (UTC) in notifications and some fields
// ("2026-11-24 11:44:56.694970"). Shared by the driver and the notification source.
package novatime
