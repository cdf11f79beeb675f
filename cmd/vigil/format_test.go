package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func sample() listing {
	return listing{
		columns: []string{"name", "healthy", "members", "reason"},
		rows: [][]any{
			{"web", 2, []string{"a", "b"}, "ok"},
			{"db", 0, []string{}, "every member of db failed and the ladder of its policy is exhausted: escalated to an operator after 3 attempts"},
		},
	}
}

func render(t *testing.T, f formatter, show bool, l listing) string {
	t.Helper()
	var b bytes.Buffer
	var err error
	if show {
		err = f.show(&b, l)
	} else {
		err = f.list(&b, l)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// A long reason wraps at spaces inside its column and the table keeps its width.
func TestTableWrapsToWidth(t *testing.T) {
	got := render(t, formatter{format: "table", width: 60}, false, sample())
	want := `+------+---------+---------+-------------------------------+
| NAME | HEALTHY | MEMBERS | REASON                        |
+------+---------+---------+-------------------------------+
| web  | 2       | a, b    | ok                            |
| db   | 0       |         | every member of db failed and |
|      |         |         | the ladder of its policy is   |
|      |         |         | exhausted: escalated to an    |
|      |         |         | operator after 3 attempts     |
+------+---------+---------+-------------------------------+
`
	if got != want {
		t.Fatalf("table at 60 columns:\n%s\nwant:\n%s", got, want)
	}
	for _, line := range strings.Split(strings.TrimSpace(got), "\n") {
		if n := utf8.RuneCountInString(line); n > 60 {
			t.Fatalf("line of %d columns, over 60: %q", n, line)
		}
	}
}

// Without --max-width and not on a terminal, a table is 100 columns at most; a
// word longer than its column is cut, and newlines in a cell stay lines.
func TestTableDefaultWidthAndLongWords(t *testing.T) {
	l := listing{columns: []string{"id", "steps"}, rows: [][]any{
		{1, "1. reboot vm-1: done\n2. " + strings.Repeat("x", 150)},
	}}
	got := render(t, formatter{format: "table"}, false, l)
	lines := strings.Split(strings.TrimSpace(got), "\n")
	for _, line := range lines {
		if n := utf8.RuneCountInString(line); n != 100 {
			t.Fatalf("line of %d columns, want 100 (the width when not a terminal): %q", n, line)
		}
	}
	if !strings.Contains(got, "| 1  | 1. reboot vm-1: done ") || !strings.Contains(got, "|    | 2.  ") {
		t.Fatalf("the cell's own lines are not kept:\n%s", got)
	}
}

func TestShowTableYAMLJSONValue(t *testing.T) {
	one := listing{columns: sample().columns, rows: sample().rows[:1]}
	if got, want := render(t, formatter{format: "table"}, true, one), `+---------+-------+
| FIELD   | VALUE |
+---------+-------+
| name    | web   |
| healthy | 2     |
| members | a, b  |
| reason  | ok    |
+---------+-------+
`; got != want {
		t.Fatalf("show table:\n%s\nwant:\n%s", got, want)
	}
	if got, want := render(t, formatter{format: "yaml"}, true, one), "name: web\nhealthy: 2\nmembers:\n  - a\n  - b\nreason: ok\n"; got != want {
		t.Fatalf("show yaml:\n%s\nwant:\n%s", got, want)
	}
	if got, want := render(t, formatter{format: "json"}, true, one), "{\n  \"name\": \"web\",\n  \"healthy\": 2,\n  \"members\": [\n    \"a\",\n    \"b\"\n  ],\n  \"reason\": \"ok\"\n}\n"; got != want {
		t.Fatalf("show json:\n%s\nwant:\n%s", got, want)
	}
	if got, want := render(t, formatter{format: "value"}, true, one), "web\n2\na, b\nok\n"; got != want {
		t.Fatalf("show value:\n%q\nwant:\n%q", got, want)
	}
}

// -c picks columns in the order given, whatever their case, in every format.
func TestColumnSelection(t *testing.T) {
	f := formatter{format: "value", columns: []string{"reason", "NAME"}}
	if got, want := render(t, f, false, listing{columns: sample().columns, rows: sample().rows[:1]}), "ok web\n"; got != want {
		t.Fatalf("-c reason -c NAME -f value: %q, want %q", got, want)
	}
	f.format = "yaml"
	if got, want := render(t, f, false, sample())[:30], "- reason: ok\n  name: web\n- rea"; got != want {
		t.Fatalf("-c reason -c NAME -f yaml starts %q, want %q", got, want)
	}
	f.format = "json"
	if got := render(t, f, false, listing{columns: sample().columns}); got != "[]\n" {
		t.Fatalf("an empty list in JSON: %q, want []", got)
	}
}

func TestUnknownColumnAndFormat(t *testing.T) {
	var b bytes.Buffer
	err := formatter{format: "table", columns: []string{"name", "colour"}}.list(&b, sample())
	if err == nil || err.Error() != "-c colour: no such column; the columns are: name, healthy, members, reason" {
		t.Fatalf("unknown column: %v", err)
	}
	err = formatter{format: "csv"}.show(&b, listing{columns: []string{"a"}, rows: [][]any{{1}}})
	if err == nil || !strings.Contains(err.Error(), "want one of table, json, yaml, value") {
		t.Fatalf("unknown format: %v", err)
	}
	if b.Len() != 0 {
		t.Fatalf("printed something before failing: %q", b.String())
	}
}

func TestCell(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		v    any
		want string
	}{
		{nil, ""}, {"x", "x"}, {42, "42"}, {true, "true"}, {at, "2026-03-01T12:00:00Z"},
		{time.Time{}, ""}, {[]string{"a", "b"}, "a, b"},
	} {
		if got := cell(c.v); got != c.want {
			t.Errorf("cell(%#v) = %q, want %q", c.v, got, c.want)
		}
	}
}
