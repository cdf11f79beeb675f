package vigil

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"
)

// NovaReport is what `vigil bench nova` measured, with where and when.
type NovaReport struct {
	NovaMachine NovaMachine `json:"machine"`
	Commit      string      `json:"commit"`
	Started     time.Time   `json:"started"`
	Finished    time.Time   `json:"finished"`
	Servers     int         `json:"servers_per_round"`
	RoundsEach  int         `json:"rounds_per_contender"`
	Hosts       []string    `json:"hosts"`
	Interval    string      `json:"vigil_interval"`
	Contenders  []string    `json:"contenders"`
	// Summary per contender, in Contenders' order.
	Summary []NovaSummary `json:"summary"`
	Rounds  []NovaRound   `json:"rounds"`
}

// NovaSummary: fault to every server ACTIVE elsewhere, over a contender's
// completed rounds.
type NovaSummary struct {
	Contender string  `json:"contender"`
	Completed int     `json:"completed"`
	Failed    int     `json:"failed"`
	Median    float64 `json:"median_s"`
	Min       float64 `json:"min_s"`
	Max       float64 `json:"max_s"`
	// Ratio is the median over the oracle's median (0 when either is unknown).
	Ratio float64 `json:"ratio_to_oracle"`
	// Phases: the median length of each phase between two milestones (the phase
	// named by the milestone that ends it), in the order they happen.
	Phases   []Milestone `json:"phases"`
	Dominant string      `json:"dominant"`
}

// NovaMachine says where a benchmark ran.
type NovaMachine struct {
	Host   string `json:"host"`
	CPU    string `json:"cpu"`
	Cores  int    `json:"cores"`
	MemGiB int    `json:"mem_gib"`
	OS     string `json:"os"`
	Go     string `json:"go"`
}

// ThisNovaMachine describes the machine the bench runs on.
func ThisNovaMachine() NovaMachine {
	m := NovaMachine{Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, Go: runtime.Version()}
	m.Host, _ = os.Hostname()
	m.CPU = procField("/proc/cpuinfo", "model name")
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		var n int
		fmt.Sscanf(kb, "%d", &n)
		m.MemGiB = (n + 512*1024) / (1024 * 1024)
	}
	return m
}

func sortMilestones(ms []Milestone) {
	slices.SortStableFunc(ms, func(a, b Milestone) int {
		switch {
		case a.At < b.At:
			return -1
		case a.At > b.At:
			return 1
		}
		return 0
	})
}

// phases are the lengths between consecutive milestones from the fault (at 0),
// each named "previous -> next".
func phases(ms []Milestone) []Milestone {
	var out []Milestone
	prev, at := "fault", 0.0
	for _, m := range ms {
		if m.At < 0 {
			continue
		}
		out = append(out, Milestone{prev + " -> " + m.Name, m.At - at})
		prev, at = m.Name, m.At
	}
	return out
}

// untilEnd: the milestones up to every server ACTIVE elsewhere (a contender's own
// bookkeeping after it, such as Masakari's notification ending, is not its time).
func untilEnd(ms []Milestone) []Milestone {
	for i, m := range ms {
		if m.Name == endMilestone {
			return ms[:i+1]
		}
	}
	return ms
}

const endMilestone = "all ACTIVE elsewhere"

// dominant names the longest phase (up to the end) and its share of the round.
func dominant(ms []Milestone) string {
	ps := phases(untilEnd(ms))
	if len(ps) == 0 {
		return ""
	}
	best := ps[0]
	total := 0.0
	for _, p := range ps {
		total += p.At
		if p.At > best.At {
			best = p
		}
	}
	if total <= 0 {
		return best.Name
	}
	return fmt.Sprintf("%s (%.1f s, %.0f %%)", best.Name, best.At, 100*best.At/total)
}

func medianOf(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// summarize fills Summary from the rounds.
func (r *NovaReport) summarize() {
	r.Summary = nil
	for _, c := range r.Contenders {
		s := NovaSummary{Contender: c}
		var xs []float64
		at := map[string][]float64{}
		for _, rd := range r.Rounds {
			if rd.Contender != c {
				continue
			}
			if rd.Error != "" {
				s.Failed++
				continue
			}
			s.Completed++
			xs = append(xs, rd.Seconds)
			for _, m := range rd.Milestones {
				at[m.Name] = append(at[m.Name], m.At)
			}
		}
		if len(xs) > 0 {
			s.Median, s.Min, s.Max = medianOf(xs), slices.Min(xs), slices.Max(xs)
		}
		// Each milestone at its median time, in that order: rounds whose moments
		// came in another order still add up to one timeline.
		var ms []Milestone
		for name, v := range at {
			ms = append(ms, Milestone{name, medianOf(v)})
		}
		slices.SortFunc(ms, func(a, b Milestone) int { return strings.Compare(a.Name, b.Name) })
		sortMilestones(ms)
		s.Phases = phases(ms)
		var best Milestone
		for _, p := range phases(untilEnd(ms)) {
			if p.At > best.At {
				best = p
			}
		}
		if best.Name != "" && s.Median > 0 {
			s.Dominant = fmt.Sprintf("%s (median %.1f s of %.1f s)", best.Name, best.At, s.Median)
		}
		r.Summary = append(r.Summary, s)
	}
	var oracle float64
	for _, s := range r.Summary {
		if s.Contender == ContenderOracle {
			oracle = s.Median
		}
	}
	for i := range r.Summary {
		if oracle > 0 && r.Summary[i].Median > 0 {
			r.Summary[i].Ratio = r.Summary[i].Median / oracle
		}
	}
}

// WriteTable writes the report as a person reads it.
func (r NovaReport) WriteTable(w io.Writer) error {
	fmt.Fprintf(w, "vigil bench nova: %d servers per round, %d rounds per contender, hosts %s, Vigil interval %s\n",
		r.Servers, r.RoundsEach, strings.Join(r.Hosts, " "), r.Interval)
	fmt.Fprintf(w, "machine %s (%s, %d cores, %d GiB, %s), %s, commit %s\n", r.NovaMachine.Host, r.NovaMachine.CPU, r.NovaMachine.Cores, r.NovaMachine.MemGiB,
		r.NovaMachine.Go, r.Started.Format(time.RFC3339), r.Commit)
	fmt.Fprintln(w, "\npower cut -> every server ACTIVE on another host (seconds)")
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "contender\trounds\tmedian\tmin\tmax\tx oracle\tdominant phase")
	for _, s := range r.Summary {
		ratio := "-"
		if s.Ratio > 0 {
			ratio = fmt.Sprintf("%.2f", s.Ratio)
		}
		done := fmt.Sprint(s.Completed)
		if s.Failed > 0 {
			done += fmt.Sprintf(" (+%d failed)", s.Failed)
		}
		fmt.Fprintf(tw, "%s\t%s\t%.1f\t%.1f\t%.1f\t%s\t%s\n", s.Contender, done, s.Median, s.Min, s.Max, ratio, s.Dominant)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range r.Summary {
		if len(s.Phases) == 0 {
			continue
		}
		fmt.Fprintf(w, "\n%s, median phases (s):\n", s.Contender)
		for _, p := range s.Phases {
			fmt.Fprintf(w, "  %6.1f  %s\n", p.At, p.Name)
		}
	}
	fmt.Fprintln(w, "\nrounds:")
	tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "contender\tround\thost\tseconds\tnova down\ttargets\tevacuations\trestore\tresult")
	for _, rd := range r.Rounds {
		result := "ok"
		if rd.Error != "" {
			result = "FAILED: " + rd.Error
		}
		var ev []string
		for _, id := range rd.Servers {
			ev = append(ev, fmt.Sprint(rd.Evacuations[id]))
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%.1f\t%.1f\t%s\t%s\t%.1f\t%s\n", rd.Contender, rd.Round, rd.Host, rd.Seconds, rd.NovaDown,
			strings.Join(rd.Targets, ","), strings.Join(ev, ","), rd.RestoreSeconds, result)
	}
	return tw.Flush()
}

// Save writes the report into dir as nova-DATE.json and nova-DATE.txt and returns
// their paths.
func (r NovaReport) Save(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("results directory %s: %w", dir, err)
	}
	base := filepath.Join(dir, "nova-"+r.Started.Format("20060102-150405"))
	js, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(base+".json", append(js, '\n'), 0o644); err != nil {
		return nil, fmt.Errorf("write %s.json: %w", base, err)
	}
	var b strings.Builder
	_ = r.WriteTable(&b)
	if err := os.WriteFile(base+".txt", []byte(b.String()), 0o644); err != nil {
		return nil, fmt.Errorf("write %s.txt: %w", base, err)
	}
	return []string{base + ".json", base + ".txt"}, nil
}

// bar is a progress bar on a terminal (redrawn every second), or one line per
// phase elsewhere (a log).
type bar struct {
	w          io.Writer
	tty        bool
	total, n   int
	mu         sync.Mutex
	what       string
	from       time.Time
	stopTicker chan struct{}
}

func newBar(w io.Writer, total int) *bar {
	b := &bar{w: w, total: total, from: time.Now(), stopTicker: make(chan struct{})}
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			b.tty = true
			go b.tick()
		}
	}
	return b
}

func (b *bar) tick() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-b.stopTicker:
			return
		case <-t.C:
			b.draw()
		}
	}
}

func (b *bar) draw() {
	b.mu.Lock()
	defer b.mu.Unlock()
	const width = 20
	fill := 0
	if b.total > 0 {
		fill = width * b.n / b.total
	}
	line := fmt.Sprintf("[%s%s] %d/%d %s", strings.Repeat("#", fill), strings.Repeat(".", width-fill), b.n, b.total, b.what)
	if b.tty {
		fmt.Fprintf(b.w, "\r\033[K%s %.0f s", line, time.Since(b.from).Seconds())
	} else {
		fmt.Fprintln(b.w, line)
	}
}

func (b *bar) phase(what string) { b.phaseSince(what, time.Now()) }

func (b *bar) phaseSince(what string, from time.Time) {
	b.mu.Lock()
	b.what, b.from = what, from
	b.mu.Unlock()
	b.draw()
}

func (b *bar) step() {
	b.mu.Lock()
	b.n++
	b.mu.Unlock()
}

func (b *bar) done() {
	close(b.stopTicker)
	if b.tty {
		fmt.Fprintln(b.w)
	}
}

// LoadNovaReport reads a saved report and summarizes its rounds again (with this
// version's summary).
func LoadNovaReport(path string) (NovaReport, error) {
	var r NovaReport
	b, err := os.ReadFile(path)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, fmt.Errorf("report %s: %w", path, err)
	}
	r.summarize()
	return r, nil
}
