package testutil

import (
	"slices"
	"strings"
	"sync"
	"time"
	"weak"

	"github.com/connleak/connleak/tracker"
	"go.uber.org/goleak"
)

// scope says whose leaks a verification looks for.
type scope struct {
	name      string // the test's name, "" when unknown
	attribute bool   // shared tracker: leave other tests' resources to them
	main      bool   // VerifyTestMain: the whole package
}

// findings is what one verification found still open.
type findings struct {
	open       []tracker.Resource
	collected  []tracker.Leak
	sockets    []tracker.Socket
	goroutines goroutineResult
	notes      []string
	waited     time.Duration
	timeout    time.Duration
}

func (f *findings) empty() bool {
	return len(f.open) == 0 && len(f.collected) == 0 && len(f.sockets) == 0 && f.goroutines == (goroutineResult{})
}

// goroutineResult is what the goroutine check found: goleak's report of the
// goroutines still running, or its refusal of the options it was given. Both
// are nil when the check passed.
type goroutineResult struct {
	leaked  error
	refused error
}

// Backoff between checks: from minBackoff, doubling, at most maxBackoff.
const (
	minBackoff = time.Millisecond
	maxBackoff = 50 * time.Millisecond
)

// verifyTest verifies cfg and reports what it found on t.
func verifyTest(t TestingT, cfg *config, s scope) {
	if h, ok := t.(helper); ok {
		h.Helper()
	}
	for _, err := range cfg.errs {
		t.Errorf("connleak/testutil: invalid option: %v", err)
	}
	f := verify(cfg, s)
	if lg, ok := t.(logger); ok {
		for _, n := range f.notes {
			lg.Logf("connleak/testutil: %s", n)
		}
	}
	if !f.empty() {
		markReported(cfg.tracker, f.collected)
		fillStates(cfg.tracker, f.open)
		t.Errorf("%s", formatReport(f, s))
	}
}

// fillStates sets the kernel's state of each open resource's socket from the
// process sweep, where the system has one: a tracker probes only the sockets
// it suspects, so a healthy connection's last probed state may be unknown or
// old. The sweep runs once per failure, never on the passing path.
func fillStates(tr *tracker.Tracker, open []tracker.Resource) {
	if len(open) == 0 {
		return
	}
	socks, err := tr.ProcessSockets()
	if err != nil {
		return
	}
	state := make(map[uint64]string, len(socks))
	for _, s := range socks {
		if s.Tracked && s.State != "" {
			state[s.ResourceID] = s.State
		}
	}
	for i := range open {
		if st, ok := state[open[i].ID]; ok {
			open[i].SocketState = st
		}
	}
}

// verify checks until nothing is left or the timeout has passed, and returns
// the last findings. Its name appears in the stacks of every goroutine that
// is verifying, which is how the goroutine check leaves them out.
func verify(cfg *config, s scope) *findings {
	start := time.Now()
	deadline := start.Add(cfg.timeout)
	var gch chan goroutineResult
	if cfg.goroutines {
		gch = make(chan goroutineResult, 1)
		go goleakFind(gch, deadline, cfg.goleakOptions())
	}
	var f *findings
	backoff := minBackoff
	verdicts := map[uint64]bool{}
	for {
		f = check(cfg, s, verdicts)
		now := time.Now()
		if f.empty() || !now.Before(deadline) {
			break
		}
		time.Sleep(min(backoff, deadline.Sub(now)))
		backoff = min(2*backoff, maxBackoff)
	}
	if gch != nil {
		f.goroutines = <-gch
	}
	f.waited, f.timeout = time.Since(start), cfg.timeout
	return f
}

// goleakFind runs goleak until it finds no leaked goroutine or there is no
// time left for another call, and sends what the last call found.
//
// A goleak.Find that finds goroutines returns only after retrying on a
// schedule of its own, which the goleak this module requires has no option to
// shorten. So the loop measures each call and calls again only while the time
// left holds another call as long as the last one: the wait ends near the
// deadline, not a call later, however long goleak's retries take. The first
// call still runs its retries in full, even past a shorter timeout.
func goleakFind(ch chan<- goroutineResult, deadline time.Time, opts []goleak.Option) {
	validated := false
	for {
		start := time.Now()
		err := goleak.Find(opts...)
		took := time.Since(start)
		if err == nil {
			ch <- goroutineResult{}
			return
		}
		if !validated {
			if refused(opts) {
				ch <- goroutineResult{refused: err}
				return
			}
			validated = true
		}
		if time.Until(deadline) < took {
			ch <- goroutineResult{leaked: err}
			return
		}
	}
}

// refused reports whether goleak refuses opts, as opposed to having found
// goroutines with them, without reading its error's text, whose wording is
// goleak's to change. goleak decides on its options before it looks at a
// single goroutine, so the same options plus goleak.IgnoreCurrent(), a
// snapshot of every goroutine running now, are refused just the same; while
// with the snapshot the only goroutine left to find is one started in the
// instant between the snapshot and the call that then outlives goleak's
// retries. Such a goroutine would have to turn up twice in a row, so a
// refusal must be seen twice; a refusal returns at once both times.
func refused(opts []goleak.Option) bool {
	for range 2 {
		if goleak.Find(append(slices.Clip(opts), goleak.IgnoreCurrent())...) == nil {
			return false
		}
	}
	return true
}

// Functions whose goroutines the goroutine check never reports: testutil's
// own (the verifying goroutine, blocked in verify, and goleakFind's, of this
// and of other tests verifying in parallel) and the poller of the
// process-wide tracker.Default(), which runs for the life of the process.
// The poller of a tracker made with tracker.New and never closed is
// reported, since that is a leak, unless the tracker verified is one given
// by WithTracker: it is still open while it is verified, and goleak cannot
// tell one tracker's poller from another's.
var goleakIgnored = []goleak.Option{
	goleak.IgnoreAnyFunction("github.com/connleak/connleak/testutil.verify"),
	goleak.IgnoreAnyFunction("github.com/connleak/connleak/testutil.goleakFind"),
	IgnoreDefaultPoller(),
}

const trackerPoller = "github.com/connleak/connleak/tracker.(*Tracker).run"

func (c *config) goleakOptions() []goleak.Option {
	opts := slices.Clone(c.goleakOpts)
	opts = append(opts, c.goleakBase...)
	opts = append(opts, goleakIgnored...)
	if c.trackerSet {
		opts = append(opts, goleak.IgnoreAnyFunction(trackerPoller))
	}
	return opts
}

// check looks once at the tracker (and the process's sockets, with
// WithProcessSockets). verdicts caches, across the checks of one
// verification, what the stacks of a resource said about it.
func check(cfg *config, s scope, verdicts map[uint64]bool) *findings {
	tr := cfg.tracker
	f := &findings{}
	// Poll probes socket states for the report and moves resources the
	// runtime collected into Leaks.
	tr.Poll()
	for _, r := range tr.Open() {
		if cfg.keep(r, s, verdicts) {
			f.open = append(f.open, r)
		}
	}
	for _, l := range tr.Leaks() {
		if l.Reason == tracker.ReasonCollected && cfg.keep(l.Resource, s, verdicts) && !wasReported(tr, l.ID) {
			f.collected = append(f.collected, l)
		}
	}
	if cfg.processSockets {
		socks, note := unwrappedSockets(cfg)
		f.sockets = socks
		if note != "" {
			f.notes = append(f.notes, note)
		}
	}
	return f
}

// keep reports whether r is this verification's business.
func (c *config) keep(r tracker.Resource, s scope, verdicts map[uint64]bool) bool {
	if !c.since.IsZero() && !r.OpenedAt.After(c.since) {
		return false
	}
	if r.Idle || (r.HeldBy != nil && r.HeldBy.Idle) {
		// Idle in a pool, with its socket: the pool's to keep or close,
		// whether or not its server has closed it meanwhile.
		return false
	}
	attribute := s.attribute && s.name != ""
	if len(c.ignoreFuncs) == 0 && !attribute {
		return true
	}
	// The verdict depends on the stacks only; an accepted connection gains
	// its first-I/O stack later, so it is cached once that is known.
	if v, ok := verdicts[r.ID]; ok {
		return v
	}
	v := true
	if len(c.ignoreFuncs) > 0 && openedBy(r, c.ignoreFuncs) {
		v = false
	} else if attribute {
		if owner := ownerTest(r); owner != "" && owner != rootTest(s.name) {
			v = false
		}
	}
	if (!r.Accepted || !r.FirstIOStack.IsZero()) && r.HeldBy == nil { // a holder comes and goes
		verdicts[r.ID] = v
	}
	return v
}

// ownStacks are the stacks that say who owns r: its holder's open site
// first, when something holds it (see tracker.Handle.Hold), then its own
// open site and first Read or Write.
func ownStacks(r tracker.Resource) []tracker.Stack {
	if r.HeldBy != nil {
		return []tracker.Stack{r.HeldBy.Stack, r.Stack, r.FirstIOStack}
	}
	return []tracker.Stack{r.Stack, r.FirstIOStack}
}

// openedBy reports whether one of r's open-site stacks, or its holder's,
// passes through one of the functions.
func openedBy(r tracker.Resource, funcs []string) bool {
	for _, st := range ownStacks(r) {
		for _, f := range st.Frames() {
			for _, name := range funcs {
				if f.Function == name || strings.HasSuffix(f.Function, "/"+name) {
					return true
				}
			}
		}
	}
	return false
}

// ownerTest is the top-level test, benchmark, fuzz test or example whose
// code opened r, found as the outermost frame of a _test.go file in its
// stack that belongs to such a function; "" when there is none (the resource
// was opened on a goroutine no test function started, or the stack was cut).
func ownerTest(r tracker.Resource) string {
	owner := ""
	for _, st := range ownStacks(r) {
		for _, f := range st.Frames() {
			if !strings.HasSuffix(f.File, "_test.go") {
				continue
			}
			if name := testFuncRoot(f.Function); name != "" {
				owner = name
			}
		}
		if owner != "" {
			return owner
		}
	}
	return ""
}

// testFuncRoot returns "TestX" for "example.com/p.TestX" and its closures
// ("example.com/p.TestX.func1.2"), and "" for functions that are not tests.
func testFuncRoot(fn string) string {
	base := fn[strings.LastIndexByte(fn, '/')+1:]
	dot := strings.IndexByte(base, '.')
	if dot < 0 {
		return ""
	}
	base = base[dot+1:]
	if i := strings.IndexByte(base, '.'); i >= 0 {
		base = base[:i]
	}
	for _, prefix := range []string{"Test", "Benchmark", "Fuzz", "Example"} {
		if rest, ok := strings.CutPrefix(base, prefix); ok {
			if rest == "" || !(rest[0] >= 'a' && rest[0] <= 'z') {
				return base
			}
		}
	}
	return ""
}

// rootTest is the top-level test of a test name: "TestX" for "TestX/sub".
func rootTest(name string) string {
	if i := strings.IndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return name
}

// reported remembers the collected resources already reported on shared
// trackers, so that a resource collected once fails one test, not every test
// verified after it. Keys hold the tracker weakly.
var reported sync.Map // reportKey -> struct{}

type reportKey struct {
	tr weak.Pointer[tracker.Tracker]
	id uint64
}

func wasReported(tr *tracker.Tracker, id uint64) bool {
	_, ok := reported.Load(reportKey{weak.Make(tr), id})
	return ok
}

func markReported(tr *tracker.Tracker, ls []tracker.Leak) {
	for _, l := range ls {
		reported.Store(reportKey{weak.Make(tr), l.ID}, struct{}{})
	}
}
