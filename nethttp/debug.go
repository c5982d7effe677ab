package nethttp

import (
	"bufio"
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"html/template"
	"io"
	"math"
	"mime"
	"net/http"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"github.com/connleak/connleak/tracker"
)

// The page's bounds. Grouping by open site keeps a page small however many
// resources one line opened; these keep it small when many lines did, or
// the process holds many sockets no wrapper saw. Counts are always whole.
const (
	debugMaxGroups   = 100 // groups listed in each of the leaks and the open resources
	debugMaxExamples = 10  // resources listed in one group
	debugMaxSockets  = 256 // unwrapped sockets listed
	debugMaxLabel    = 200 // bytes of a resource's label shown
)

// DebugHandler returns a handler that serves a page of tr's present state,
// in the manner of net/http/pprof's pages:
//
//   - the health status (tracker.Tracker.Health) and the thresholds crossed;
//   - the leaks (Leaks) and the open resources (Open), each grouped by open
//     site (tracker.GroupLeaks, tracker.GroupResources), largest group first,
//     with the group's count, its resources counted by state, the first few
//     resources' addresses, and the stacks of the first one;
//   - the process's sockets that no wrapper of tr owns (ProcessSockets, on
//     Linux), with addresses and states: what lsof -p PID -iTCP shows, from
//     inside.
//
// Socket states are spelled as ss spells them (ESTAB, CLOSE-WAIT, LISTEN;
// see tracker.SSName). A tracked socket's state is read by the process sweep
// as the page is made, or else is the tracker's last probe; a resource with
// no socket state reads "active" or "peer-closed", a listener "LISTEN". The
// leaks are the tracker's judgement as of its last poll: the page probes,
// polls and changes nothing.
//
// Views. The query parameter format chooses: format=text (plain text, for
// curl and terminals), format=json (a DebugReport), format=html (a table of
// groups, no JavaScript). Without it the Accept header chooses, so a
// browser gets HTML and curl gets text: text/html preferred over text/plain
// means HTML, application/json preferred means JSON, and anything else (no
// Accept header, */*) means text, as pprof's debug=1 views are text. Only
// GET and HEAD are served.
//
// Bounds. Each view lists at most 100 groups of leaks and of open
// resources, 10 resources in a group and 256 unwrapped sockets, with whole
// counts, so ten thousand connections opened by one line make a page of a
// few kilobytes.
//
// Mounting. Nothing mounts the handler by itself: importing nethttp
// registers nothing on http.DefaultServeMux. The page shows the program's
// addresses, labels, file paths and stacks, so serve it as pprof should be
// served: on a listener of its own bound to loopback, or behind
// authentication, never on the service's public port.
//
//	mux := http.NewServeMux()
//	mux.Handle("/debug/connleak", nethttp.DebugHandler(tr))
//	go http.ListenAndServe("127.0.0.1:6060", mux) // loopback only
//
// A nil tr means tracker.Default().
func DebugHandler(tr *tracker.Tracker) http.Handler {
	if tr == nil {
		tr = tracker.Default()
	}
	return &debugHandler{tr: tr}
}

// DebugReport is the document DebugHandler serves with format=json, and
// what its text and HTML views show. The JSON names are those of the field
// tags, in snake case; they are stable: fields may be added, none renamed
// or removed.
type DebugReport struct {
	Time   time.Time   `json:"time"` // when the page was made
	PID    int         `json:"pid"`
	Health DebugHealth `json:"health"`
	// Leaks are the tracker's leaks grouped by open site and reason: open
	// resources judged leaked, then recent ones garbage-collected without
	// Close.
	Leaks DebugGroups `json:"leaks"`
	// Open are the open resources grouped by open site.
	Open DebugGroups `json:"open"`
	// Sockets is the process sweep: the sockets no wrapper of the tracker
	// owns.
	Sockets DebugSockets `json:"sockets"`
}

// DebugHealth is tracker.Health as DebugReport shows it.
type DebugHealth struct {
	Status  string   `json:"status"`  // "ok", "warning" or "critical"
	Reasons []string `json:"reasons"` // the thresholds crossed, the worst first; empty when ok
	// CloseWait is how many tracked connections are open while their peer
	// has closed; OldestCloseWaitSeconds how long the oldest has been so.
	CloseWait              int     `json:"close_wait"`
	OldestCloseWaitSeconds float64 `json:"oldest_close_wait_seconds"`
	FDLimit                uint64  `json:"fd_limit"` // the soft RLIMIT_NOFILE; 0 when none
}

// DebugGroups is a list of groups of resources and its totals.
type DebugGroups struct {
	Count      int          `json:"count"`       // resources in all the groups
	GroupCount int          `json:"group_count"` // groups in all
	Groups     []DebugGroup `json:"groups"`      // the 100 largest, largest first
}

// DebugGroup is the resources of one kind opened at one site (for leaks,
// also leaked for one reason).
type DebugGroup struct {
	Kind   string    `json:"kind"`             // "conn", "listener", "http.body", ...
	Reason string    `json:"reason,omitempty"` // why they leaked (tracker.Reason's words); leaks only
	Site   DebugSite `json:"site"`
	Count  int       `json:"count"`
	// States counts the group's resources by state (see DebugResource.State).
	States map[string]int `json:"states"`
	// Resources are the group's first 10 resources.
	Resources []DebugResource `json:"resources"`
	// Stacks is the first resource's stacks, as tracker.Resource.StackReport
	// prints them: the user's line first in each.
	Stacks string `json:"stacks"`
}

// DebugSite is a tracker.Site: the user's line that owns the resources, or
// the library whose goroutine opened them.
type DebugSite struct {
	Text      string `json:"text"` // tracker.Site.String
	Function  string `json:"function,omitempty"`
	File      string `json:"file,omitempty"`
	Line      int    `json:"line,omitempty"`
	Goroutine string `json:"goroutine,omitempty"` // the library, when no line of the program is in the stack
}

// DebugResource is one resource of a group.
type DebugResource struct {
	ID       uint64 `json:"id"` // tracker.Resource.ID
	Network  string `json:"network,omitempty"`
	Local    string `json:"local,omitempty"`
	Remote   string `json:"remote,omitempty"`
	Accepted bool   `json:"accepted,omitempty"` // accepted by a wrapped listener, rather than dialed
	Label    string `json:"label,omitempty"`    // the integration's label, cut to 200 bytes
	// State is the socket's state as ss names it ("ESTAB", "CLOSE-WAIT",
	// "LISTEN"), or for a resource without one "active", "peer-closed" or
	// "closed".
	State        string    `json:"state"`
	OpenedAt     time.Time `json:"opened_at"`
	PeerClosedAt time.Time `json:"peer_closed_at,omitzero"`
	// ForSeconds is how long it has been leaking (tracker.Leak.For); leaks
	// only.
	ForSeconds float64 `json:"for_seconds,omitempty"`
}

// DebugSockets is the process sweep's part of a DebugReport.
type DebugSockets struct {
	// Error says why there is no sweep (it reads /proc: Linux only); the
	// other fields are then empty.
	Error   string `json:"error,omitempty"`
	Tracked int    `json:"tracked"` // sockets a wrapper of the tracker owns, left out below
	Count   int    `json:"count"`   // sockets no wrapper of the tracker owns
	// Summary counts them by network and state, as ss -s would.
	Summary []DebugSocketCount `json:"summary"`
	// Sockets are the first 256 of them by descriptor.
	Sockets []DebugSocket `json:"sockets"`
}

// DebugSocketCount is how many unwrapped sockets share a network and state.
type DebugSocketCount struct {
	Network string `json:"network"`
	State   string `json:"state,omitempty"` // as ss names it; empty for sockets other than TCP
	Count   int    `json:"count"`
}

// DebugSocket is one socket of the process that no wrapper owns.
type DebugSocket struct {
	FD      int    `json:"fd"`
	Network string `json:"network"` // "tcp", "tcp6", "udp", "unix", ...
	Local   string `json:"local,omitempty"`
	Remote  string `json:"remote,omitempty"`
	State   string `json:"state,omitempty"` // as ss names it; empty for sockets other than TCP
}

type debugHandler struct {
	tr *tracker.Tracker
}

func (h *debugHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	format := r.URL.Query().Get("format")
	switch format {
	case "":
		format = formatFromAccept(r.Header.Values("Accept"))
		w.Header().Add("Vary", "Accept")
	case "text", "json", "html":
	default:
		http.Error(w, fmt.Sprintf("unknown format %q: use text, json or html", format), http.StatusBadRequest)
		return
	}
	rep := buildDebugReport(h.tr, time.Now())
	hdr := w.Header()
	hdr.Set("Cache-Control", "no-store")
	hdr.Set("X-Content-Type-Options", "nosniff")
	switch format {
	case "json":
		hdr.Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	case "html":
		var buf bytes.Buffer
		if err := debugPage.Execute(&buf, rep); err != nil {
			http.Error(w, "connleak: rendering the page: "+err.Error(), http.StatusInternalServerError)
			return
		}
		hdr.Set("Content-Type", "text/html; charset=utf-8")
		// The page needs no script, image or request of its own: a label or
		// address that slipped past escaping still runs nothing.
		hdr.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.Write(buf.Bytes())
	default:
		hdr.Set("Content-Type", "text/plain; charset=utf-8")
		writeDebugText(w, rep)
	}
}

// formatFromAccept chooses the view for an Accept header by its quality
// values: the offer with the highest q, ties going to text, then HTML.
func formatFromAccept(accept []string) string {
	offers := []struct{ format, typ string }{
		{"text", "text/plain"}, {"html", "text/html"}, {"json", "application/json"},
	}
	if len(accept) == 0 {
		return "text"
	}
	best, bestQ := "text", 0.0
	for _, o := range offers {
		if q := acceptQuality(accept, o.typ); q > bestQ {
			best, bestQ = o.format, q
		}
	}
	return best
}

// acceptQuality is the q the Accept header gives typ: that of the most
// specific media range matching it (type/subtype, then type/*, then */*),
// 0 when none does.
func acceptQuality(accept []string, typ string) float64 {
	major, _, _ := strings.Cut(typ, "/")
	q, specificity := 0.0, -1
	for _, line := range accept {
		for _, part := range strings.Split(line, ",") {
			mt, params, err := mime.ParseMediaType(strings.TrimSpace(part))
			if err != nil {
				continue
			}
			s := -1
			switch mt {
			case typ:
				s = 2
			case major + "/*":
				s = 1
			case "*/*":
				s = 0
			}
			if s <= specificity {
				continue
			}
			v := 1.0
			if p, ok := params["q"]; ok {
				f, err := strconv.ParseFloat(p, 64)
				if err != nil || math.IsNaN(f) {
					continue
				}
				v = min(max(f, 0), 1)
			}
			q, specificity = v, s
		}
	}
	return q
}

// buildDebugReport reads the tracker once for every view.
func buildDebugReport(tr *tracker.Tracker, now time.Time) DebugReport {
	rep := DebugReport{Time: now, PID: os.Getpid()}

	h := tr.Health()
	rep.Health = DebugHealth{
		Status:                 h.Status.String(),
		Reasons:                append([]string{}, h.Reasons...),
		CloseWait:              h.CloseWait,
		OldestCloseWaitSeconds: h.OldestCloseWait.Seconds(),
		FDLimit:                h.FDLimit,
	}

	// The sweep reads every socket's state now; a tracked socket's record
	// holds only the state of its last probe, and a healthy connection is
	// seldom probed.
	live := map[uint64]string{}
	socks, err := tr.ProcessSockets()
	if err != nil {
		rep.Sockets.Error = err.Error()
	}
	rep.Sockets.Summary, rep.Sockets.Sockets = []DebugSocketCount{}, []DebugSocket{}
	counts := map[DebugSocketCount]int{}
	for _, s := range socks {
		if s.Tracked {
			rep.Sockets.Tracked++
			live[s.ResourceID] = s.State
			continue
		}
		rep.Sockets.Count++
		ds := DebugSocket{FD: s.FD, Network: s.Network, Local: s.LocalAddr, Remote: s.RemoteAddr, State: tracker.SSName(s.State)}
		counts[DebugSocketCount{Network: ds.Network, State: ds.State}]++
		if len(rep.Sockets.Sockets) < debugMaxSockets {
			rep.Sockets.Sockets = append(rep.Sockets.Sockets, ds)
		}
	}
	for k, n := range counts {
		k.Count = n
		rep.Sockets.Summary = append(rep.Sockets.Summary, k)
	}
	sort.Slice(rep.Sockets.Summary, func(i, j int) bool {
		a, b := rep.Sockets.Summary[i], rep.Sockets.Summary[j]
		if a.Count != b.Count {
			return a.Count > b.Count
		}
		if a.Network != b.Network {
			return a.Network < b.Network
		}
		return a.State < b.State
	})

	leaks := tr.Leaks()
	lgs := tracker.GroupLeaks(leaks)
	rep.Leaks = DebugGroups{Count: len(leaks), GroupCount: len(lgs), Groups: []DebugGroup{}}
	for _, g := range lgs[:min(len(lgs), debugMaxGroups)] {
		dg := newDebugGroup(g.Kind, g.Site, len(g.Leaks), g.Leaks[0].Resource)
		dg.Reason = g.Reason.String()
		for i, l := range g.Leaks {
			d := newDebugResource(l.Resource, live)
			dg.States[d.State]++
			if i < debugMaxExamples {
				d.ForSeconds = l.For.Seconds()
				dg.Resources = append(dg.Resources, d)
			}
		}
		rep.Leaks.Groups = append(rep.Leaks.Groups, dg)
	}

	open := tr.Open()
	rgs := tracker.GroupResources(open)
	rep.Open = DebugGroups{Count: len(open), GroupCount: len(rgs), Groups: []DebugGroup{}}
	for _, g := range rgs[:min(len(rgs), debugMaxGroups)] {
		dg := newDebugGroup(g.Kind, g.Site, len(g.Resources), g.Resources[0])
		for i, r := range g.Resources {
			d := newDebugResource(r, live)
			dg.States[d.State]++
			if i < debugMaxExamples {
				dg.Resources = append(dg.Resources, d)
			}
		}
		rep.Open.Groups = append(rep.Open.Groups, dg)
	}
	return rep
}

func newDebugGroup(kind tracker.Kind, site tracker.Site, count int, first tracker.Resource) DebugGroup {
	return DebugGroup{
		Kind:  string(kind),
		Count: count,
		Site: DebugSite{
			Text:      site.String(),
			Function:  site.Function,
			File:      site.File,
			Line:      site.Line,
			Goroutine: site.Goroutine,
		},
		States:    map[string]int{},
		Resources: []DebugResource{},
		Stacks:    first.StackReport(),
	}
}

func newDebugResource(r tracker.Resource, live map[uint64]string) DebugResource {
	return DebugResource{
		ID:           r.ID,
		Network:      r.Network,
		Local:        r.LocalAddr,
		Remote:       r.RemoteAddr,
		Accepted:     r.Accepted,
		Label:        clip(r.Label, debugMaxLabel),
		State:        debugState(r, live),
		OpenedAt:     r.OpenedAt,
		PeerClosedAt: r.PeerClosedAt,
	}
}

// debugState is the resource's state for the page: its socket's state as ss
// names it, from the sweep made for the page or else the last probe, and the
// tracker's word for a resource without one.
func debugState(r tracker.Resource, live map[uint64]string) string {
	switch {
	case r.State == tracker.StateClosed:
		return r.State.String()
	case live[r.ID] != "":
		return tracker.SSName(live[r.ID])
	case r.SocketState != "":
		return tracker.SSName(r.SocketState)
	case r.Kind == tracker.KindListener:
		return "LISTEN" // an open listener listens, probed or not
	}
	return r.State.String()
}

// clip cuts s to at most n bytes, on a rune boundary, marking the cut.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	i := n
	for i > 0 && !utf8.RuneStart(s[i]) {
		i--
	}
	return s[:i] + "…"
}

// writeDebugText writes the text view.
func writeDebugText(w io.Writer, rep DebugReport) {
	bw := bufio.NewWriter(w)
	defer bw.Flush()
	fmt.Fprintf(bw, "connleak: pid %d at %s\n", rep.PID, rep.Time.Format(time.RFC3339))
	h := rep.Health
	fmt.Fprintf(bw, "health: %s (%d %s with a closed peer", h.Status, h.CloseWait, plural(h.CloseWait, "connection", "connections"))
	if h.CloseWait > 0 {
		fmt.Fprintf(bw, ", the oldest for %s", seconds(h.OldestCloseWaitSeconds))
	}
	if h.FDLimit > 0 {
		fmt.Fprintf(bw, "; descriptor limit %d", h.FDLimit)
	}
	bw.WriteString(")\n")
	for _, r := range h.Reasons {
		fmt.Fprintf(bw, "  - %s\n", r)
	}

	writeTextGroups(bw, "leaks", rep.Leaks, rep.Time)
	writeTextGroups(bw, "open", rep.Open, rep.Time)

	s := rep.Sockets
	if s.Error != "" {
		fmt.Fprintf(bw, "\nprocess sockets: no sweep: %s\n", s.Error)
		return
	}
	fmt.Fprintf(bw, "\nprocess sockets no wrapper owns: %d (and %d tracked)\n", s.Count, s.Tracked)
	for _, c := range s.Summary {
		fmt.Fprintf(bw, "  %6d %s %s\n", c.Count, c.Network, c.State)
	}
	if len(s.Sockets) > 0 {
		tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "\n  FD\tNETWORK\tSTATE\tLOCAL\tPEER")
		for _, k := range s.Sockets {
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", k.FD, k.Network, dash(k.State), dash(k.Local), dash(k.Remote))
		}
		tw.Flush()
		if more := s.Count - len(s.Sockets); more > 0 {
			fmt.Fprintf(bw, "  … and %d more\n", more)
		}
	}
}

func writeTextGroups(bw *bufio.Writer, title string, gs DebugGroups, now time.Time) {
	fmt.Fprintf(bw, "\n%s: %d in %d %s\n", title, gs.Count, gs.GroupCount, plural(gs.GroupCount, "group", "groups"))
	for _, g := range gs.Groups {
		fmt.Fprintf(bw, "\n%d %s", g.Count, g.Kind)
		if g.Reason != "" {
			fmt.Fprintf(bw, ": %s", g.Reason)
		}
		fmt.Fprintf(bw, "\n  at %s\n  states:%s\n", g.Site.Text, stateCounts(g.States))
		tw := tabwriter.NewWriter(bw, 0, 0, 2, ' ', 0)
		for _, r := range g.Resources {
			fmt.Fprintf(tw, "    %s\t%s\t%s\t%s\t", r.State, dash(r.Network), dash(r.Local), dash(r.Remote))
			if r.ForSeconds > 0 {
				fmt.Fprintf(tw, "leaking for %s", seconds(r.ForSeconds))
			} else {
				fmt.Fprintf(tw, "open for %s", now.Sub(r.OpenedAt).Round(time.Millisecond))
			}
			if r.Label != "" {
				fmt.Fprintf(tw, "\t%q", r.Label)
			}
			fmt.Fprintln(tw)
		}
		tw.Flush()
		if more := g.Count - len(g.Resources); more > 0 {
			fmt.Fprintf(bw, "    … and %d more\n", more)
		}
		for _, line := range strings.Split(strings.TrimRight(g.Stacks, "\n"), "\n") {
			bw.WriteString("  " + line + "\n")
		}
	}
	if more := gs.GroupCount - len(gs.Groups); more > 0 {
		fmt.Fprintf(bw, "\n… and %d more %s\n", more, plural(more, "group", "groups"))
	}
}

// stateCounts is " 2 ESTAB, 1 CLOSE-WAIT": the most first.
func stateCounts(m map[string]int) string {
	type sc struct {
		state string
		n     int
	}
	var l []sc
	for s, n := range m {
		l = append(l, sc{s, n})
	}
	sort.Slice(l, func(i, j int) bool {
		if l[i].n != l[j].n {
			return l[i].n > l[j].n
		}
		return l[i].state < l[j].state
	})
	var b strings.Builder
	for i, x := range l {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, " %d %s", x.n, x.state)
	}
	return b.String()
}

func seconds(s float64) time.Duration {
	return time.Duration(s * float64(time.Second)).Round(time.Millisecond)
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

//go:embed debug.html
var debugHTML string

var debugPage = template.Must(template.New("debug.html").Funcs(template.FuncMap{
	"seconds":     seconds,
	"stateCounts": stateCounts,
	"since": func(now, t time.Time) time.Duration {
		return now.Sub(t).Round(time.Millisecond)
	},
	"rfc3339": func(t time.Time) string { return t.Format(time.RFC3339) },
	"sub":     func(a, b int) int { return a - b },
	"plural":  plural,
	"view": func(id string, gs DebugGroups, now time.Time) groupsView {
		return groupsView{ID: id, Groups: gs, Now: now}
	},
}).Parse(debugHTML))

// groupsView is what the page's table of groups is made from.
type groupsView struct {
	ID     string // the table's element id
	Groups DebugGroups
	Now    time.Time
}
