package main

// format.go prints lists and single objects the way the openstack client does:
// -f table|json|yaml|value, -c COLUMN to pick columns, tables wrapped to a width.
// It knows nothing of Vigil's types: a command turns what the API answered into a
// listing (named columns, rows of values) and hands it here.

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"golang.org/x/term"
	"gopkg.in/yaml.v3"
)

// Formats are the values -f takes.
var formats = []string{"table", "json", "yaml", "value"}

// defaultWidth is the table width when the output is not a terminal.
const defaultWidth = 100

// listing is what a list or show command prints: named columns and rows of values.
// A value is kept as the API gave it (a number stays a number in JSON and YAML);
// cell turns it into text for a table or -f value.
type listing struct {
	columns []string
	rows    [][]any
}

// formatter holds the output flags of a list or show command.
type formatter struct {
	format  string   // table, json, yaml or value
	columns []string // -c, in the order given; empty: every column
	width   int      // table width; 0: the terminal's, or defaultWidth
}

// checkFormat says whether f is a format -f takes.
func checkFormat(f string) error {
	if slices.Contains(formats, f) {
		return nil
	}
	return fmt.Errorf("-f/--format: want one of %s, got %q", strings.Join(formats, ", "), f)
}

// list prints many rows: a table with a header, a JSON or YAML array of objects,
// or the values of each row on one line separated by spaces.
func (f formatter) list(w io.Writer, l listing) error {
	l, err := l.only(f.columns)
	if err != nil {
		return err
	}
	switch f.format {
	case "table", "":
		renderTable(w, upper(l.columns), cells(l.rows), f.tableWidth(w))
		return nil
	case "json":
		return writeJSON(w, l.objects())
	case "yaml":
		return writeYAML(w, l.objects())
	case "value":
		for _, row := range cells(l.rows) {
			fmt.Fprintln(w, strings.Join(row, " "))
		}
		return nil
	}
	return checkFormat(f.format)
}

// show prints one row: a FIELD/VALUE table, a JSON or YAML object, or each value
// on its own line.
func (f formatter) show(w io.Writer, l listing) error {
	if len(l.rows) != 1 {
		return fmt.Errorf("show: want one object, got %d", len(l.rows))
	}
	l, err := l.only(f.columns)
	if err != nil {
		return err
	}
	switch f.format {
	case "table", "":
		var rows [][]string
		for i, c := range l.columns {
			rows = append(rows, []string{c, cell(l.rows[0][i])})
		}
		renderTable(w, []string{"FIELD", "VALUE"}, rows, f.tableWidth(w))
		return nil
	case "json":
		return writeJSON(w, l.objects()[0])
	case "yaml":
		return writeYAML(w, l.objects()[0])
	case "value":
		for _, v := range l.rows[0] {
			fmt.Fprintln(w, cell(v))
		}
		return nil
	}
	return checkFormat(f.format)
}

// only keeps the named columns, in the order named; a name matches whatever its case.
func (l listing) only(names []string) (listing, error) {
	if len(names) == 0 {
		return l, nil
	}
	var idx []int
	for _, n := range names {
		i := slices.IndexFunc(l.columns, func(c string) bool { return strings.EqualFold(c, n) })
		if i < 0 {
			return listing{}, fmt.Errorf("-c %s: no such column; the columns are: %s", n, strings.Join(l.columns, ", "))
		}
		idx = append(idx, i)
	}
	out := listing{}
	for _, i := range idx {
		out.columns = append(out.columns, l.columns[i])
	}
	for _, row := range l.rows {
		var r []any
		for _, i := range idx {
			r = append(r, row[i])
		}
		out.rows = append(out.rows, r)
	}
	return out, nil
}

// cell is how a value reads in a table or with -f value. Every printed string
// passes here, so this is where it is made safe for a terminal.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case time.Time:
		if x.IsZero() {
			return ""
		}
		return x.Format(time.RFC3339)
	case []string:
		return strings.Join(x, ", ")
	case fmt.Stringer:
		return x.String()
	}
	return fmt.Sprint(v)
}

func cells(rows [][]any) [][]string {
	out := make([][]string, len(rows))
	for i, row := range rows {
		for _, v := range row {
			out[i] = append(out[i], cell(v))
		}
	}
	return out
}

func upper(names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = strings.ToUpper(n)
	}
	return out
}

// object is one row keyed by column name, in column order (JSON and YAML keep it).
type object struct {
	keys   []string
	values []any
}

func (l listing) objects() []object {
	out := make([]object, 0, len(l.rows))
	for _, row := range l.rows {
		out = append(out, object{keys: l.columns, values: row})
	}
	return out
}

func (o object) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range o.keys {
		if i > 0 {
			b.WriteByte(',')
		}
		kb, _ := json.Marshal(k)
		vb, err := json.Marshal(o.values[i])
		if err != nil {
			return nil, fmt.Errorf("column %s: %w", k, err)
		}
		b.Write(kb)
		b.WriteByte(':')
		b.Write(vb)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

func (o object) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for i, k := range o.keys {
		var v yaml.Node
		if err := v.Encode(o.values[i]); err != nil {
			return nil, fmt.Errorf("column %s: %w", k, err)
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: k}, &v)
	}
	return n, nil
}

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func writeYAML(w io.Writer, v any) error {
	enc := yaml.NewEncoder(w)
	enc.SetIndent(2)
	if err := enc.Encode(v); err != nil {
		return err
	}
	return enc.Close()
}

// tableWidth is --max-width when given, else the terminal's width when w is
// one, else defaultWidth (a pipe or a file: stable output).
func (f formatter) tableWidth(w io.Writer) int {
	if f.width > 0 {
		return f.width
	}
	if file, ok := w.(*os.File); ok && term.IsTerminal(int(file.Fd())) {
		if cols, _, err := term.GetSize(int(file.Fd())); err == nil && cols > 0 {
			return cols
		}
	}
	return defaultWidth
}

// minColumn is the narrowest a column is shrunk to when the table is too wide.
const minColumn = 8

// renderTable draws a bordered table no wider than width: the widest columns are
// narrowed first, and a cell longer than its column wraps at spaces (a word longer
// than the column is cut). Lines inside a cell stay lines.
func renderTable(w io.Writer, header []string, rows [][]string, width int) {
	widths := naturalWidths(header, rows)
	fitWidths(widths, width)
	rule := tableRule(widths)
	fmt.Fprintln(w, rule)
	writeRow(w, header, widths)
	fmt.Fprintln(w, rule)
	for _, row := range rows {
		writeRow(w, row, widths)
	}
	if len(rows) > 0 {
		fmt.Fprintln(w, rule)
	}
}

func naturalWidths(header []string, rows [][]string) []int {
	widths := make([]int, len(header))
	for _, row := range append([][]string{header}, rows...) {
		for i, c := range row {
			for line := range strings.SplitSeq(c, "\n") {
				widths[i] = max(widths[i], utf8.RuneCountInString(line))
			}
		}
	}
	return widths
}

// fitWidths narrows the widest column, one character at a time, until the table
// (cells, their padding and borders) fits in width or every column is at minColumn.
func fitWidths(widths []int, width int) {
	borders := 3*len(widths) + 1
	for {
		total, widest := borders, -1
		for i, cw := range widths {
			total += cw
			if cw > minColumn && (widest < 0 || cw > widths[widest]) {
				widest = i
			}
		}
		if total <= width || widest < 0 {
			return
		}
		widths[widest]--
	}
}

func tableRule(widths []int) string {
	var b strings.Builder
	b.WriteByte('+')
	for _, cw := range widths {
		b.WriteString(strings.Repeat("-", cw+2))
		b.WriteByte('+')
	}
	return b.String()
}

// writeRow writes one table row, as many lines as its tallest wrapped cell.
func writeRow(w io.Writer, row []string, widths []int) {
	wrapped := make([][]string, len(widths))
	height := 1
	for i := range widths {
		var c string
		if i < len(row) {
			c = row[i]
		}
		wrapped[i] = wrap(c, widths[i])
		height = max(height, len(wrapped[i]))
	}
	for line := range height {
		var b strings.Builder
		b.WriteByte('|')
		for i, cw := range widths {
			var s string
			if line < len(wrapped[i]) {
				s = wrapped[i][line]
			}
			b.WriteByte(' ')
			b.WriteString(s)
			b.WriteString(strings.Repeat(" ", cw-utf8.RuneCountInString(s)))
			b.WriteString(" |")
		}
		fmt.Fprintln(w, b.String())
	}
}

// wrap breaks s into lines of at most width runes: at its own newlines, then at
// spaces, and inside a word only when the word alone is longer than width.
func wrap(s string, width int) []string {
	var out []string
	for para := range strings.SplitSeq(s, "\n") {
		line := ""
		for _, word := range strings.Fields(para) {
			for utf8.RuneCountInString(word) > width {
				if line != "" {
					out = append(out, line)
					line = ""
				}
				r := []rune(word)
				out = append(out, string(r[:width]))
				word = string(r[width:])
			}
			switch {
			case line == "":
				line = word
			case utf8.RuneCountInString(line)+1+utf8.RuneCountInString(word) <= width:
				line += " " + word
			default:
				out = append(out, line)
				line = word
			}
		}
		out = append(out, line)
	}
	return out
}
