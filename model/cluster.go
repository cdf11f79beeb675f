package model

import (
	"slices"
	"strings"
	"time"
)

// Cluster sources: where a cluster's members come from. An explicit cluster lists
// its members; the others resolve them from the cloud at every refresh, so a server
// added to the stack, the server group or the metadata is protected without anyone
// telling Vigil its ID.
const (
	SourceIDs         = "ids"          // the members listed (the default)
	SourceHeatStack   = "heat-stack"   // every OS::Nova::Server of a Heat stack (by name or ID)
	SourceServerGroup = "server-group" // the members of a Nova server group (by ID or name)
	SourceMetadata    = "metadata"     // servers whose metadata has vigil:cluster=NAME
)

// SourceKinds are the known source kinds, for messages.
var SourceKinds = []string{SourceIDs, SourceHeatStack, SourceServerGroup, SourceMetadata}

// Tags and metadata keys that define clusters from the cloud's side.
const (
	// TagProtect on a Heat stack makes it a cluster named after the stack.
	TagProtect = "vigil-protect"
	// TagPolicy prefixes a stack tag naming the cluster's policy: policy=web.
	TagPolicy = "policy="
	// MetaCluster is the server metadata key naming a server's cluster.
	MetaCluster = "vigil:cluster"
	// MetaPolicy is the server metadata key naming the cluster's policy.
	MetaPolicy = "vigil:policy"
)

// ClusterSource says where a cluster's members come from and what the last
// resolution found. A nil source (or kind "ids") is a list of IDs.
type ClusterSource struct {
	Kind string `json:"kind"`
	// Ref names the stack, the server group or the metadata value.
	Ref string `json:"ref,omitempty"`
	// Discovered: Vigil found it in the cloud (a stack tagged vigil-protect, servers
	// with vigil:cluster metadata); it lives as long as the tag or the metadata.
	Discovered bool `json:"discovered,omitempty"`
	// FixedDesired: Desired was given; otherwise it follows the member count.
	FixedDesired bool `json:"fixed_desired,omitempty"`
	// Resolved is when the members were last read from the source.
	Resolved time.Time `json:"resolved,omitzero"`
	// Error says why the last resolution failed: the members are those of Resolved.
	Error string `json:"error,omitempty"`
	// Note says what else an operator should know (a member kept by another cluster,
	// a policy tag naming no policy).
	Note string `json:"note,omitempty"`
	// Recovery says how Vigil recovers the members, where an operator would expect
	// Heat's own answer (see HeatRecovery).
	Recovery string `json:"recovery,omitempty"`
}

// HeatRecovery is what a stack cluster says about its members' identity.
const HeatRecovery = "Vigil recovers each server of the stack in place (reboot, rebuild) or by evacuation: " +
	"same ID, name, ports and volumes, so the stack's physical_resource_id still names it; it never deletes " +
	"and recreates a server, as Heat's HARestarter (removed) and mark-unhealthy + stack update do (a new ID)"

// Explicit reports whether the cluster's members are listed rather than resolved.
func (s *ClusterSource) Explicit() bool { return s == nil || s.Kind == "" || s.Kind == SourceIDs }

// StackPolicy reads the policy a stack's tags name (policy=NAME); ok is false when
// none does.
func StackPolicy(tags []string) (name string, ok bool) {
	for _, t := range tags {
		if p, found := strings.CutPrefix(t, TagPolicy); found && p != "" {
			return p, true
		}
	}
	return "", false
}

// Metadata is a server's user metadata in a comparable form (servers are compared
// with ==): its keys sorted, "key=value" lines. "" means not
// known (a notification carries none: the last listing's stands); MetadataNone,
// known to be empty (a listing that shows the last key removed).
type Metadata string

// MetadataNone is the metadata of a server listed with none.
const MetadataNone Metadata = "\n"

// MetadataOf returns m in canonical form: "" for a nil map, MetadataNone for an
// empty one.
func MetadataOf(m map[string]string) Metadata {
	if m == nil {
		return ""
	}
	if len(m) == 0 {
		return MetadataNone
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var b strings.Builder
	for _, k := range keys {
		b.WriteString(escapeMeta(k))
		b.WriteByte('=')
		b.WriteString(escapeMeta(m[k]))
		b.WriteByte('\n')
	}
	return Metadata(b.String())
}

// Map returns the metadata as a map (nil for none).
func (md Metadata) Map() map[string]string {
	if md == "" {
		return nil
	}
	if md == MetadataNone {
		return map[string]string{}
	}
	out := map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSuffix(string(md), "\n"), "\n") {
		k, v, _ := strings.Cut(line, "=")
		out[unescapeMeta(k)] = unescapeMeta(v)
	}
	return out
}

// Get returns the value of key, and whether it is set.
func (md Metadata) Get(key string) (string, bool) {
	v, ok := md.Map()[key]
	return v, ok
}

// escapeMeta keeps '=', '\n' and '%' of keys and values from breaking the lines.
func escapeMeta(s string) string {
	return strings.NewReplacer("%", "%25", "=", "%3D", "\n", "%0A").Replace(s)
}

func unescapeMeta(s string) string {
	return strings.NewReplacer("%3D", "=", "%0A", "\n", "%25", "%").Replace(s)
}
