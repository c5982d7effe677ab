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
	for _, g := range groupOpen(open) {
		fmt.Fprintf(bw, "  %6d %s at %s (%s)\n", g.count, g.kind, g.site, g.states())
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

type openGroup struct {
	kind   Kind
	site   Frame
	count  int
	counts [StateClosed + 1]int
}

func (g *openGroup) states() string {
	var parts []string
	for s, n := range g.counts {
		if n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, State(s)))
		}
	}
	return strings.Join(parts, ", ")
}

// groupOpen counts open resources by kind and stacks, largest group first;
// each group's stack is symbolized once, however many resources share it.
func groupOpen(open []Resource) []*openGroup {
	type key struct {
		kind          Kind
		open, firstIO *stackEntry
	}
	idx := make(map[key]*openGroup)
	var groups []*openGroup
	for _, r := range open {
		k := key{kind: r.Kind, open: r.Stack.e}
		if r.Accepted {
			k.firstIO = r.FirstIOStack.e
		}
		g := idx[k]
		if g == nil {
			g = &openGroup{kind: r.Kind, site: r.Site()}
			idx[k] = g
			groups = append(groups, g)
		}
		g.count++
		if r.State >= 0 && int(r.State) < len(g.counts) {
			g.counts[r.State]++
		}
	}
	sort.SliceStable(groups, func(i, j int) bool { return groups[i].count > groups[j].count })
	return groups
}
