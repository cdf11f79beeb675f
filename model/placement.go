package model

import "fmt"

// Resources are what a server needs (its flavor) or what a host has free (as the
// cloud's Placement service counts it): vCPUs, RAM and root disk.
type Resources struct {
	VCPUs    int `json:"vcpus"`
	MemoryMB int `json:"memory_mb"`
	DiskGB   int `json:"disk_gb"`
}

// Zero reports whether nothing is known or needed.
func (r Resources) Zero() bool { return r == Resources{} }

// Add returns r plus o.
func (r Resources) Add(o Resources) Resources {
	return Resources{VCPUs: r.VCPUs + o.VCPUs, MemoryMB: r.MemoryMB + o.MemoryMB, DiskGB: r.DiskGB + o.DiskGB}
}

// Sub returns r minus o.
func (r Resources) Sub(o Resources) Resources {
	return Resources{VCPUs: r.VCPUs - o.VCPUs, MemoryMB: r.MemoryMB - o.MemoryMB, DiskGB: r.DiskGB - o.DiskGB}
}

// Fits reports whether need fits in r, each resource on its own.
func (r Resources) Fits(need Resources) bool {
	return need.VCPUs <= r.VCPUs && need.MemoryMB <= r.MemoryMB && need.DiskGB <= r.DiskGB
}

// Short names the first resource of need that r lacks, as "need 6 vCPU, 2 free"
// ("" when need fits).
func (r Resources) Short(need Resources) string {
	switch {
	case need.VCPUs > r.VCPUs:
		return fmt.Sprintf("need %d vCPU, %d free", need.VCPUs, max(r.VCPUs, 0))
	case need.MemoryMB > r.MemoryMB:
		return fmt.Sprintf("need %d MB RAM, %d free", need.MemoryMB, max(r.MemoryMB, 0))
	case need.DiskGB > r.DiskGB:
		return fmt.Sprintf("need %d GB disk, %d free", need.DiskGB, max(r.DiskGB, 0))
	}
	return ""
}

func (r Resources) String() string {
	return fmt.Sprintf("%d vCPU, %d MB RAM, %d GB disk", r.VCPUs, r.MemoryMB, r.DiskGB)
}

// Server group policies (Nova's os-server-groups).
const (
	GroupAffinity         = "affinity"
	GroupAntiAffinity     = "anti-affinity"
	GroupSoftAffinity     = "soft-affinity"
	GroupSoftAntiAffinity = "soft-anti-affinity"
)

// ServerGroup is a Nova server group: its members must share one host (affinity)
// or never share one (anti-affinity); the soft policies are preferences Nova's
// scheduler weighs, not rules.
type ServerGroup struct {
	ID      string   `json:"id"`
	Name    string   `json:"name"`
	Policy  string   `json:"policy"`
	Members []string `json:"members"`
}

// Strict reports whether the group's policy is a rule (not a soft preference).
func (g ServerGroup) Strict() bool {
	return g.Policy == GroupAffinity || g.Policy == GroupAntiAffinity
}
