package testutil_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// demo is testdata/leakdemo copied into a module of its own (with a replace
// directive pointing at this repository) and its tests compiled once.
type demo struct {
	dir, bin string
	goBin    string
	lines    map[string]int    // LINE: markers of the sources
	files    map[string]string // the file of each marker
}

// buildDemo copies the demo package to dir and compiles its test binary with
// go test -c, offline-safe: the module cache and this repository's go.sum
// provide everything.
func buildDemo(t *testing.T, dir string) *demo {
	t.Helper()
	// go test puts its own GOROOT/bin first on PATH, so this finds the go
	// command that is running the tests.
	goBin, err := exec.LookPath("go")
	require.NoError(t, err, "the go command builds the demo: run these tests with go test")
	root, err := filepath.Abs("..")
	require.NoError(t, err)
	gomod, err := os.ReadFile(filepath.Join(root, "go.mod"))
	require.NoError(t, err)
	require.Contains(t, string(gomod), "module github.com/connleak/connleak", "the parent directory must be the repository root")

	d := &demo{dir: dir, bin: filepath.Join(dir, "leakdemo.test"), goBin: goBin, lines: map[string]int{}, files: map[string]string{}}
	src := filepath.Join("testdata", "leakdemo")
	entries, err := os.ReadDir(src)
	require.NoError(t, err)
	marker := regexp.MustCompile(`// LINE:([a-z-]+)`)
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		require.NoError(t, err)
		require.NoError(t, os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644))
		sc := bufio.NewScanner(bytes.NewReader(b))
		for n := 1; sc.Scan(); n++ {
			if m := marker.FindStringSubmatch(sc.Text()); m != nil {
				d.lines[m[1]] = n
				d.files[m[1]] = e.Name()
			}
		}
	}
	mod := fmt.Sprintf("module leakdemo\n\ngo 1.26.0\n\nrequire github.com/connleak/connleak v0.0.0-00010101000000-000000000000\n\nreplace github.com/connleak/connleak => %s\n", root)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.mod"), []byte(mod), 0o644))
	sum, err := os.ReadFile(filepath.Join(root, "go.sum"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "go.sum"), sum, 0o644))

	out, err := d.goCmd(t, 3*time.Minute, nil, "test", "-c", "-o", d.bin, ".")
	require.NoError(t, err, "building the demo tests:\n%s", out)
	return d
}

func (d *demo) env(extra []string) []string {
	env := append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off", "GOTOOLCHAIN=local")
	return append(env, extra...)
}

func (d *demo) goCmd(t *testing.T, timeout time.Duration, env []string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, d.goBin, args...)
	cmd.Dir = d.dir
	cmd.Env = d.env(env)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// result is the outcome of one run of the demo tests.
type result struct {
	exitErr error
	raw     string            // the whole output
	action  map[string]string // test name -> "pass", "fail", "skip"
	output  map[string]string // test name -> its output
}

// run runs the named demo tests in one process, through test2json as go
// test -json does, and returns what each test did and printed.
func (d *demo) run(t *testing.T, env []string, tests ...string) *result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	pattern := "^(" + strings.Join(tests, "|") + ")$"
	cmd := exec.CommandContext(ctx, d.goBin, "tool", "test2json", "-p", "leakdemo",
		d.bin, "-test.v=test2json", "-test.run", pattern, "-test.count=1", "-test.timeout=60s")
	cmd.Dir = d.dir
	cmd.Env = d.env(env)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r := &result{exitErr: cmd.Run(), action: map[string]string{}, output: map[string]string{}}
	require.NoError(t, ctx.Err(), "the demo run timed out:\n%s%s", stdout.String(), stderr.String())
	var all strings.Builder
	dec := json.NewDecoder(&stdout)
	for dec.More() {
		var ev struct{ Action, Test, Output string }
		require.NoError(t, dec.Decode(&ev), "test2json output")
		all.WriteString(ev.Output)
		if ev.Test == "" {
			continue
		}
		switch ev.Action {
		case "output":
			r.output[ev.Test] += ev.Output
		case "pass", "fail", "skip":
			r.action[ev.Test] = ev.Action
		}
	}
	r.raw = all.String() + stderr.String()
	return r
}

// site is how a report names a line of the demo's tests.
func (d *demo) site(marker, fn string) string {
	n, ok := d.lines[marker]
	if !ok {
		panic("no LINE:" + marker + " in testdata/leakdemo")
	}
	return fmt.Sprintf("%s:%d in %s", d.files[marker], n, fn)
}

// TestSubprocess runs the demo's tests in child processes, one scenario per
// process, and checks their outcome and output.
func TestSubprocess(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a test package in child processes")
	}
	d := buildDemo(t, t.TempDir())

	t.Run("leaking test fails and names its line", func(t *testing.T) {
		t.Parallel()
		r := d.run(t, nil, "TestLeakNewTracker", "TestLeakVerifyNone")
		for name, marker := range map[string]string{
			"TestLeakNewTracker": "leak-newtracker",
			"TestLeakVerifyNone": "leak-verifynone",
		} {
			out := r.output[name]
			assert.Equal(t, "fail", r.action[name], out)
			assert.Contains(t, out, "connleak: "+name+" left 1 resource still open", out)
			testLine := d.site(marker, name)
			require.Contains(t, out, "conn opened at "+testLine, out)
			assert.Contains(t, out, "through "+d.site("connect", "Connect"), out)
			assert.Less(t, strings.Index(out, testLine), strings.Index(out, "client.go:"),
				"the test's own line comes first:\n%s", out)
			assert.Contains(t, out, "CLOSE_WAIT", "the server hung up before the check:\n%s", out)
			assert.Regexp(t, `conn tcp 127\.0\.0\.1:\d+ -> 127\.0\.0\.1:\d+ \(CLOSE_WAIT\), open for \d+`, out)
		}
		assert.Error(t, r.exitErr)
	})

	t.Run("a conn net/http dialed on its own goroutine names no line of net/http", func(t *testing.T) {
		t.Parallel()
		r := d.run(t, nil, "TestLeakHTTPTransport")
		out := r.output["TestLeakHTTPTransport"]
		assert.Equal(t, "fail", r.action["TestLeakHTTPTransport"], out)
		assert.Contains(t, out, "connleak: TestLeakHTTPTransport left 1 resource still open", out)
		assert.NotContains(t, out, "at transport.go", out)
		assert.NotContains(t, out, " in (*Transport).", out)
		assert.Contains(t, out, "conn opened on a net/http goroutine: no line of the program is in its stack", out)
		assert.Contains(t, out, "CLOSE_WAIT", "the server hung up before the check:\n%s", out)
		assert.Contains(t, out, "net/http.(*Transport).dialConn", "the stack is still shown:\n%s", out)
	})

	t.Run("a body nethttp tracks names the test's line, for itself and its conn", func(t *testing.T) {
		t.Parallel()
		r := d.run(t, nil, "TestLeakNetHTTPBody")
		out := r.output["TestLeakNetHTTPBody"]
		assert.Equal(t, "fail", r.action["TestLeakNetHTTPBody"], out)
		assert.Contains(t, out, "connleak: TestLeakNetHTTPBody left 2 resources still open", out)
		at := "opened at " + d.site("nethttp-get", "TestLeakNetHTTPBody") + "\n"
		assert.Contains(t, out, "http.body "+at, out)
		assert.Contains(t, out, "conn "+at, out)
		assert.Contains(t, out, "  held by http.body", out)
		assert.Contains(t, out, "  dialed by:", out)
		assert.NotContains(t, out, "at transport.go", out)
	})

	t.Run("Rows sqlpool tracks fail the test at its line unless closed", func(t *testing.T) {
		t.Parallel()
		r := d.run(t, nil, "TestLeakSQLRows", "TestSQLRowsClosed")
		assert.Equal(t, "pass", r.action["TestSQLRowsClosed"], r.output["TestSQLRowsClosed"])
		assert.NotContains(t, r.output["TestSQLRowsClosed"], "connleak:")
		out := r.output["TestLeakSQLRows"]
		assert.Equal(t, "fail", r.action["TestLeakSQLRows"], out)
		// The checkout the rows keep out of the pool (it carries the rows of
		// the query that took the connection), and the driver connection:
		// each at the query's line.
		assert.Contains(t, out, "connleak: TestLeakSQLRows left 2 resources still open", out)
		at := "opened at " + d.site("sql-rows", "TestLeakSQLRows") + "\n"
		for _, kind := range []string{"sql.checkout", "sql.conn"} {
			assert.Contains(t, out, kind+" "+at, out)
		}
		assert.NotContains(t, out, "at sql.go", "no line of database/sql is the headline:\n%s", out)
		assert.Error(t, r.exitErr)
	})

	t.Run("a pooled connection its server ended while idle fails no test", func(t *testing.T) {
		t.Parallel()
		r := d.run(t, nil, "TestSQLIdleKilled")
		out := r.output["TestSQLIdleKilled"]
		if r.action["TestSQLIdleKilled"] == "skip" && os.Getenv("CI") != "" {
			t.Fatalf("PostgreSQL is required in CI:\n%s", out)
		}
		if r.action["TestSQLIdleKilled"] == "skip" {
			t.Skipf("the demo skipped:\n%s", out)
		}
		assert.Equal(t, "pass", r.action["TestSQLIdleKilled"], out)
		assert.Contains(t, out, "reported: conn tcp ", "the server's close was seen:\n%s", out)
		assert.Contains(t, out, "the dead connection is still in the pool", out)
		assert.NotContains(t, out, "connleak:", out)
		assert.NoError(t, r.exitErr, r.raw)
	})

	t.Run("clean test passes", func(t *testing.T) {
		t.Parallel()
		r := d.run(t, nil, "TestCleanNewTracker", "TestAsyncClose", "TestIgnoreOpenedBy")
		for _, name := range []string{"TestCleanNewTracker", "TestAsyncClose", "TestIgnoreOpenedBy"} {
			assert.Equal(t, "pass", r.action[name], r.output[name])
			assert.NotContains(t, r.output[name], "connleak:")
		}
		assert.NoError(t, r.exitErr, r.raw)
	})

	t.Run("the timeout bounds the wait", func(t *testing.T) {
		t.Parallel()
		r := d.run(t, nil, "TestAsyncTooLate")
		out := r.output["TestAsyncTooLate"]
		assert.Equal(t, "fail", r.action["TestAsyncTooLate"], out)
		assert.Contains(t, out, "conn opened at "+d.site("async-too-late", "TestAsyncTooLate"))
		m := regexp.MustCompile(`waited (\d+)ms for them to close`).FindStringSubmatch(out)
		require.NotNil(t, m, out)
		var ms int
		fmt.Sscan(m[1], &ms)
		assert.GreaterOrEqual(t, ms, 50)
		assert.Less(t, ms, 400, "WithTimeout(50ms) must not wait for the close 2 s later")
	})

	t.Run("parallel tests with their own trackers do not blame each other", func(t *testing.T) {
		t.Parallel()
		r := d.run(t, nil, "TestParallelLeak", "TestParallelClean")
		assert.Equal(t, "fail", r.action["TestParallelLeak"], r.raw)
		assert.Contains(t, r.output["TestParallelLeak"], "conn opened at "+d.site("parallel-leak", "TestParallelLeak"))
		assert.Equal(t, "pass", r.action["TestParallelClean"], r.output["TestParallelClean"])
		assert.NotContains(t, r.output["TestParallelClean"], "connleak:")
		assert.NotContains(t, r.output["TestParallelClean"], "timed out")
	})

	t.Run("parallel tests on the shared tracker do not blame each other", func(t *testing.T) {
		t.Parallel()
		r := d.run(t, nil, "TestSharedParallelLeak", "TestSharedParallelClean")
		assert.Equal(t, "fail", r.action["TestSharedParallelLeak"], r.raw)
		assert.Contains(t, r.output["TestSharedParallelLeak"],
			"conn opened at "+d.site("shared-parallel-leak", "TestSharedParallelLeak"))
		assert.Equal(t, "pass", r.action["TestSharedParallelClean"], r.output["TestSharedParallelClean"])
		assert.NotContains(t, r.output["TestSharedParallelClean"], "connleak:")
		assert.NotContains(t, r.output["TestSharedParallelClean"], "timed out")
	})

	t.Run("IgnoreCurrent ignores what came before", func(t *testing.T) {
		t.Parallel()
		r := d.run(t, nil, "TestIgnoreCurrent", "TestIgnoreCurrentLeak", "TestIgnoreCurrentControl")
		assert.Equal(t, "pass", r.action["TestIgnoreCurrent"], r.output["TestIgnoreCurrent"])

		out := r.output["TestIgnoreCurrentLeak"]
		assert.Equal(t, "fail", r.action["TestIgnoreCurrentLeak"], out)
		assert.Contains(t, out, "left 1 resource still open", out)
		assert.Contains(t, out, "conn opened at "+d.site("ignore-leak-after", "TestIgnoreCurrentLeak"))
		assert.NotContains(t, out, d.site("ignore-leak-before", "TestIgnoreCurrentLeak"))

		out = r.output["TestIgnoreCurrentControl"]
		assert.Equal(t, "fail", r.action["TestIgnoreCurrentControl"], out)
		assert.Contains(t, out, "conn opened at "+d.site("ignore-control-before", "TestIgnoreCurrentControl"))
	})

	t.Run("WithGoroutines reports a goroutine and a socket in one failure", func(t *testing.T) {
		t.Parallel()
		r := d.run(t, nil, "TestGoroutineAndSocket")
		out := r.output["TestGoroutineAndSocket"]
		assert.Equal(t, "fail", r.action["TestGoroutineAndSocket"], out)
		assert.Equal(t, 1, strings.Count(out, "connleak: "), "one report:\n%s", out)
		assert.Contains(t, out, "left 1 resource still open and leaked goroutines", out)
		assert.Contains(t, out, "conn opened at "+d.site("goroutine-socket", "TestGoroutineAndSocket"))
		assert.Contains(t, out, "leakdemo.leakedWorker")
		assert.NotContains(t, out, "tracker.(*Tracker).run", "pollers are not leaks")

		// The goroutine check is process-wide, as goleak's is: the clean
		// case runs in a process of its own.
		r = d.run(t, nil, "TestGoroutinesClean")
		assert.Equal(t, "pass", r.action["TestGoroutinesClean"], r.output["TestGoroutinesClean"])
	})

	t.Run("WithProcessSockets finds a socket nothing wrapped", func(t *testing.T) {
		t.Parallel()
		r := d.run(t, nil, "TestProcessSockets", "TestProcessSocketsClean")
		assert.Equal(t, "pass", r.action["TestProcessSocketsClean"], r.output["TestProcessSocketsClean"])

		out := r.output["TestProcessSockets"]
		assert.Equal(t, "fail", r.action["TestProcessSockets"], out)
		unwrapped := regexp.MustCompile(`unwrapped: (\S+) -> (\S+)`).FindStringSubmatch(out)
		wrapped := regexp.MustCompile(`: wrapped: (\S+) -> (\S+)`).FindStringSubmatch(out)
		require.NotNil(t, unwrapped, out)
		require.NotNil(t, wrapped, out)
		_, sockets, ok := strings.Cut(out, "no tracker wrapped (process sweep")
		require.True(t, ok, "a section for unwrapped sockets:\n%s", out)
		assert.Contains(t, sockets, fmt.Sprintf("socket tcp %s -> %s, CLOSE_WAIT", unwrapped[1], unwrapped[2]))
		assert.NotContains(t, sockets, wrapped[1]+" -> ", "the wrapped conn is reported with its stack, not as unwrapped")
		assert.Contains(t, out, "conn opened at "+d.site("process-wrapped", "TestProcessSockets"))
	})

	t.Run("IgnoreCurrent and verifying another tracker start no default tracker", func(t *testing.T) {
		t.Parallel()
		// One process each: once made, the default tracker stays.
		r := d.run(t, nil, "TestNoDefaultPoller")
		assert.Equal(t, "pass", r.action["TestNoDefaultPoller"], r.raw)
		assert.NotContains(t, r.raw, "connleak:")
		r = d.run(t, nil, "TestDefaultPollerControl")
		assert.Equal(t, "pass", r.action["TestDefaultPollerControl"], r.raw)
	})

	t.Run("VerifyTestMain passes a clean package that used the default tracker", func(t *testing.T) {
		t.Parallel()
		r := d.run(t, []string{"LEAKDEMO_MAIN=verify"}, "TestMainClean")
		assert.Equal(t, "pass", r.action["TestMainClean"], r.raw)
		assert.NoError(t, r.exitErr, r.raw)
		assert.NotContains(t, r.raw, "connleak:")
	})

	t.Run("VerifyTestMain fails a leaking package under go test", func(t *testing.T) {
		t.Parallel()
		out, err := d.goCmd(t, 2*time.Minute, []string{"LEAKDEMO_MAIN=verify"},
			"test", "-count=1", "-run", "^TestMainLeak$", ".")
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, out)
		assert.Equal(t, 1, exit.ExitCode(), out)
		assert.Contains(t, out, "connleak: the package's tests left 1 resource still open", out)
		assert.Contains(t, out, "conn opened at "+d.site("main-leak", "TestMainLeak"), out)
		assert.Contains(t, out, "FAIL\tleakdemo", out)
	})
}
