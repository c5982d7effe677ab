package tracker

import (
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
)

// WriteReport writes the tracker's present state as text: the health status
// and its reasons, the leaks grouped by open site, the open resources
// counted by open site and state and, on Linux, the process's sockets that
// no wrapper of this tracker owns, counted by network and state. It reports
// the state as of the last poll and returns the first write error.
func (t *Tracker) WriteReport(w io.Writer) error {
	bw := bufio.NewWriter(w)
	h := t.Health()
	fmt.Fprintf(bw, "connleak report at %s: health %s\n", time.Now().Format(time.RFC3339), h.Status)
	for _, r := range h.Reasons {
		fmt.Fprintf(bw, "  - %s\n", r)
	}

	leaks := t.Leaks()
	fmt.Fprintf(bw, "\nleaks: %d\n", len(leaks))
	for _, g := range GroupLeaks(leaks) {
		bw.WriteString(g.String())
	}

	open := t.Open()
	fmt.Fprintf(bw, "\nopen: %d\n", len(open))
	for _, g := range GroupResources(open) {
		fmt.Fprintf(bw, "  %6d %s %s (%s)\n", len(g.Resources), g.Kind, g.Site.headline(), states(g.Resources))
	}

	if socks, err := t.ProcessSockets(); err == nil {
		byState := make(map[string]int)
		n := 0
		for _, s := range socks {
			if s.Tracked {
				continue
			}
			n++
			key := s.Network
			if s.State != "" {
				key += " " + s.State
			}
			byState[key]++
		}
		fmt.Fprintf(bw, "\nprocess sockets not tracked: %d\n", n)
		keys := make([]string, 0, len(byState))
		for k := range byState {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			fmt.Fprintf(bw, "  %6d %s\n", byState[k], k)
		}
	}
	return bw.Flush()
}

// states counts the resources by state: "2 active, 1 peer-closed".
func states(rs []Resource) string {
	var counts [StateClosed + 1]int
	for _, r := range rs {
		if r.State >= 0 && int(r.State) < len(counts) {
			counts[r.State]++
		}
	}
	var parts []string
	for s, n := range counts {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, State(s)))
		}
	}
	return strings.Join(parts, ", ")
}
