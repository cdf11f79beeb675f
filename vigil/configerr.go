package vigil

import (
	"cmp"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// ConfigError is one mistake in a policy file, in the one style every section
// uses: FILE:LINE: field.path: what is wrong: what is allowed.
type ConfigError struct {
	File string
	Line int    // 1-based; the line of the field (or of its value) that is wrong
	Path string // the field's whole path (policies[0].step_timeout); "" for the file itself
	Msg  string // what is wrong: what is allowed
}

func (e *ConfigError) Error() string {
	if e.Path == "" {
		return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg)
	}
	return fmt.Sprintf("%s:%d: %s: %s", e.File, e.Line, e.Path, e.Msg)
}

// ConfigErrors are all the mistakes found in one policy file, by line.
type ConfigErrors []*ConfigError

func (es ConfigErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// checker walks a policy file's YAML tree by hand (not by decoding into structs)
// so that every mistake is found with its line and its field's path, and as many
// independent mistakes as there are, not only the first.
type checker struct {
	file    string
	errs    ConfigErrors
	aliases int // alias dereferences so far: a bound against alias bombs
}

// maxAliases bounds how many times the walk follows a YAML alias (*name): a file
// of nested aliases would otherwise expand exponentially.
const maxAliases = 1000

func (c *checker) at(line int, path, format string, args ...any) {
	c.errs = append(c.errs, &ConfigError{File: c.file, Line: max(line, 1), Path: path, Msg: fmt.Sprintf(format, args...)})
}

func (c *checker) bad(n *yaml.Node, path, format string, args ...any) {
	line := 1
	if n != nil {
		line = n.Line
	}
	c.at(line, path, format, args...)
}

// sorted returns the errors by line (stable: the walk's order within a line).
func (c *checker) sorted() ConfigErrors {
	slices.SortStableFunc(c.errs, func(a, b *ConfigError) int { return cmp.Compare(a.Line, b.Line) })
	return c.errs
}

// deref follows an alias; nil when the file uses too many of them.
func (c *checker) deref(n *yaml.Node, path string) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		c.aliases++
		if c.aliases == maxAliases+1 {
			c.bad(n, path, "too many aliases (more than %d): write the values out, or share fewer of them", maxAliases)
		}
		if c.aliases > maxAliases {
			return nil
		}
		n = n.Alias
	}
	return n
}

// rawValue is a scalar's text as the file gives it.
func rawValue(n *yaml.Node) string {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	if n == nil {
		return ""
	}
	return n.Value
}

// isMapping reports whether n is a mapping, through its aliases.
func isMapping(n *yaml.Node) bool {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 100; i++ {
		n = n.Alias
	}
	return n != nil && n.Kind == yaml.MappingNode
}

func isNull(n *yaml.Node) bool {
	return n.Kind == yaml.ScalarNode && n.Tag == "!!null"
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func index(path string, i int) string {
	return fmt.Sprintf("%s[%d]", path, i)
}

// entry is one key of a mapping, with its nodes.
type entry struct {
	Key        string
	KeyNode, V *yaml.Node
	Path       string
}

// mapping returns the keys of a mapping node in order; a key given twice, one not
// in known (when known is not nil) and a value that is not a mapping are errors.
// A null value (`limits:` with nothing after it) is an empty mapping.
func (c *checker) mapping(n *yaml.Node, path, what string, known []string) []entry {
	n = c.deref(n, path)
	if n == nil || isNull(n) {
		return nil
	}
	if n.Kind != yaml.MappingNode {
		c.bad(n, path, "%s: must be %s (field: value lines)%s", kindOf(n), what, knownList(known))
		return nil
	}
	var out []entry
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k = c.deref(k, path); k == nil {
			return out
		}
		if k.Kind != yaml.ScalarNode {
			c.bad(k, path, "a %s as a field name: field names are plain words%s", kindOf(k), knownList(known))
			continue
		}
		p := join(path, k.Value)
		if line, dup := first[k.Value]; dup {
			c.bad(k, p, "given twice (first at line %d): give each field once", line)
			continue
		}
		first[k.Value] = k.Line
		if known != nil && !slices.Contains(known, k.Value) {
			c.bad(k, p, "unknown field%s: known fields are %s", didYouMean(k.Value, known), strings.Join(known, ", "))
			continue
		}
		out = append(out, entry{Key: k.Value, KeyNode: k, V: v, Path: p})
	}
	return out
}

// list returns the items of a sequence node (null: none).
func (c *checker) list(n *yaml.Node, path, what string) []*yaml.Node {
	n = c.deref(n, path)
	if n == nil || isNull(n) {
		return nil
	}
	if n.Kind != yaml.SequenceNode {
		c.bad(n, path, "%s: must be a list of %s (- item lines, or [a, b])", kindOf(n), what)
		return nil
	}
	return n.Content
}

// scalar returns a scalar node's value, or false after reporting what it is instead.
func (c *checker) scalar(n *yaml.Node, path, what string) (*yaml.Node, bool) {
	n = c.deref(n, path)
	if n == nil {
		return nil, false
	}
	if n.Kind != yaml.ScalarNode || isNull(n) {
		c.bad(n, path, "%s: must be %s", kindOf(n), what)
		return nil, false
	}
	return n, true
}

func (c *checker) str(n *yaml.Node, path, what string) (string, bool) {
	s, ok := c.scalar(n, path, what)
	if !ok {
		return "", false
	}
	return s.Value, true
}

// duration reads a Go duration (60s, 5m, 1h30m). A bare number is refused: 60 could
// mean seconds or minutes, and a wrong guess is a recovery that waits an hour.
func (c *checker) duration(n *yaml.Node, path string) (time.Duration, bool) {
	s, ok := c.scalar(n, path, "a duration such as 60s, 5m or 1h30m")
	if !ok {
		return 0, false
	}
	d, err := time.ParseDuration(s.Value)
	if err != nil {
		if _, num := strconv.ParseFloat(s.Value, 64); num == nil {
			c.bad(s, path, "%s has no unit: give a duration with one, such as %ss or %sm", s.Value, s.Value, s.Value)
		} else {
			c.bad(s, path, "%q is not a duration: give one such as 60s, 5m or 1h30m", s.Value)
		}
		return 0, false
	}
	return d, true
}

// positive reads a duration that must be above zero.
func (c *checker) positive(n *yaml.Node, path, example string) (time.Duration, bool) {
	d, ok := c.duration(n, path)
	if !ok {
		return 0, false
	}
	if d <= 0 {
		c.bad(n, path, "%s is not positive: give a duration above zero, such as %s", rawValue(n), example)
		return 0, false
	}
	return d, true
}

func (c *checker) integer(n *yaml.Node, path string) (int, bool) {
	s, ok := c.scalar(n, path, "a whole number")
	if !ok {
		return 0, false
	}
	v, err := strconv.Atoi(s.Value)
	if err != nil || s.Tag != "!!int" {
		c.bad(s, path, "%q is not a whole number: give one such as 3", s.Value)
		return 0, false
	}
	return v, true
}

// between reads a whole number in [lo, hi].
func (c *checker) between(n *yaml.Node, path string, lo, hi int, why string) (int, bool) {
	v, ok := c.integer(n, path)
	if !ok {
		return 0, false
	}
	if v < lo || v > hi {
		c.bad(n, path, "%d is out of range: %s", v, why)
		return 0, false
	}
	return v, true
}

func (c *checker) boolean(n *yaml.Node, path string) (bool, bool) {
	s, ok := c.scalar(n, path, "true or false")
	if !ok {
		return false, false
	}
	var b bool
	if s.Tag != "!!bool" || s.Decode(&b) != nil {
		c.bad(s, path, "%q is not true or false: give true or false", s.Value)
		return false, false
	}
	return b, true
}

func (c *checker) number(n *yaml.Node, path string) (float64, bool) {
	s, ok := c.scalar(n, path, "a number")
	if !ok {
		return 0, false
	}
	v, err := strconv.ParseFloat(s.Value, 64)
	if err != nil || (s.Tag != "!!int" && s.Tag != "!!float") {
		c.bad(s, path, "%q is not a number: give one such as 0.5", s.Value)
		return 0, false
	}
	return v, true
}

func kindOf(n *yaml.Node) string {
	switch {
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case isNull(n):
		return "empty"
	case n.Kind == yaml.ScalarNode:
		return fmt.Sprintf("%q", n.Value)
	}
	return "this"
}

func knownList(known []string) string {
	if known == nil {
		return ""
	}
	return ": known fields are " + strings.Join(known, ", ")
}

// didYouMean names the known word a typo is closest to, if one is close.
func didYouMean(word string, known []string) string {
	best, bestD := "", 3
	for _, k := range known {
		if d := editDistance(word, k); d < bestD {
			best, bestD = k, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %s?)", best)
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntax turns a YAML syntax error into the file's style: its line, and what the
// YAML parser says (with a hint for the usual cause of each).
func (c *checker) syntax(err error, data []byte) {
	msg := err.Error()
	line := 1
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	tab := firstTabIndent(data)
	switch {
	case tab > 0 && (strings.Contains(msg, "tab") || strings.Contains(msg, "cannot start any token")):
		// The parser names the line it was in when it met the tab; the tab's own is clearer.
		line, msg = tab, "a tab in the indentation: indent with spaces, never tabs"
	case strings.Contains(msg, "did not find expected key"), strings.Contains(msg, "mapping values are not allowed"),
		strings.Contains(msg, "did not find expected '-'"):
		msg += ": check the indentation (spaces, the same for fields of one mapping) and quote values that contain ': '"
	default:
		msg += ": the file is not valid YAML"
	}
	c.at(line, "", "%s", msg)
}

// firstTabIndent is the first line (1-based) with a tab in its indentation; 0: none.
func firstTabIndent(data []byte) int {
	for i, l := range strings.Split(string(data), "\n") {
		indent := l[:len(l)-len(strings.TrimLeft(l, " \t"))]
		if strings.Contains(indent, "\t") {
			return i + 1
		}
	}
	return 0
}
