package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"

	"github.com/spf13/pflag"
)

// logFlags are --log-format and --log-level, of serve and demo.
type logFlags struct{ format, level string }

func (l *logFlags) add(f *pflag.FlagSet, level string) {
	f.StringVar(&l.format, "log-format", "text", "log format on stderr: text (key=value) or json (one object a line)")
	f.StringVar(&l.level, "log-level", level, "least severe level logged: debug, info, warn or error")
}

// logger is the process's logger on w, or an error naming the flag and its
// allowed values.
func (l *logFlags) logger(w io.Writer) (*slog.Logger, error) {
	var level slog.Level
	switch strings.ToLower(l.level) {
	case "debug":
		level = slog.LevelDebug
	case "info":
		level = slog.LevelInfo
	case "warn", "warning":
		level = slog.LevelWarn
	case "error":
		level = slog.LevelError
	default:
		return nil, fmt.Errorf("--log-level: %q is not a level: give debug, info, warn or error", l.level)
	}
	opts := &slog.HandlerOptions{Level: level}
	switch strings.ToLower(l.format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not a format: give text or json", l.format)
}
