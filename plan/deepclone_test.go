package plan

import (
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/vigil-ha/vigil/model"
)

// deepClone copies v so that the copy shares no map, slice or pointer with it: a
// Plan that writes anywhere inside its Input (a policy in Policies, a key of
// LastClosed, an element of a cluster's Members) leaves the clone as it was, and
// reflect.DeepEqual(clone, in) then tells the two apart. maps.Clone and
// slices.Clone copy one level only.
func deepClone[T any](v T) T {
	return deepCopy(reflect.ValueOf(&v).Elem()).Interface().(T)
}

func deepCopy(v reflect.Value) reflect.Value {
	switch v.Kind() {
	case reflect.Map:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeMapWithSize(v.Type(), v.Len())
		for it := v.MapRange(); it.Next(); {
			c.SetMapIndex(deepCopy(it.Key()), deepCopy(it.Value()))
		}
		return c
	case reflect.Slice:
		if v.IsNil() {
			return v
		}
		c := reflect.MakeSlice(v.Type(), v.Len(), v.Len())
		for i := range v.Len() {
			c.Index(i).Set(deepCopy(v.Index(i)))
		}
		return c
	case reflect.Array:
		c := reflect.New(v.Type()).Elem()
		for i := range v.Len() {
			c.Index(i).Set(deepCopy(v.Index(i)))
		}
		return c
	case reflect.Pointer:
		if v.IsNil() {
			return v
		}
		c := reflect.New(v.Type().Elem())
		c.Elem().Set(deepCopy(v.Elem()))
		return c
	case reflect.Interface:
		if v.IsNil() {
			return v
		}
		c := reflect.New(v.Type()).Elem()
		c.Set(deepCopy(v.Elem()))
		return c
	case reflect.Struct:
		// Copy the whole value first (unexported fields, such as time.Time's, come
		// along as they are: they are values or immutable), then replace each exported
		// field by its deep copy.
		c := reflect.New(v.Type()).Elem()
		c.Set(v)
		for i := range v.NumField() {
			if f := c.Field(i); f.CanSet() {
				f.Set(deepCopy(v.Field(i)))
			}
		}
		return c
	}
	return v
}

// changedFields names the fields of Input that differ, with both values.
func changedFields(before, after Input) string {
	b, a := reflect.ValueOf(before), reflect.ValueOf(after)
	var out []string
	for i := range b.NumField() {
		if !reflect.DeepEqual(b.Field(i).Interface(), a.Field(i).Interface()) {
			out = append(out, fmt.Sprintf("%s: before %+v, after %+v", b.Type().Field(i).Name, b.Field(i), a.Field(i)))
		}
	}
	return strings.Join(out, "; ")
}

// TestDeepCloneSharesNothing breaks the clone on purpose, one nested place at a time,
// and checks that the original no longer equals it: a clone that shared any of these
// would let the property test's "Plan modified its input" check pass on a Plan that
// writes there.
func TestDeepCloneSharesNothing(t *testing.T) {
	subj := model.Subject{Kind: model.KindServer, ID: "a"}
	build := func() Input {
		pol := model.DefaultPolicy()
		return Input{Now: t0,
			Hosts:      map[string]model.Host{"h1": {Name: "h1"}},
			Servers:    map[string]model.Server{"a": {ID: "a", Host: "h1"}},
			Verdicts:   map[model.Subject]model.Verdict{subj: {Subject: subj, Evidence: []string{"ERROR"}}},
			Clusters:   []model.Cluster{{Name: "c", Members: []string{"a"}, Desired: 1, Policy: "default"}},
			Policies:   map[string]model.Policy{"default": pol},
			Open:       []model.Incident{{ID: 1, Subject: subj, Evidence: []string{"e"}, Steps: []model.Step{{ID: 1, Action: model.ActReboot}}}},
			LastClosed: map[model.Subject]model.Incident{subj: {ID: 0, Evidence: []string{"old"}, Steps: []model.Step{{ID: 9}}}},
			CanFence:   map[string]bool{"h1": true},
		}
	}
	edits := map[string]func(*Input){
		"a policy's field":              func(in *Input) { p := in.Policies["default"]; p.MaxAttempts++; in.Policies["default"] = p },
		"a policy's ladder element":     func(in *Input) { in.Policies["default"].Ladder[0] = model.ActEvacuate },
		"a key added to LastClosed":     func(in *Input) { in.LastClosed[model.Subject{Kind: model.KindHost, ID: "h9"}] = model.Incident{} },
		"a key deleted from LastClosed": func(in *Input) { delete(in.LastClosed, subj) },
		"a closed incident's step":      func(in *Input) { in.LastClosed[subj].Steps[0].ID = 10 },
		"a cluster's member":            func(in *Input) { in.Clusters[0].Members[0] = "b" },
		"a verdict's evidence":          func(in *Input) { in.Verdicts[subj].Evidence[0] = "x" },
		"an open incident's evidence":   func(in *Input) { in.Open[0].Evidence[0] = "x" },
		"an open incident's step":       func(in *Input) { in.Open[0].Steps[0].State = model.StepFailed },
		"a host":                        func(in *Input) { in.Hosts["h1"] = model.Host{Name: "h1", ForcedDown: true} },
		"a server":                      func(in *Input) { in.Servers["a"] = model.Server{ID: "a", Host: "h2"} },
		"CanFence":                      func(in *Input) { in.CanFence["h1"] = false },
		"the clock":                     func(in *Input) { in.Now = in.Now.Add(time.Second) },
	}
	for name, edit := range edits {
		in := build()
		c := deepClone(in)
		if !reflect.DeepEqual(c, in) {
			t.Fatalf("%s: the clone differs from its original before any edit", name)
		}
		edit(&in)
		if reflect.DeepEqual(c, in) {
			t.Errorf("an edit of %s reached the clone: it is shared, not copied", name)
		}
	}
}
