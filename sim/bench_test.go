package sim

import (
	"testing"
	"time"
)

// BenchmarkSeeds reports how many seeds a minute the simulation runs, for a small
// world and a large one (1,000 hosts, 10,000 servers), on one goroutine.
func BenchmarkSeeds(b *testing.B) {
	worlds := []struct {
		name string
		cfg  Config
	}{
		{"small-6h-30s", SmallConfig()},
		{"default-20h-200s", DefaultConfig()},
		{"large-1000h-10000s", Config{Hosts: 1000, Servers: 10000, Segments: 10, Until: 2 * time.Hour, Settle: 30 * time.Minute}},
	}
	for _, w := range worlds {
		b.Run(w.name, func(b *testing.B) {
			start := time.Now()
			ticks := 0
			for i := 0; b.Loop(); i++ {
				r, err := Run(uint64(i+1), w.cfg)
				if err != nil {
					b.Fatal(err)
				}
				if len(r.Violations) > 0 {
					b.Fatalf("seed %d: %v", i+1, r.Violations)
				}
				ticks += r.Stats.Ticks
			}
			el := time.Since(start)
			b.ReportMetric(float64(b.N)/el.Minutes(), "seeds/min")
			b.ReportMetric(float64(ticks)/float64(b.N), "ticks/seed")
		})
	}
}
