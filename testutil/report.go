package testutil

import (
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/connleak/connleak/tracker"
)

// maxListed bounds how many resources of one group, and how many unwrapped
// sockets, a report lists one by one.
const maxListed = 10

// formatReport makes the one failure message of a verification.
func formatReport(f *findings, s scope) string {
	var b strings.Builder
	var parts []string
	if n := len(f.open); n > 0 {
		parts = append(parts, plural(n, "resource", "resources")+" still open")
	}
	if n := len(f.collected); n > 0 {
		parts = append(parts, plural(n, "resource", "resources")+" garbage-collected without Close")
	}
	if n := len(f.sockets); n > 0 {
		parts = append(parts, plural(n, "socket", "sockets")+" that no tracker wrapped")
	}
	switch {
	case f.goroutines.refused != nil:
		parts = append(parts, "a failed goroutine check")
	case f.goroutines.leaked != nil:
		parts = append(parts, "leaked goroutines")
	}
	who := "the test"
	switch {
	case s.main:
		who = "the package's tests"
	case s.name != "":
		who = s.name
	}
	waited := fmt.Sprintf("waited %s for them to close", roundDur(f.waited))
	if f.timeout == 0 {
		waited = "checked once: WithTimeout(0)"
	}
	fmt.Fprintf(&b, "connleak: %s left %s (%s)\n", who, joinAnd(parts), waited)

	now := time.Now()
	for _, g := range tracker.GroupResources(f.open) {
		b.WriteString("\n")
		writeGroup(&b, g, now, false)
	}
	for _, g := range tracker.GroupLeaks(f.collected) {
		var gone []tracker.Resource
		for _, l := range g.Leaks {
			gone = append(gone, l.Resource)
		}
		b.WriteString("\n")
		writeGroup(&b, tracker.ResourceGroup{Site: g.Site, Kind: g.Kind, Resources: gone}, now, true)
	}
	if len(f.sockets) > 0 {
		b.WriteString("\n")
		writeSockets(&b, f.sockets)
	}
	switch {
	case f.goroutines.refused != nil:
		fmt.Fprintf(&b, "\nthe goroutine check failed: goleak: %v\n", f.goroutines.refused)
	case f.goroutines.leaked != nil:
		// goleak's report, shown as it wrote it.
		b.WriteString("\ngoroutines still running (goleak):\n")
		indent(&b, f.goroutines.leaked.Error(), "    ")
	}
	return strings.TrimRight(b.String(), "\n")
}

func writeGroup(b *strings.Builder, g tracker.ResourceGroup, now time.Time, collected bool) {
	first := g.Resources[0]
	noun := string(first.Kind)
	if len(g.Resources) > 1 {
		noun = fmt.Sprintf("%d %ss", len(g.Resources), first.Kind)
	}
	verb := "opened"
	if first.Accepted {
		verb = "accepted"
		if !first.FirstIOStack.IsZero() {
			verb = "accepted and first used"
		}
	}
	what := ""
	if collected {
		what = " garbage-collected without Close,"
	}
	line, inTest := testLine(first)
	switch {
	case inTest:
		fmt.Fprintf(b, "%s%s %s at %s\n", noun, what, verb, frameShort(line))
	case g.Site.Frame != (tracker.Frame{}):
		fmt.Fprintf(b, "%s%s %s at %s\n", noun, what, verb, frameShort(g.Site.Frame))
	case g.Site.Goroutine != "":
		// A client library (an http.Transport, a pool) dialed it on a
		// goroutine of its own, for a call the test made earlier: the
		// library is the one lead there is. Its frames are shown below,
		// never passed off as the test's line.
		fmt.Fprintf(b, "%s%s %s %s\n", noun, what, verb, g.Site)
	default:
		fmt.Fprintf(b, "%s%s %s: %s\n", noun, what, verb, g.Site)
	}
	for i, r := range g.Resources {
		if i == maxListed {
			fmt.Fprintf(b, "    ... and %d more\n", len(g.Resources)-maxListed)
			break
		}
		b.WriteString("    " + describe(r, now, collected) + "\n")
	}
	if user := g.Site.Frame; inTest && user != (tracker.Frame{}) && user != line {
		fmt.Fprintf(b, "  through %s\n", frameShort(user))
	}
	b.WriteString(first.StackReport())
}

// testLine is the test's own line in r's stacks: the innermost frame of a
// test function (TestX, or a closure in it such as a subtest's), so that a
// helper in a _test.go file is named by the line of the test that called it;
// failing that, the innermost frame of a _test.go file.
func testLine(r tracker.Resource) (tracker.Frame, bool) {
	stacks := []tracker.Stack{r.Stack}
	if r.Accepted {
		stacks = []tracker.Stack{r.FirstIOStack, r.Stack}
	}
	if r.HeldBy != nil {
		// The holder's line first: the connection's own stacks are often a
		// library's goroutine.
		stacks = append([]tracker.Stack{r.HeldBy.Stack}, stacks...)
	}
	var inTestFile tracker.Frame
	found := false
	for _, st := range stacks {
		for _, f := range st.Frames() {
			if !strings.HasSuffix(f.File, "_test.go") {
				continue
			}
			if testFuncRoot(f.Function) != "" {
				return f, true
			}
			if !found {
				inTestFile, found = f, true
			}
		}
	}
	return inTestFile, found
}

// frameShort is "leak_test.go:17 in TestLeak" for a frame: the file's base
// name, as go test prints locations, and the function without its import
// path.
func frameShort(f tracker.Frame) string {
	if f.Function == "" && f.File == "" {
		return "an unknown site"
	}
	fn := f.Function[strings.LastIndexByte(f.Function, '/')+1:]
	if dot := strings.IndexByte(fn, '.'); dot >= 0 {
		fn = fn[dot+1:]
	}
	return fmt.Sprintf("%s:%d in %s", filepath.Base(f.File), f.Line, fn)
}

// describe is one resource on one line: what it is, its addresses and
// state, and how long it has been open.
func describe(r tracker.Resource, now time.Time, collected bool) string {
	if collected {
		return r.String() + ", open for " + roundDur(r.ClosedAt.Sub(r.OpenedAt)) + " before it was collected"
	}
	return r.String() + ", open for " + roundDur(now.Sub(r.OpenedAt))
}

func writeSockets(b *strings.Builder, socks []tracker.Socket) {
	fmt.Fprintf(b, "%s that no tracker wrapped (process sweep: addresses and states only, no stack):\n",
		plural(len(socks), "socket", "sockets"))
	for i, s := range socks {
		if i == maxListed {
			fmt.Fprintf(b, "    ... and %d more\n", len(socks)-maxListed)
			break
		}
		b.WriteString("    " + describeSocket(s) + "\n")
	}
}

func indent(b *strings.Builder, text, prefix string) {
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		b.WriteString(prefix + line + "\n")
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

func joinAnd(parts []string) string {
	switch len(parts) {
	case 0:
		return "nothing"
	case 1:
		return parts[0]
	}
	return strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
}

// roundDur rounds for reading: milliseconds under ten seconds, then tenths.
func roundDur(d time.Duration) string {
	if d < time.Millisecond {
		return "<1ms"
	}
	if d < 10*time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(100 * time.Millisecond).String()
}
