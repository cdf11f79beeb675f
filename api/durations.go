package api

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"time"
)

// withDurations returns v for an answer with every time.Duration written as the
// policy file writes it ("60s", "1m30s") instead of encoding/json's nanoseconds
// (10000000000): the answers that show configuration (/v1/policies, /v1/store,
// /v1/leadership) read as the file does. The model's own JSON (the store's, the
// agents') is left alone. Field names, omitempty and omitzero follow the json tags.
func withDurations(v any) any {
	return present(reflect.ValueOf(v))
}

var (
	durationType  = reflect.TypeFor[time.Duration]()
	marshalerType = reflect.TypeFor[json.Marshaler]()
)

func present(v reflect.Value) any {
	if !v.IsValid() {
		return nil
	}
	t := v.Type()
	if !hasDuration(t, map[reflect.Type]bool{}) {
		return v.Interface()
	}
	switch t.Kind() {
	case reflect.Int64: // time.Duration (hasDuration: nothing else gets here)
		return fileDuration(time.Duration(v.Int()))
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			return nil
		}
		return present(v.Elem())
	case reflect.Slice, reflect.Array:
		if t.Kind() == reflect.Slice && v.IsNil() {
			return nil
		}
		out := make([]any, v.Len())
		for i := range out {
			out[i] = present(v.Index(i))
		}
		return out
	case reflect.Map:
		if v.IsNil() {
			return nil
		}
		out := make(map[string]any, v.Len())
		for it := v.MapRange(); it.Next(); {
			out[it.Key().String()] = present(it.Value())
		}
		return out
	case reflect.Struct:
		var obj jsonObject
		presentFields(v, &obj)
		return obj
	}
	return v.Interface()
}

// hasDuration reports whether a value of t may hold a time.Duration that
// encoding/json would write as a number (a type with its own MarshalJSON keeps it).
func hasDuration(t reflect.Type, seen map[reflect.Type]bool) bool {
	if t == durationType {
		return true
	}
	if seen[t] || t.Implements(marshalerType) || reflect.PointerTo(t).Implements(marshalerType) {
		return false
	}
	seen[t] = true
	switch t.Kind() {
	case reflect.Pointer, reflect.Slice, reflect.Array:
		return hasDuration(t.Elem(), seen)
	case reflect.Map:
		return t.Key().Kind() == reflect.String && hasDuration(t.Elem(), seen)
	case reflect.Struct:
		for i := range t.NumField() {
			if f := t.Field(i); f.IsExported() && hasDuration(f.Type, seen) {
				return true
			}
		}
	}
	return false
}

// presentFields adds a struct's fields to obj as encoding/json would name them;
// an untagged embedded struct's fields are inlined.
func presentFields(v reflect.Value, obj *jsonObject) {
	t := v.Type()
	for i := range t.NumField() {
		f := t.Field(i)
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if tag == "-" || !f.IsExported() && !f.Anonymous {
			continue
		}
		fv := v.Field(i)
		if f.Anonymous && name == "" {
			if fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					continue
				}
				fv = fv.Elem()
			}
			if fv.Kind() == reflect.Struct {
				presentFields(fv, obj)
				continue
			}
		}
		if !f.IsExported() {
			continue
		}
		if name == "" {
			name = f.Name
		}
		if omitted(fv, opts) {
			continue
		}
		*obj = append(*obj, member{name, present(fv)})
	}
}

func omitted(v reflect.Value, opts string) bool {
	for o := range strings.SplitSeq(opts, ",") {
		switch o {
		case "omitzero":
			if z, ok := v.Interface().(interface{ IsZero() bool }); ok {
				if z.IsZero() {
					return true
				}
			} else if v.IsZero() {
				return true
			}
		case "omitempty":
			switch v.Kind() {
			case reflect.Slice, reflect.Map, reflect.Array, reflect.String:
				if v.Len() == 0 {
					return true
				}
			case reflect.Pointer, reflect.Interface:
				if v.IsNil() {
					return true
				}
			default:
				if v.IsZero() && v.Kind() != reflect.Struct {
					return true
				}
			}
		}
	}
	return false
}

// jsonObject is a JSON object that keeps its members in the struct's order.
type jsonObject []member

type member struct {
	name  string
	value any
}

func (o jsonObject) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, m := range o {
		if i > 0 {
			b.WriteByte(',')
		}
		k, _ := json.Marshal(m.name)
		b.Write(k)
		b.WriteByte(':')
		val, err := json.Marshal(m.value)
		if err != nil {
			return nil, err
		}
		b.Write(val)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// fileDuration writes d as a policy file would: Go's form without its zero
// units ("1m", "1m30s", "1h", "1.5s"), which time.ParseDuration reads back.
func fileDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
