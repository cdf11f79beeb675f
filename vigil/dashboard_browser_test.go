package vigil

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// syncBuffer (auth_test.go) holds the demo's timeline, written by the demo and read
// by the test.

// chromium returns the browser's path, or skips the test without one unless
// VIGIL_CHROMIUM=1 (CI installs it) says it must run.
func chromium(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("VIGIL_CHROMIUM") == "1" {
		t.Fatal("VIGIL_CHROMIUM=1 but no chromium on PATH (apt-get install chromium)")
	}
	t.Skip("no chromium on PATH: the dashboard's browser test needs Debian's chromium package (CI sets VIGIL_CHROMIUM=1 and installs it)")
	return ""
}

// artifacts is where the screenshots go: $VIGIL_ARTIFACTS (CI keeps it) or a
// temporary directory.
func artifacts(t *testing.T) string {
	dir := os.Getenv("VIGIL_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts directory %s: %v", dir, err)
	}
	return dir
}

var dashboardURL = regexp.MustCompile(`Dashboard on (http://\S+/ui/)`)

// The operator's view, in a real browser against `vigil demo`: the dashboard
// shows the clusters and hosts, a host that loses power appears in the incident
// timeline as it happens (the event stream, no reload) and is shown recovered,
// and clicking its incident shows the chain from evidence to rule to steps.
func TestBrowserDashboardFollowsDemo(t *testing.T) {
	exe := chromium(t)
	if testing.Short() {
		t.Skip("the browser test runs the demo for up to a minute")
	}
	dir := artifacts(t)
	ctx, cancel := context.WithTimeout(context.Background(), 110*time.Second)
	defer cancel()

	out := &syncBuffer{}
	demoCtx, stopDemo := context.WithCancel(ctx)
	demoDone := make(chan error, 1)
	go func() {
		// The first fault (a server crash) at 1 s, the host power loss 3 s later.
		_, err := Demo(demoCtx, DemoOptions{Listen: "127.0.0.1:0", Seed: 1, Hosts: 8, Servers: 40,
			FirstFault: time.Second, FaultEvery: 3 * time.Second, Out: out})
		demoDone <- err
	}()
	defer func() {
		stopDemo()
		<-demoDone
		if t.Failed() {
			t.Logf("demo timeline:\n%s", out.String())
		}
	}()
	url := waitDashboardURL(t, ctx, out)

	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.Headless, chromedp.DisableGPU, chromedp.WindowSize(1280, 1000))...)
	defer cancelAlloc()
	browser, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithLogf(t.Logf))
	defer cancelBrowser()

	shot := func(name string) {
		t.Helper()
		png, err := chromedp.Run(browser, chromedp.FullScreenshot(100)) // 100: a PNG; less is a JPEG
		if err != nil {
			t.Fatalf("screenshot %s: %v", name, err)
		}
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot %s", p)
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(browser, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return s
	}

	// The dashboard loads: the three clusters with their health in words, the
	// hosts by segment with their verdicts and the brake state, the stream live.
	if err := chromedp.Do(browser, chromedp.Navigate(url),
		chromedp.WaitVisible(chromedp.CSS(`#clusters tr[data-cluster="web"]`)),
		chromedp.WaitVisible(chromedp.CSS(`#segments section[data-segment="rack-b"] li[data-host]`))); err != nil {
		t.Fatalf("load %s: %v", url, err)
	}
	clusters := text("#clusters")
	for _, want := range []string{"web", "db", "cache", "/ 15"} {
		if !strings.Contains(clusters, want) {
			t.Errorf("clusters table lacks %q:\n%s", want, clusters)
		}
	}
	if !regexp.MustCompile(`Green|Yellow|Red`).MatchString(clusters) {
		t.Errorf("clusters table shows no health in words:\n%s", clusters)
	}
	hosts := text("#segments")
	for _, want := range []string{"Segment rack-a", "Segment rack-b", "host-01", "host-08", "Verdict:", "Brake off"} {
		if !strings.Contains(hosts, want) {
			t.Errorf("hosts grid lacks %q:\n%s", want, hosts)
		}
	}
	if err := chromedp.Do(browser, waitText(`#live`, "connected")); err != nil {
		t.Fatalf("the page never connected to the event stream: %v", err)
	}
	shot("dashboard.png")

	// A host loses power: its incident appears in the timeline, then is resolved.
	host := `#timeline li[data-subject^="host/"]`
	if err := chromedp.Do(browser, chromedp.WaitVisible(chromedp.CSS(host))); err != nil {
		t.Fatalf("no host incident in the timeline: %v", err)
	}
	shot("host-failure.png")
	resolved := host + `[data-state="resolved"]`
	if err := chromedp.Do(browser, chromedp.WaitVisible(chromedp.CSS(resolved))); err != nil {
		t.Fatalf("the host incident was never shown resolved: %v", err)
	}
	item := text(resolved)
	for _, want := range []string{"host-bmc-off", "resolved", "fence", "mark-down", "took"} {
		if !strings.Contains(item, want) {
			t.Errorf("the resolved host incident lacks %q:\n%s", want, item)
		}
	}
	shot("host-recovered.png")

	// Clicking it shows the explanation: evidence -> rule -> policy -> steps -> outcome.
	clickIncident(t, browser, resolved+` a`)
	if err := chromedp.Do(browser, chromedp.WaitVisible(chromedp.CSS(`#chain li[data-link="outcome"]`))); err != nil {
		t.Fatalf("the incident page shows no explain chain: %v", err)
	}
	chain := text("#chain")
	order := []string{"Observed:", "BMC reports power off", "Verdict:", "host-bmc-off", "Policy:", "default", "Step 1:", "fence", "Outcome:", "Resolved"}
	at := 0
	for _, want := range order {
		i := strings.Index(chain[at:], want)
		if i < 0 {
			t.Fatalf("the explain chain lacks %q after byte %d (want, in order, %q):\n%s", want, at, order, chain)
		}
		at += i + len(want)
	}
	steps := text("#steps tbody")
	if !strings.Contains(steps, "succeeded") && !strings.Contains(steps, "confirmed") {
		t.Errorf("the steps table shows no outcome:\n%s", steps)
	}
	shot("incident.png")
}

// waitDashboardURL reads the dashboard's address from the demo's first lines.
func waitDashboardURL(t *testing.T, ctx context.Context, out *syncBuffer) string {
	t.Helper()
	for {
		if m := dashboardURL.FindStringSubmatch(out.String()); m != nil {
			return m[1]
		}
		select {
		case <-ctx.Done():
			t.Fatalf("the demo printed no dashboard URL:\n%s", out.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// waitText waits until the element's text contains want.
func waitText(sel, want string) chromedp.Action[chromedp.Void] {
	return func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		for {
			s, err := chromedp.Text(chromedp.CSS(sel))(ctx, tg)
			if err != nil {
				return chromedp.Void{}, err
			}
			if strings.Contains(s, want) {
				return chromedp.Void{}, nil
			}
			select {
			case <-ctx.Done():
				return chromedp.Void{}, ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// clickIncident clicks an incident's link; the timeline is redrawn as events
// come, so a click that lands on a node just replaced is tried again.
func clickIncident(t *testing.T, browser context.Context, sel string) {
	t.Helper()
	var err error
	for range 5 {
		cctx, cancel := context.WithTimeout(browser, 3*time.Second)
		var hash string
		err = chromedp.Do(cctx, chromedp.Click(chromedp.CSS(sel)))
		if err == nil {
			hash, err = chromedp.Run(cctx, chromedp.Evaluate[string](`location.hash`))
		}
		cancel()
		if err == nil && strings.HasPrefix(hash, "#/incidents/") {
			return
		}
	}
	t.Fatalf("click %s: %v", sel, err)
}
