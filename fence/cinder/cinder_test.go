package cinder

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/gophercloud/gophercloud/v2"

	"github.com/vigil-ha/vigil/cloud"
)

const (
	adminToken   = "gAAAA-admin-token-never-shown"
	serviceToken = "gAAAA-service-token-never-shown"
	project      = "0123456789abcdef"
	hint         = "cloud.service_cloud in the policy file (or --service-cloud)"
)

// fakeCinder answers as cinder-api does: GET /v3/{project}/volumes/detail (with
// all_tenants=1 for an admin to see every project's volumes) lists volumes with
// their attachments (attachment_id, server_id, host_name); DELETE
// /v3/{project}/attachments/{id} (API 3.27+) deletes one, but answers 409
// ConflictNovaUsingAttachment while Nova uses it unless X-Service-Token is sent.
type fakeCinder struct {
	mu          sync.Mutex
	t           *testing.T
	attachments map[string][3]string // attachment -> volume, server, host
	deletes     []string
	// refuse: 409 even with the service token (the user lacks the service role).
	refuse bool
	// gone: the attachment was deleted already (Nova's own clean-up): 404.
	gone string
	// down: every call answers 503.
	down bool
}

func newFakeCinder(t *testing.T, service bool) (*fakeCinder, *Volumes) {
	f := &fakeCinder{t: t, attachments: map[string][3]string{
		"att-1": {"vol-1", "srv-1", "fake-compute-3"},
		"att-2": {"vol-2", "srv-1", "fake-compute-3"},
		"att-3": {"vol-3", "srv-1", "fake-compute-1"}, // another host: not the old copy's
		"att-4": {"vol-4", "srv-2", "fake-compute-3"}, // another server
	}}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	base := srv.URL + "/v3/" + project + "/"
	c := &gophercloud.ServiceClient{ProviderClient: &gophercloud.ProviderClient{TokenID: adminToken}, Endpoint: base, ResourceBase: base}
	var svc *gophercloud.ProviderClient
	if service {
		svc = &gophercloud.ProviderClient{TokenID: serviceToken}
	}
	return f, New(c, svc, hint)
}

func (f *fakeCinder) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	if r.Header.Get("X-Auth-Token") != adminToken {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	if f.down {
		w.WriteHeader(http.StatusServiceUnavailable)
		return
	}
	prefix := "/v3/" + project + "/"
	switch {
	case r.Method == http.MethodGet && r.URL.Path == prefix+"volumes/detail":
		if r.URL.Query().Get("all_tenants") != "1" {
			f.t.Errorf("volumes listed without all_tenants=1: %s (an admin sees only its own project's volumes)", r.URL)
		}
		vols := map[string][]map[string]string{}
		for _, att := range slices.Sorted(keys(f.attachments)) {
			a := f.attachments[att]
			vols[a[0]] = append(vols[a[0]], map[string]string{"id": a[0], "attachment_id": att, "volume_id": a[0], "server_id": a[1], "host_name": a[2], "device": "/dev/vdb"})
		}
		var out []map[string]any
		for _, v := range slices.Sorted(keys(vols)) {
			out = append(out, map[string]any{"id": v, "status": "in-use", "attachments": vols[v]})
		}
		out = append(out, map[string]any{"id": "vol-free", "status": "available", "attachments": []any{}})
		_ = json.NewEncoder(w).Encode(map[string]any{"volumes": out})
	case r.Method == http.MethodDelete && strings.HasPrefix(r.URL.Path, prefix+"attachments/"):
		id := strings.TrimPrefix(r.URL.Path, prefix+"attachments/")
		if v := r.Header.Get("OpenStack-API-Version"); v != "volume 3.27" {
			f.t.Errorf("DELETE attachment %s with OpenStack-API-Version %q, want \"volume 3.27\" (the attachments API)", id, v)
		}
		if id == f.gone {
			w.WriteHeader(http.StatusNotFound)
			_, _ = io.WriteString(w, `{"itemNotFound": {"code": 404, "message": "VolumeAttachment `+id+` could not be found."}}`)
			return
		}
		if r.Header.Get("X-Service-Token") != serviceToken || f.refuse {
			w.WriteHeader(http.StatusConflict)
			_, _ = io.WriteString(w, `{"conflictingRequest": {"code": 409, "message": "ConflictNovaUsingAttachment: Detach volume from instance `+f.attachments[id][1]+` using the Compute API"}}`)
			return
		}
		if _, ok := f.attachments[id]; !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		delete(f.attachments, id)
		f.deletes = append(f.deletes, id)
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{}`)
	default:
		f.t.Errorf("unexpected %s %s", r.Method, r.URL)
		w.WriteHeader(http.StatusNotFound)
	}
}

func keys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// Attachments lists the server's attachments, with their connector host, from
// the volumes of every project.
func TestAttachmentsListsTheServersAttachmentsWithTheirHost(t *testing.T) {
	_, v := newFakeCinder(t, true)
	got, err := v.Attachments(context.Background(), "srv-1")
	if err != nil {
		t.Fatal(err)
	}
	want := []cloud.Attachment{{ID: "att-1", Volume: "vol-1", Host: "fake-compute-3"}, {ID: "att-2", Volume: "vol-2", Host: "fake-compute-3"}, {ID: "att-3", Volume: "vol-3", Host: "fake-compute-1"}}
	if !slices.Equal(got, want) {
		t.Fatalf("attachments %+v, want %+v", got, want)
	}
}

// Cut deletes, with the service token and API 3.27, exactly the server's
// attachments to the old host: not those to another host, not another server's.
func TestCutDeletesTheOldHostsAttachmentsWithTheServiceToken(t *testing.T) {
	f, v := newFakeCinder(t, true)
	vols, err := v.Cut(context.Background(), "srv-1", "fake-compute-3")
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(vols, []string{"vol-1", "vol-2"}) || !slices.Equal(f.deletes, []string{"att-1", "att-2"}) {
		t.Fatalf("volumes %v, deleted %v; want att-1 and att-2 only", vols, f.deletes)
	}
	if _, ok := f.attachments["att-3"]; !ok {
		t.Fatal("the attachment to another host was deleted")
	}
	// Resumed: nothing left to cut, nothing sent.
	if vols, err := v.Cut(context.Background(), "srv-1", "fake-compute-3"); err != nil || len(vols) != 0 || len(f.deletes) != 2 {
		t.Fatalf("second cut: %v %v, deletes %v", vols, err, f.deletes)
	}
}

// An attachment already gone (404: Nova's own clean-up, a resumed step) counts as cut.
func TestCutTakesAGoneAttachmentAsCut(t *testing.T) {
	f, v := newFakeCinder(t, true)
	f.gone = "att-1"
	vols, err := v.Cut(context.Background(), "srv-1", "fake-compute-3")
	if err != nil || !slices.Equal(vols, []string{"vol-1", "vol-2"}) {
		t.Fatalf("volumes %v err %v", vols, err)
	}
}

// Without a service user Vigil sends nothing Cinder would refuse (409
// ConflictNovaUsingAttachment): the error is terminal, names the attachment,
// volume, server and host, and says how to configure the token.
func TestCutWithoutServiceTokenSaysHowToConfigureOne(t *testing.T) {
	f, v := newFakeCinder(t, false)
	_, err := v.Cut(context.Background(), "srv-1", "fake-compute-3")
	if err == nil || !cloud.IsTerminal(err) {
		t.Fatalf("error %v: want a terminal error", err)
	}
	msg := err.Error()
	for _, want := range []string{"without a service token", "attachment att-1", "volume vol-1", "server srv-1", "host fake-compute-3", hint} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q: want %q in it", msg, want)
		}
	}
	if strings.Contains(msg, adminToken) || len(f.deletes) != 0 {
		t.Fatalf("error %q, deletes %v: no token in the error, nothing deleted", msg, f.deletes)
	}
}

// With a token Cinder still refuses (the user lacks the service role): terminal,
// with Cinder's words and the likely cause, never a token.
func TestCutRefusedDespiteTheTokenNamesTheLikelyCause(t *testing.T) {
	f, v := newFakeCinder(t, true)
	f.refuse = true
	_, err := v.Cut(context.Background(), "srv-1", "fake-compute-3")
	if err == nil || !cloud.IsTerminal(err) {
		t.Fatalf("error %v: want terminal", err)
	}
	msg := err.Error()
	if !strings.Contains(msg, "although a service token was sent") || !strings.Contains(msg, "service role") || !strings.Contains(msg, "ConflictNovaUsingAttachment") {
		t.Errorf("error %q: want the cause and Cinder's words", msg)
	}
	if strings.Contains(msg, serviceToken) || strings.Contains(msg, adminToken) {
		t.Fatalf("error %q carries a token", msg)
	}
}

// Cinder down: a passing error (the executor retries), saying where.
func TestCinderDownIsPassing(t *testing.T) {
	f, v := newFakeCinder(t, true)
	f.down = true
	_, err := v.Cut(context.Background(), "srv-1", "fake-compute-3")
	if !errors.Is(err, cloud.ErrUnavailable) || cloud.IsTerminal(err) || !strings.Contains(err.Error(), "list the volumes of server srv-1 (Cinder)") {
		t.Fatalf("error %v: want a passing error naming the listing", err)
	}
}
