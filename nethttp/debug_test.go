package nethttp_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/connleak/connleak/nethttp"
	"github.com/connleak/connleak/tracker"
)

// hostileLabel is a label made of markup: the HTML view must show it as
// text and run none of it.
const hostileLabel = `<script>document.title="pwned"</script><img src=x onerror="document.title='pwned'">`

// debugFixture is a real tracker with real loopback connections in the
// states the debug page is about.
type debugFixture struct {
	tr  *tracker.Tracker
	srv *httptest.Server // serves DebugHandler(tr) at /debug/connleak

	listener              net.Listener // tracked, LISTEN
	healthy, leaky        net.Conn     // tracked dials: ESTAB, and CLOSE-WAIT judged leaked
	unwrapped             net.Conn     // a plain net.Dial, seen only by the process sweep
	healthyLine, leakLine int          // the lines that dialed them
	acceptLine            int          // the line that accepted the server sides
}

func line() int {
	_, _, l, _ := runtime.Caller(1)
	return l
}

func newDebugFixture(t *testing.T) *debugFixture {
	t.Helper()
	th := tracker.DefaultThresholds()
	th.CloseWaitAgeWarning = time.Nanosecond // the leaked conn makes the health a warning
	tr := tracker.New(tracker.WithPollInterval(time.Hour), tracker.WithGracePeriod(time.Millisecond),
		tracker.WithLogger(nil), tracker.WithThresholds(th))
	t.Cleanup(func() { tr.Close() })
	fx := &debugFixture{tr: tr}

	raw, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	fx.listener = tr.WrapListener(raw)
	t.Cleanup(func() { fx.listener.Close() })
	addr := fx.listener.Addr().String()
	dial := tr.WrapDialer(nil)

	fx.healthyLine = line() + 1
	fx.healthy, err = dial(t.Context(), "tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { fx.healthy.Close() })

	fx.leakLine = line() + 1
	fx.leaky, err = dial(t.Context(), "tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { fx.leaky.Close() })

	fx.unwrapped, err = net.Dial("tcp", addr)
	require.NoError(t, err)
	t.Cleanup(func() { fx.unwrapped.Close() })

	for range 3 {
		fx.acceptLine = line() + 1
		c, err := fx.listener.Accept()
		require.NoError(t, err)
		t.Cleanup(func() { c.Close() })
		if c.RemoteAddr().String() == fx.leaky.LocalAddr().String() {
			require.NoError(t, c.Close()) // the peer hangs up; fx.leaky is never closed
		}
	}

	hostile := tr.Track("test.label", tracker.TrackLabel(hostileLabel))
	t.Cleanup(hostile.Close)

	deadline := time.Now().Add(5 * time.Second)
	for len(tr.Leaks()) == 0 {
		require.True(t, time.Now().Before(deadline), "the connection in CLOSE_WAIT was not judged leaked")
		time.Sleep(5 * time.Millisecond)
		tr.Poll()
	}

	mux := http.NewServeMux()
	mux.Handle("/debug/connleak", nethttp.DebugHandler(tr))
	fx.srv = httptest.NewServer(mux)
	t.Cleanup(fx.srv.Close)
	return fx
}

// get fetches the page with the given query and Accept header.
func (fx *debugFixture) get(t *testing.T, query, accept string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, fx.srv.URL+"/debug/connleak"+query, nil)
	require.NoError(t, err)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := fx.srv.Client().Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, string(body)
}

func thisFile() string {
	_, f, _, _ := runtime.Caller(0)
	return f
}

func groupAt(gs []nethttp.DebugGroup, kind string, line int) (nethttp.DebugGroup, bool) {
	for _, g := range gs {
		if g.Kind == kind && g.Site.File == thisFile() && g.Site.Line == line {
			return g, true
		}
	}
	return nethttp.DebugGroup{}, false
}

func TestDebugHandlerJSON(t *testing.T) {
	fx := newDebugFixture(t)
	resp, body := fx.get(t, "?format=json", "")
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "application/json", resp.Header.Get("Content-Type"))
	var rep nethttp.DebugReport
	require.NoError(t, json.Unmarshal([]byte(body), &rep), body)

	assert.Equal(t, os.Getpid(), rep.PID)
	assert.WithinDuration(t, time.Now(), rep.Time, time.Minute)
	assert.Equal(t, "warning", rep.Health.Status)
	assert.Equal(t, 1, rep.Health.CloseWait)
	assert.Greater(t, rep.Health.OldestCloseWaitSeconds, 0.0)
	if assert.Len(t, rep.Health.Reasons, 1) {
		assert.Contains(t, rep.Health.Reasons[0], "a connection in CLOSE_WAIT for")
	}

	// The leak: one group at the line that dialed it.
	assert.Equal(t, 1, rep.Leaks.Count)
	assert.Equal(t, 1, rep.Leaks.GroupCount)
	require.Len(t, rep.Leaks.Groups, 1)
	lg := rep.Leaks.Groups[0]
	assert.Equal(t, "conn", lg.Kind)
	assert.Equal(t, tracker.ReasonPeerClosed.String(), lg.Reason)
	assert.Equal(t, thisFile(), lg.Site.File)
	assert.Equal(t, fx.leakLine, lg.Site.Line)
	assert.True(t, strings.HasSuffix(lg.Site.Function, ".newDebugFixture"), lg.Site.Function)
	assert.Equal(t, fmt.Sprintf("%s (%s:%d)", lg.Site.Function, thisFile(), fx.leakLine), lg.Site.Text)
	assert.Equal(t, 1, lg.Count)
	assert.Equal(t, map[string]int{"CLOSE-WAIT": 1}, lg.States)
	require.Len(t, lg.Resources, 1)
	r := lg.Resources[0]
	assert.Equal(t, "tcp", r.Network)
	assert.Equal(t, fx.leaky.LocalAddr().String(), r.Local)
	assert.Equal(t, fx.listener.Addr().String(), r.Remote)
	assert.False(t, r.Accepted)
	assert.Equal(t, "CLOSE-WAIT", r.State)
	assert.Greater(t, r.ForSeconds, 0.0)
	assert.False(t, r.PeerClosedAt.IsZero())
	assert.Contains(t, lg.Stacks, "opened at:")
	assert.Contains(t, lg.Stacks, fmt.Sprintf("%s:%d", thisFile(), fx.leakLine))

	// What is open: the listener, the two dials, and three accepted
	// connections, of which the leaky one's was closed; and the labelled
	// resource.
	assert.Equal(t, 6, rep.Open.Count)
	assert.Equal(t, 5, rep.Open.GroupCount)
	require.Len(t, rep.Open.Groups, 5)
	assert.Equal(t, 2, rep.Open.Groups[0].Count, "largest group first")
	for _, c := range []struct {
		kind   string
		line   int
		states map[string]int
		local  string
	}{
		{"conn", fx.healthyLine, map[string]int{"ESTAB": 1}, fx.healthy.LocalAddr().String()},
		{"conn", fx.leakLine, map[string]int{"CLOSE-WAIT": 1}, fx.leaky.LocalAddr().String()},
		{"conn", fx.acceptLine, map[string]int{"ESTAB": 2}, fx.listener.Addr().String()},
	} {
		g, ok := groupAt(rep.Open.Groups, c.kind, c.line)
		if assert.True(t, ok, "no open %s group at line %d in %+v", c.kind, c.line, rep.Open.Groups) {
			assert.Equal(t, c.states, g.States, "line %d", c.line)
			assert.Equal(t, c.local, g.Resources[0].Local, "line %d", c.line)
		}
	}
	g, ok := groupAt(rep.Open.Groups, "conn", fx.acceptLine)
	if ok {
		assert.True(t, g.Resources[0].Accepted)
		assert.Contains(t, g.Stacks, "accepted at:")
	}
	var sawListener, sawLabel bool
	for _, g := range rep.Open.Groups {
		switch g.Kind {
		case "listener":
			sawListener = true
			assert.Equal(t, map[string]int{"LISTEN": 1}, g.States)
			assert.Equal(t, fx.listener.Addr().String(), g.Resources[0].Local)
		case "test.label":
			sawLabel = true
			assert.Equal(t, map[string]int{"active": 1}, g.States)
			assert.Equal(t, hostileLabel, g.Resources[0].Label)
		}
	}
	assert.True(t, sawListener, "the listener is not listed")
	assert.True(t, sawLabel, "the labelled resource is not listed")

	// The process sweep: the plain dial is there with its state; the
	// tracked sockets are counted apart.
	s := rep.Sockets
	if runtime.GOOS != "linux" {
		assert.NotEmpty(t, s.Error)
		return
	}
	assert.Empty(t, s.Error)
	assert.Equal(t, 5, s.Tracked, "the listener, two dials, and the two accepted conns still open")
	assert.Equal(t, s.Count, len(s.Sockets))
	var found bool
	for _, k := range s.Sockets {
		assert.NotEqual(t, fx.leaky.LocalAddr().String(), k.Local, "a tracked socket is listed as unwrapped")
		if k.Local == fx.unwrapped.LocalAddr().String() {
			found = true
			assert.Equal(t, "tcp", k.Network)
			assert.Equal(t, fx.listener.Addr().String(), k.Remote)
			assert.Equal(t, "ESTAB", k.State)
			assert.Positive(t, k.FD)
		}
	}
	assert.True(t, found, "the unwrapped socket %s is missing from %+v", fx.unwrapped.LocalAddr(), s.Sockets)
	var estab int
	for _, c := range s.Summary {
		if c.Network == "tcp" && c.State == "ESTAB" {
			estab = c.Count
		}
	}
	assert.GreaterOrEqual(t, estab, 1, "summary %+v", s.Summary)
}

func TestDebugHandlerText(t *testing.T) {
	fx := newDebugFixture(t)
	resp, body := fx.get(t, "", "") // no Accept header: text, as curl gets
	require.Equal(t, http.StatusOK, resp.StatusCode, body)
	assert.Equal(t, "text/plain; charset=utf-8", resp.Header.Get("Content-Type"))

	leakSite := fmt.Sprintf("%s:%d)", thisFile(), fx.leakLine)
	for _, want := range []string{
		fmt.Sprintf("connleak: pid %d at ", os.Getpid()),
		"health: warning (1 connection with a closed peer, the oldest for ",
		"  - a connection in CLOSE_WAIT for ",
		"leaks: 1 in 1 group\n",
		"\n1 conn: peer closed, never closed here\n  at ",
		leakSite + "\n  states: 1 CLOSE-WAIT\n",
		"open: 6 in 5 groups\n",
		"\n2 conn\n",
		"states: 2 ESTAB\n",
		"\n1 listener\n",
		"states: 1 LISTEN\n",
		fmt.Sprintf("%s:%d)\n  states: 1 ESTAB\n", thisFile(), fx.healthyLine),
		"  opened at:\n",
		"  accepted at:\n",
		strconv.Quote(hostileLabel),
	} {
		assert.Contains(t, body, want)
	}
	// A leaked conn's row: its state and addresses, and how long.
	assert.Regexp(t, `\n    CLOSE-WAIT +tcp +`+regexpQuote(fx.leaky.LocalAddr().String())+` +`+
		regexpQuote(fx.listener.Addr().String())+` +leaking for \S+\n`, body)
	if runtime.GOOS == "linux" {
		assert.Contains(t, body, "process sockets no wrapper owns: ")
		assert.Contains(t, body, "(and 5 tracked)")
		assert.Regexp(t, `\n  \d+ +tcp +ESTAB +`+regexpQuote(fx.unwrapped.LocalAddr().String())+` +`+
			regexpQuote(fx.listener.Addr().String())+`\n`, body)
		assert.NotContains(t, body, "  tcp  ESTAB  "+fx.healthy.LocalAddr().String(), "a tracked socket is in the sweep's table")
	}
}

func regexpQuote(s string) string {
	return strings.NewReplacer(".", `\.`, "[", `\[`, "]", `\]`).Replace(s)
}

// The view follows format=, else the Accept header: a browser gets HTML,
// curl and Go clients text, a JSON client JSON.
func TestDebugHandlerViews(t *testing.T) {
	fx := newDebugFixture(t)
	const browser = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
	for _, c := range []struct {
		query, accept, contentType string
	}{
		{"", "", "text/plain; charset=utf-8"},
		{"", "*/*", "text/plain; charset=utf-8"},
		{"", browser, "text/html; charset=utf-8"},
		{"", "application/json", "application/json"},
		{"", "application/json;q=0.5, text/plain", "text/plain; charset=utf-8"},
		{"", "text/plain;q=0.2, text/*;q=0.9", "text/html; charset=utf-8"},
		{"", "image/png", "text/plain; charset=utf-8"},
		{"?format=text", browser, "text/plain; charset=utf-8"},
		{"?format=json", browser, "application/json"},
		{"?format=html", "", "text/html; charset=utf-8"},
	} {
		resp, body := fx.get(t, c.query, c.accept)
		assert.Equal(t, http.StatusOK, resp.StatusCode, "%q %q: %s", c.query, c.accept, body)
		assert.Equal(t, c.contentType, resp.Header.Get("Content-Type"), "%q %q", c.query, c.accept)
		assert.Equal(t, "no-store", resp.Header.Get("Cache-Control"))
		if c.query == "" {
			assert.Equal(t, "Accept", resp.Header.Get("Vary"))
		}
	}

	resp, body := fx.get(t, "?format=xml", "")
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Contains(t, body, `unknown format "xml": use text, json or html`)

	post, err := fx.srv.Client().Post(fx.srv.URL+"/debug/connleak", "text/plain", nil)
	require.NoError(t, err)
	post.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, post.StatusCode)
	assert.Equal(t, "GET, HEAD", post.Header.Get("Allow"))
}

// Labels, addresses and stacks are untrusted strings: the HTML view escapes
// them, and forbids scripts besides.
func TestDebugHandlerHTMLEscapes(t *testing.T) {
	fx := newDebugFixture(t)
	resp, body := fx.get(t, "?format=html", "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.NotContains(t, body, "<script")
	assert.NotContains(t, body, "<img")
	assert.Contains(t, body, "&lt;script&gt;document.title=&#34;pwned&#34;&lt;/script&gt;")
	assert.Equal(t, "default-src 'none'; style-src 'unsafe-inline'", resp.Header.Get("Content-Security-Policy"))
	assert.Equal(t, "nosniff", resp.Header.Get("X-Content-Type-Options"))
}

// Ten thousand resources opened by one line make one group: the page lists
// ten of them and stays a few kilobytes in every view. A hundred and fifty
// sites are cut to a hundred groups.
func TestDebugHandlerBounded(t *testing.T) {
	tr := tracker.New(tracker.WithPollInterval(time.Hour), tracker.WithLogger(nil), tracker.WithStackDepth(256))
	defer tr.Close()
	var handles []*tracker.Handle
	defer func() {
		for _, h := range handles {
			h.Close()
		}
	}()
	long := strings.Repeat("é", 500) // 1,000 bytes, cut on a rune boundary
	for range 10_000 {
		handles = append(handles, tr.Track("test.many", tracker.TrackLabel(long)))
	}

	one := httptest.NewRecorder()
	nethttp.DebugHandler(tr).ServeHTTP(one, httptest.NewRequest(http.MethodGet, "/?format=json", nil))
	var rep nethttp.DebugReport
	require.NoError(t, json.Unmarshal(one.Body.Bytes(), &rep))
	assert.Equal(t, 10_000, rep.Open.Count)
	require.Len(t, rep.Open.Groups, 1)
	g := rep.Open.Groups[0]
	assert.Equal(t, 10_000, g.Count)
	assert.Equal(t, map[string]int{"active": 10_000}, g.States)
	assert.Len(t, g.Resources, 10)
	assert.LessOrEqual(t, len(g.Resources[0].Label), 200+len("…"))
	assert.True(t, strings.HasPrefix(long, strings.TrimSuffix(g.Resources[0].Label, "…")), "cut inside a rune")
	for _, format := range []string{"json", "text", "html"} {
		w := httptest.NewRecorder()
		nethttp.DebugHandler(tr).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/?format="+format, nil))
		assert.Equal(t, http.StatusOK, w.Code)
		assert.Less(t, w.Body.Len(), 32<<10, "%s view of 10,000 resources from one line: %d bytes", format, w.Body.Len())
		if format != "json" { // JSON has the counts instead
			assert.Contains(t, w.Body.String(), "… and 9990 more", format)
		}
	}

	// 150 more sites: each depth of the recursion is a stack of its own.
	for depth := range 150 {
		handles = append(handles, trackAtDepth(tr, depth))
	}
	for _, format := range []string{"json", "text", "html"} {
		w := httptest.NewRecorder()
		nethttp.DebugHandler(tr).ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/?format="+format, nil))
		assert.Equal(t, http.StatusOK, w.Code)
		assert.Less(t, w.Body.Len(), 4<<20, "%s view of 151 sites: %d bytes", format, w.Body.Len())
		if format != "json" {
			assert.Contains(t, w.Body.String(), "… and 51 more groups", format)
		} else {
			var rep nethttp.DebugReport
			require.NoError(t, json.Unmarshal(w.Body.Bytes(), &rep))
			assert.Equal(t, 151, rep.Open.GroupCount)
			assert.Len(t, rep.Open.Groups, 100)
			assert.Equal(t, 10_000, rep.Open.Groups[0].Count)
		}
	}
}

func trackAtDepth(tr *tracker.Tracker, depth int) *tracker.Handle {
	if depth == 0 {
		return tr.Track("test.deep")
	}
	return trackAtDepth(tr, depth-1)
}

// The page with ten thousand open resources of one site, against the
// tracker's own text report of the same state (WriteReport: the same Open
// and grouping, counted by site without stacks), interleaved in one loop so
// that the machine's load hits both alike. page/report is the time ratio,
// page-bytes the page's size.
func BenchmarkDebugHandler10k(b *testing.B) {
	tr := tracker.New(tracker.WithPollInterval(time.Hour), tracker.WithLogger(nil))
	defer tr.Close()
	handles := make([]*tracker.Handle, 10_000)
	for i := range handles {
		handles[i] = tr.Track("bench.many")
	}
	defer func() {
		for _, h := range handles {
			h.Close()
		}
	}()
	h := nethttp.DebugHandler(tr)
	for _, format := range []string{"text", "json", "html"} {
		b.Run(format, func(b *testing.B) {
			req := httptest.NewRequest(http.MethodGet, "/?format="+format, nil)
			var page, report time.Duration
			var size int
			for b.Loop() {
				t0 := time.Now()
				if err := tr.WriteReport(io.Discard); err != nil {
					b.Fatal(err)
				}
				t1 := time.Now()
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				page += time.Since(t1)
				report += t1.Sub(t0)
				size = w.Body.Len()
			}
			b.ReportMetric(float64(size), "page-bytes")
			b.ReportMetric(float64(page)/float64(report), "page/report")
		})
	}
}

// chromium returns the path of the Chromium the browser test drives, or
// skips the test when there is none (and fails it under CI, whose script
// installs it).
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"/usr/bin/chromium", "chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("Chromium is not installed, and CI is set: .ci/run installs it (apt-get install chromium)")
	}
	t.Skip("Chromium is not installed (apt-get install chromium): the HTML view is not checked in a browser")
	return ""
}

// The HTML view, as a browser renders it: asked for with a browser's Accept
// header, a table row per group, the leak's CLOSE-WAIT and its line, the
// markup of a label shown as text and never run.
func TestDebugHandlerInChromium(t *testing.T) {
	exe := chromium(t)
	fx := newDebugFixture(t)

	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	dataDir := t.TempDir()
	actx, cancelAlloc := chromedp.NewExecAllocator(ctx,
		chromedp.ExecPath(exe),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(dataDir),
	)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(actx)
	defer cancelBrowser()

	require.NoError(t, chromedp.Do(bctx,
		chromedp.Navigate(fx.srv.URL+"/debug/connleak"), // no format: the browser's Accept header picks HTML
		chromedp.WaitReady(chromedp.CSS("#open")),
	))
	// What the browser made of the page, read in one evaluation.
	type renderedPage struct {
		ContentType string   `json:"contentType"`
		Title       string   `json:"title"`
		Headings    []string `json:"headings"`
		LeakRows    int      `json:"leakRows"`
		OpenRows    int      `json:"openRows"`
		Elements    int      `json:"elements"` // script, img, iframe: none belong on the page
		LeakKind    string   `json:"leakKind"`
		LeakStates  string   `json:"leakStates"`
		LeakSite    string   `json:"leakSite"`
		OpenStates  []string `json:"openStates"`
		Labels      []string `json:"labels"`
	}
	page, err := chromedp.Run(bctx, chromedp.Evaluate[renderedPage](`(() => {
		const all = (sel) => Array.from(document.querySelectorAll(sel));
		const leak = document.querySelector("#leaks > tbody > tr");
		return {
			contentType: document.contentType,
			title: document.title,
			headings: all("h2").map(e => e.innerText),
			leakRows: all("#leaks > tbody > tr").length,
			openRows: all("#open > tbody > tr").length,
			elements: all("script, img, iframe").length,
			leakKind: leak.cells[1].innerText,
			leakStates: leak.querySelector("td.state").innerText,
			leakSite: leak.querySelector("td.site").innerText,
			openStates: all("#open > tbody > tr > td.state").map(e => e.innerText.trim()),
			labels: all("#open q").map(e => e.textContent),
		};
	})()`))
	require.NoError(t, err)
	assert.Equal(t, "text/html", page.ContentType)
	assert.Equal(t, fmt.Sprintf("connleak: pid %d", os.Getpid()), page.Title, "a label's markup ran")
	assert.Contains(t, page.Headings, "Health: warning")
	assert.Contains(t, page.Headings, "Leaks: 1 in 1 group")
	assert.Equal(t, 1, page.LeakRows)
	assert.Equal(t, 5, page.OpenRows)
	assert.Zero(t, page.Elements, "the page made an element out of a label")
	assert.Contains(t, page.LeakKind, "peer closed, never closed here")
	assert.Equal(t, "1 CLOSE-WAIT", strings.TrimSpace(page.LeakStates))
	assert.Contains(t, page.LeakSite, fmt.Sprintf("%s:%d", thisFile(), fx.leakLine))
	assert.Contains(t, page.LeakSite, ".newDebugFixture")
	assert.Subset(t, page.OpenStates, []string{"2 ESTAB", "1 LISTEN", "1 CLOSE-WAIT", "1 ESTAB", "1 active"})
	assert.Equal(t, []string{hostileLabel}, page.Labels)

	// Closing the browser's contexts ends the browser: no process of it is
	// left holding its profile directory.
	cancelBrowser()
	cancelAlloc()
	if runtime.GOOS == "linux" {
		assert.Eventually(t, func() bool { return len(processesUsing(dataDir)) == 0 }, 5*time.Second, 20*time.Millisecond,
			"browser processes left running: %v", processesUsing(dataDir))
	}
}

// processesUsing lists the pids whose command line names dir.
func processesUsing(dir string) []int {
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var pids []int
	for _, f := range cmdlines {
		b, err := os.ReadFile(f)
		if err != nil || !strings.Contains(string(b), dir) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(f))); err == nil {
			pids = append(pids, pid)
		}
	}
	return pids
}
