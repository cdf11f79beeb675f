package model

import (
	"maps"
	"testing"
)

func TestMetadataRoundTrips(t *testing.T) {
	for _, m := range []map[string]string{
		nil, {}, {"vigil:cluster": "web"}, {"a=b": "c\nd", "%x": "=%3D", "": ""},
	} {
		md := MetadataOf(m)
		if got := md.Map(); !maps.Equal(got, m) || (m == nil) != (got == nil) {
			t.Errorf("MetadataOf(%q).Map() = %q", m, got)
		}
	}
	if MetadataOf(map[string]string{"b": "1", "a": "2"}) != MetadataOf(map[string]string{"a": "2", "b": "1"}) {
		t.Error("the same metadata in another order compares unequal")
	}
}
