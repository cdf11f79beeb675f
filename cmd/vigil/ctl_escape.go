package main

import (
	"net/url"
	"reflect"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// seg is one path segment of an API URL: escaped, so a name with '/', '?' or '#'
// stays one segment of the route it was given to (`ctl delete-cluster 'q?x=1'`
// must not delete cluster q).
func seg(s string) string { return url.PathEscape(s) }

// printable escapes what a terminal would act on in a string from the server (a
// newline, a tab, an escape sequence, an invalid byte) as Go writes it in a
// quoted string: data stored before names were checked, or named by the cloud,
// cannot repaint the operator's terminal or forge a table row.
func printable(s string) string {
	if isPrintable(s) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		switch {
		case r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD"):
			b.WriteString(`\x` + strconv.FormatUint(uint64(s[i]), 16))
		case unicode.IsPrint(r):
			b.WriteRune(r)
		default:
			q := strconv.QuoteRuneToASCII(r)
			b.WriteString(q[1 : len(q)-1])
		}
	}
	return b.String()
}

func isPrintable(s string) bool {
	for i, r := range s {
		if !unicode.IsPrint(r) || r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD") {
			return false
		}
	}
	return true
}

// forTerminal says whether the output is text a terminal shows as is (table,
// value), not JSON or YAML, which quote control characters themselves.
func (c *ctl) forTerminal() bool {
	f, err := c.formatter()
	return err != nil || (f.format != "json" && f.format != "yaml")
}

// escapeStrings makes every string reachable from v (a pointer to what an answer
// was decoded into) printable, for table output; -o json prints the answer as
// JSON, which escapes them itself.
func escapeStrings(v any) {
	escapeValue(reflect.ValueOf(v))
}

func escapeValue(v reflect.Value) {
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if !v.IsNil() {
			if v.Kind() == reflect.Interface {
				escapeInterface(v)
				return
			}
			escapeValue(v.Elem())
		}
	case reflect.String:
		if v.CanSet() {
			v.SetString(printable(v.String()))
		}
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				escapeValue(v.Field(i))
			}
		}
	case reflect.Slice, reflect.Array:
		for i := range v.Len() {
			escapeValue(v.Index(i))
		}
	case reflect.Map:
		escapeMap(v)
	}
}

// escapeMap rebuilds a map: its keys and values are not addressable.
func escapeMap(v reflect.Value) {
	if v.IsNil() || !v.CanSet() {
		return
	}
	out := reflect.MakeMapWithSize(v.Type(), v.Len())
	for it := v.MapRange(); it.Next(); {
		k := reflect.New(v.Type().Key()).Elem()
		k.Set(it.Key())
		escapeValue(k)
		e := reflect.New(v.Type().Elem()).Elem()
		e.Set(it.Value())
		escapeValue(e)
		out.SetMapIndex(k, e)
	}
	v.Set(out)
}

// escapeInterface escapes a copy of an interface's value and puts it back.
func escapeInterface(v reflect.Value) {
	if !v.CanSet() {
		return
	}
	inner := v.Elem()
	c := reflect.New(inner.Type()).Elem()
	c.Set(inner)
	escapeValue(c)
	v.Set(c)
}
