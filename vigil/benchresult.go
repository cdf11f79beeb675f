package vigil

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"time"
)

// Machine is where and from what a benchmark ran: its figures mean nothing
// without it.
type Machine struct {
	CPU       string    `json:"cpu"`
	Cores     int       `json:"cores"`
	RAMGiB    float64   `json:"ram_gib"`
	OS        string    `json:"os"`
	GoVersion string    `json:"go_version"`
	Commit    string    `json:"commit"`
	Date      time.Time `json:"date"`
}

// ThisMachine describes this machine and the build that runs on it.
func ThisMachine() Machine {
	m := Machine{Cores: runtime.NumCPU(), OS: runtime.GOOS + "/" + runtime.GOARCH, GoVersion: runtime.Version(),
		Date: time.Now().UTC().Truncate(time.Second), CPU: procField("/proc/cpuinfo", "model name")}
	if kb := procField("/proc/meminfo", "MemTotal"); kb != "" {
		var n float64
		fmt.Sscanf(kb, "%f", &n)
		m.RAMGiB = float64(int(n/(1<<20)*10)) / 10
	}
	m.Commit = Commit()
	return m
}

// procField is the value of the first "key: value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// Commit is the source's commit: the binary's VCS stamp, else git's HEAD in the
// working directory (go run stamps none); "+dirty" when the tree had changes.
func Commit() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		rev, dirty := "", false
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				rev = s.Value
			case "vcs.modified":
				dirty = s.Value == "true"
			}
		}
		if rev != "" {
			if dirty {
				rev += "+dirty"
			}
			return rev
		}
	}
	out, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		return "unknown"
	}
	rev := strings.TrimSpace(string(out))
	if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
		rev += "+dirty"
	}
	return rev
}

// WriteBenchResult writes a bench's report as name.json and its table as name.md
// in dir (created if missing), and returns the JSON's path.
func WriteBenchResult(dir, name string, report any, table string) (string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("results directory %s: %w", dir, err)
	}
	js, err := json.MarshalIndent(report, "", "  ")
	if err != nil {
		return "", err
	}
	p := filepath.Join(dir, name+".json")
	if err := os.WriteFile(p, append(js, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", p, err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".md"), []byte(table), 0o644); err != nil {
		return "", fmt.Errorf("write %s.md: %w", name, err)
	}
	return p, nil
}
