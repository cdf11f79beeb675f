package api_test

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-ha/vigil/api"
	"github.com/vigil-ha/vigil/model"
)

func TestPatchClusterMembers(t *testing.T) {
	r := newRig(t)
	if code, body := r.call(http.MethodPost, "/v1/clusters", `{"name":"web","members":["`+r.ids[0]+`","`+r.ids[1]+`"]}`); code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, body)
	}
	code, body := r.call(http.MethodPatch, "/v1/clusters/web", `{"add":["`+r.ids[2]+`"],"remove":["`+r.ids[0]+`"]}`)
	var st model.ClusterStatus
	if code != http.StatusOK || json.Unmarshal(body, &st) != nil || !slices.Equal(st.Members, []string{r.ids[1], r.ids[2]}) || st.Desired != 2 {
		t.Fatalf("patch: %d %s, want members [%s %s]", code, body, r.ids[1], r.ids[2])
	}
	for _, tc := range []struct{ body, field string }{
		{`{"add":["nope"]}`, "add[0]"},
		{`{"remove":["` + r.ids[5] + `"]}`, "remove[0]"},
		{`{"add":"x"}`, "add"},
		{`{"members":["x"]}`, "members"},
	} {
		code, body := r.call(http.MethodPatch, "/v1/clusters/web", tc.body)
		var e api.Error
		if code != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Field != tc.field {
			t.Errorf("PATCH %s: %d %s, want 400 on %s", tc.body, code, body, tc.field)
		}
	}
	if code, _ := r.call(http.MethodPatch, "/v1/clusters/none", `{"add":["`+r.ids[3]+`"]}`); code != http.StatusNotFound {
		t.Errorf("PATCH of a missing cluster: %d, want 404", code)
	}

	r.cloud.CreateStack("st1", []string{model.TagProtect}, r.ids[4], r.ids[5])
	code, body = r.call(http.MethodPost, "/v1/clusters", `{"name":"app","source":{"kind":"heat-stack","ref":"st1"}}`)
	if code != http.StatusCreated || json.Unmarshal(body, &st) != nil || len(st.Members) != 2 || st.Source == nil || st.Source.Kind != model.SourceHeatStack {
		t.Fatalf("create from a stack: %d %s", code, body)
	}
	if !strings.Contains(string(body), "never deletes") {
		t.Errorf("the stack cluster does not say Vigil keeps its servers' identity: %s", body)
	}
	code, body = r.call(http.MethodPatch, "/v1/clusters/app", `{"add":["`+r.ids[3]+`"]}`)
	if code != http.StatusConflict || !strings.Contains(string(body), "follow the source") {
		t.Fatalf("PATCH of a stack's cluster: %d %s, want 409 saying the members follow the source", code, body)
	}
	code, body = r.call(http.MethodPost, "/v1/clusters", `{"name":"x","source":{"kind":"heat-stack","ref":"st1"},"members":["`+r.ids[3]+`"]}`)
	var e api.Error
	if code != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Field != "members" {
		t.Fatalf("a stack cluster with members: %d %s, want 400 on members", code, body)
	}
	code, body = r.call(http.MethodPost, "/v1/clusters", `{"name":"y","source":{"kind":"heat","ref":"st1"}}`)
	if code != http.StatusBadRequest || json.Unmarshal(body, &e) != nil || e.Field != "source.kind" {
		t.Fatalf("an unknown source kind: %d %s, want 400 on source.kind", code, body)
	}
}
