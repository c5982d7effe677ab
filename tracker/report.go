package tracker

import (
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"
)

// String is the human report of one leak: what leaked and its addresses,
// its socket state, for how long and why, then the stacks with the user's
// line first.
func (l Leak) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "leaked %s for %s: %s\n", l.Resource.String(), l.For.Round(time.Millisecond), l.Reason)
	fmt.Fprintf(&b, "  %s\n", l.Site().headline())
	l.writeStacks(&b)
	return b.String()
}

// String describes the resource on one line: its kind, network and
// addresses ("->" to the peer it dialed, "<-" from the peer it accepted),
// its label, and its state: the kernel's name for the socket's state where a
// probe saw one, else "open", "listening", "peer-closed", "closed" or
// "collected" (garbage-collected without Close).
//
//	conn tcp 127.0.0.1:8080 <- 127.0.0.1:50312 (CLOSE_WAIT)
func (r Resource) String() string {
	var b strings.Builder
	b.WriteString(string(r.Kind))
	if r.Network != "" {
		b.WriteString(" " + r.Network)
	}
	if r.LocalAddr != "" {
		b.WriteString(" " + r.LocalAddr)
	}
	if r.RemoteAddr != "" {
		arrow := " -> "
		if r.Accepted {
			arrow = " <- "
		}
		b.WriteString(arrow + r.RemoteAddr)
	}
	if r.Label != "" {
		fmt.Fprintf(&b, " %q", r.Label)
	}
	b.WriteString(" (" + r.stateName() + ")")
	return b.String()
}

// stateName is the kernel's name for the socket's state when a probe saw
// one, and otherwise the tracker's.
func (r Resource) stateName() string {
	switch {
	case r.SocketState != "" && r.State != StateClosed:
		return r.SocketState
	case r.Collected:
		return "collected"
	case r.State == StateClosed:
		return "closed"
	case r.Kind == KindListener:
		return "listening"
	case r.State == StatePeerClosed:
		return "peer-closed"
	}
	return "open"
}

// StackReport is the part of a report that shows the resource's stacks,
// each under a title and indented, with the user's line first in each: the
// holder's open site (HeldBy), an accepted connection's first Read or
// Write, where a Read returned the peer's close to the program, the open
// site ("opened at", "accepted at", or "dialed by" under a holder), and
// where it was closed. Stacks not captured are left out.
func (r Resource) StackReport() string {
	var b strings.Builder
	r.writeStacks(&b)
	return b.String()
}

func (r Resource) writeStacks(b *strings.Builder) {
	section := func(title string, s Stack) {
		if s.IsZero() {
			return
		}
		fmt.Fprintf(b, "  %s:\n", title)
		for _, line := range strings.Split(strings.TrimRight(s.String(), "\n"), "\n") {
			b.WriteString("    " + line + "\n")
		}
	}
	if h := r.HeldBy; h != nil {
		section("held by "+h.String()+", opened at", h.Stack)
	}
	if r.Accepted {
		section("first read/write (the handler that owns it)", r.FirstIOStack)
	}
	if r.Accepted && r.PeerCloseSeenStack.e != nil && r.PeerCloseSeenStack.e == r.FirstIOStack.e {
		b.WriteString("  peer close returned to the program at: the same line\n")
	} else {
		section("peer close returned to the program at", r.PeerCloseSeenStack)
	}
	openTitle := "opened at"
	switch {
	case r.Accepted:
		openTitle = "accepted at"
	case r.HeldBy != nil:
		openTitle = "dialed by"
	}
	section(openTitle, r.Stack)
	section("closed at", r.CloseStack)
}

// LeakGroup is the leaks that share a kind, a reason and the same stacks:
// the same line of code leaking again and again.
type LeakGroup struct {
	Site   Site
	Kind   Kind
	Reason Reason
	Leaks  []Leak // in the order given to GroupLeaks
}

// exampleAddrs bounds how many addresses a group report lists.
const exampleAddrs = 5

// String reports the group once: how many, where, a few of the addresses,
// and the stacks of the first leak.
func (g LeakGroup) String() string {
	if len(g.Leaks) == 0 {
		return ""
	}
	first := g.Leaks[0]
	var b strings.Builder
	noun := "leak"
	if len(g.Leaks) > 1 {
		noun = "leaks"
	}
	fmt.Fprintf(&b, "%d %s of %s: %s\n", len(g.Leaks), noun, g.Kind, g.Reason)
	fmt.Fprintf(&b, "  %s\n", g.Site.headline())
	for i, l := range g.Leaks {
		if i == exampleAddrs {
			fmt.Fprintf(&b, "  ... and %d more\n", len(g.Leaks)-exampleAddrs)
			break
		}
		fmt.Fprintf(&b, "  - %s for %s\n", l.Resource.String(), l.For.Round(time.Millisecond))
	}
	first.writeStacks(&b)
	return b.String()
}

func (g LeakGroup) attrs() []slog.Attr {
	first := g.Leaks[0]
	return []slog.Attr{
		slog.Int("count", len(g.Leaks)),
		slog.String("kind", string(g.Kind)),
		slog.String("reason", g.Reason.String()),
		slog.String("site", g.Site.String()),
		slog.String("network", first.Network),
		slog.String("local", first.LocalAddr),
		slog.String("remote", first.RemoteAddr),
		slog.String("state", first.SocketState),
		slog.Duration("for", first.For),
		slog.String("stack", first.Stack.String()),
	}
}

// GroupLeaks groups leaks by kind, reason and stacks (the open site, and
// for an accepted connection the first Read or Write), largest group
// first.
func GroupLeaks(leaks []Leak) []LeakGroup {
	parts := groupBy(leaks, func(l Leak) groupKey { return keyOf(l.Resource, l.Reason) })
	out := make([]LeakGroup, len(parts))
	for i, ls := range parts {
		out[i] = LeakGroup{Site: ls[0].Site(), Kind: ls[0].Kind, Reason: ls[0].Reason, Leaks: ls}
	}
	return out
}

// ResourceGroup is the resources of one kind opened at one site.
type ResourceGroup struct {
	Site      Site
	Kind      Kind
	Resources []Resource // in the order given to GroupResources
}

// GroupResources groups resources as GroupLeaks groups leaks: by kind and
// stacks, largest group first.
func GroupResources(rs []Resource) []ResourceGroup {
	parts := groupBy(rs, func(r Resource) groupKey { return keyOf(r, 0) })
	out := make([]ResourceGroup, len(parts))
	for i, g := range parts {
		out[i] = ResourceGroup{Site: g[0].Site(), Kind: g[0].Kind, Resources: g}
	}
	return out
}

// groupKey is what makes two resources "the same line leaking again": the
// grouping of every report, log and test failure.
// Stacks are keyed by their hash, not their interned entry: the table's
// sweep may intern one site's stack anew, and its resources are still one
// group.
type groupKey struct {
	kind                  Kind
	reason                Reason
	accepted              bool
	open, firstIO, holder uint64
}

func keyOf(r Resource, reason Reason) groupKey {
	k := groupKey{kind: r.Kind, reason: reason, accepted: r.Accepted, open: r.Stack.e.Hash()}
	if r.Accepted {
		k.firstIO = r.FirstIOStack.e.Hash()
	}
	if r.HeldBy != nil {
		k.holder = r.HeldBy.Stack.e.Hash()
	}
	return k
}

// groupBy splits items by key, keeping their order within a group, largest
// group first (ties in order of first appearance).
func groupBy[T any](items []T, key func(T) groupKey) [][]T {
	idx := make(map[groupKey]int)
	var groups [][]T
	for _, it := range items {
		k := key(it)
		i, ok := idx[k]
		if !ok {
			i = len(groups)
			idx[k] = i
			groups = append(groups, nil)
		}
		groups[i] = append(groups[i], it)
	}
	sort.SliceStable(groups, func(i, j int) bool { return len(groups[i]) > len(groups[j]) })
	return groups
}

func sortResources(rs []Resource) {
	sort.Slice(rs, func(i, j int) bool {
		if !rs[i].OpenedAt.Equal(rs[j].OpenedAt) {
			return rs[i].OpenedAt.Before(rs[j].OpenedAt)
		}
		return rs[i].ID < rs[j].ID
	})
}

func sortLeaks(ls []Leak) {
	sort.Slice(ls, func(i, j int) bool { return ls[i].ID < ls[j].ID })
}
