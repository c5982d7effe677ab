package tracker

import (
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/trace"
)

// linkCount is how many links the tracker keeps, counted from each side:
// the connections of the open records that have a holder, and the holders
// that hold one, and the tracker's own count, which includes the links of
// holders collected without Close.
func linkCount(t *Tracker) (byConn, byHolder int) {
	recs := t.all()
	t.holdMu.Lock()
	defer t.holdMu.Unlock()
	for _, r := range recs {
		if r.heldBy != nil {
			byConn++
		}
		if r.holds != nil {
			byHolder++
		}
	}
	if t.links != byConn {
		return -1, -1 // a link whose holder is gone: the tests say when to expect one
	}
	return byConn, byHolder
}

// getOnTransport makes a GET through a transport whose dials tr tracks, and
// returns the response and the connection it came over, as net/http handed
// it out (a *tls.Conn over https).
func getOnTransport(t *testing.T, tr *Tracker, srv *httptest.Server) (*http.Response, net.Conn) {
	t.Helper()
	base := srv.Client().Transport.(*http.Transport).Clone()
	base.DialContext = tr.WrapDialer(nil)
	t.Cleanup(base.CloseIdleConnections)
	var conn net.Conn
	trace := &httptrace.ClientTrace{GotConn: func(info httptrace.GotConnInfo) { conn = info.Conn }}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), trace), "GET", srv.URL, nil)
	require.NoError(t, err)
	resp, err := (&http.Client{Transport: base}).Do(req)
	require.NoError(t, err)
	require.NotNil(t, conn)
	return resp, conn
}

// connOpen returns the open connection of tr, failing unless there is one.
func connOpen(t *testing.T, tr *Tracker) Resource {
	t.Helper()
	var conns []Resource
	for _, r := range tr.Open() {
		if r.Kind == KindConn {
			conns = append(conns, r)
		}
	}
	require.Len(t, conns, 1)
	return conns[0]
}

// A connection net/http dialed on its own goroutine, held by the body read
// from it, is reported with the body's line; its own stack says who dialed
// it. Over TLS the connection handed out is a *tls.Conn above the tracked
// one.
func TestHeldConnectionLeadsWithItsHolder(t *testing.T) {
	for _, secure := range []bool{false, true} {
		name := map[bool]string{false: "http", true: "https"}[secure]
		t.Run(name, func(t *testing.T) {
			tr, log := newTestTracker(t, WithGracePeriod(0))
			handler := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "body") })
			srv := httptest.NewUnstartedServer(handler)
			if secure {
				srv.StartTLS()
			} else {
				srv.Start()
			}
			defer srv.Close()
			resp, conn := getOnTransport(t, tr, srv)
			defer resp.Body.Close()
			if secure {
				_, isTLS := conn.(*tls.Conn)
				require.True(t, isTLS)
			}
			body := tr.Track("body") // the holder's line
			body.Hold(conn)

			r := connOpen(t, tr)
			require.NotNil(t, r.HeldBy)
			assert.Equal(t, Kind("body"), r.HeldBy.Kind)
			assert.Equal(t, "github.com/connleak/connleak/tracker.TestHeldConnectionLeadsWithItsHolder.func1", r.Site().Function)
			assert.Equal(t, "net/http", r.Stack.Site().Goroutine, "its own stack is net/http's")

			srv.CloseClientConnections()
			require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) == 1 }))
			l := log.Leaks()[0]
			report := l.String()
			assert.Contains(t, report, "\n  at github.com/connleak/connleak/tracker.TestHeldConnectionLeadsWithItsHolder.func1 (", report)
			assert.Contains(t, report, "\n  held by body (open), opened at:\n", report)
			assert.Contains(t, report, "\n  dialed by:\n", report)
			assert.Contains(t, report, "net/http.(*Transport).dial", report)
			assert.NotContains(t, report, "\n  opened at:\n", report)

			body.Close()
			r = connOpen(t, tr)
			assert.Nil(t, r.HeldBy, "a closed holder holds nothing")
			assert.Equal(t, "net/http", r.Site().Goroutine)
			byConn, byHolder := linkCount(tr)
			assert.Zero(t, byConn)
			assert.Zero(t, byHolder)
		})
	}
}

// Leaks from one line that hold connections dialed at one place group
// together, apart from those held by another line.
func TestHeldConnectionsGroupByHolder(t *testing.T) {
	tr, _ := newTestTracker(t)
	ln := listen(t)
	for i := range 4 {
		c, err := tr.WrapDialer(nil)(t.Context(), "tcp", ln.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		s, err := ln.Accept()
		require.NoError(t, err)
		defer s.Close()
		var h *Handle
		if i%2 == 0 { // two lines that hold connections
			h = tr.Track("body")
		} else {
			h = tr.Track("body")
		}
		defer h.Close()
		h.Hold(c)
	}
	var conns []Resource
	for _, r := range tr.Open() {
		if r.Kind == KindConn {
			conns = append(conns, r)
		}
	}
	groups := GroupResources(conns)
	require.Len(t, groups, 2, "two holder lines")
	assert.Len(t, groups[0].Resources, 2)
	assert.NotEqual(t, groups[0].Site, groups[1].Site)
}

// Hold does nothing that it should not: a nil Handle, a connection another
// tracker wraps or none does, a closed Handle or connection.
func TestHoldIgnoresWhatItCannotLink(t *testing.T) {
	tr, _ := newTestTracker(t)
	other, _ := newTestTracker(t)
	ln := listen(t)
	dial := func(d DialFunc) net.Conn {
		c, err := d(t.Context(), "tcp", ln.Addr().String())
		require.NoError(t, err)
		s, err := ln.Accept()
		require.NoError(t, err)
		t.Cleanup(func() { c.Close(); s.Close() })
		return c
	}
	var nilHandle *Handle
	nilHandle.Hold(dial(tr.WrapDialer(nil)))
	h := tr.Track("body")
	defer h.Close()
	h.Hold(nil)
	h.Hold(dial(other.WrapDialer(nil)))
	raw, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer raw.Close()
	h.Hold(raw)
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	h.Hold(a)
	byConn, _ := linkCount(tr)
	assert.Zero(t, byConn)

	closed := dial(tr.WrapDialer(nil))
	closed.Close()
	h.Hold(closed)
	done := tr.Track("body")
	done.Close()
	done.Hold(dial(tr.WrapDialer(nil)))
	byConn, _ = linkCount(tr)
	assert.Zero(t, byConn, "nothing closed is linked")

	// A later Hold replaces the earlier link of either side.
	c1, c2 := dial(tr.WrapDialer(nil)), dial(tr.WrapDialer(nil))
	h.Hold(c1)
	h.Hold(c2)
	byConn, byHolder := linkCount(tr)
	assert.Equal(t, 1, byConn)
	assert.Equal(t, 1, byHolder)
	h2 := tr.Track("body")
	defer h2.Close()
	h2.Hold(c2)
	byConn, byHolder = linkCount(tr)
	assert.Equal(t, 1, byConn)
	assert.Equal(t, 1, byHolder)
	for _, r := range tr.Open() {
		if r.HeldBy != nil {
			assert.Equal(t, h2.ID(), r.HeldBy.ID)
		}
	}
}

// Holds and Owns racing with the Closes of both sides leave no link
// behind.
func TestHoldRacingCloseLeavesNoLink(t *testing.T) {
	tr, _ := newTestTracker(t)
	ln := listen(t)
	go func() {
		for {
			s, err := ln.Accept()
			if err != nil {
				return
			}
			s.Close()
		}
	}()
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for i := range 200 {
				c, err := tr.WrapDialer(nil)(t.Context(), "tcp", ln.Addr().String())
				if err != nil {
					t.Error(err)
					return
				}
				h := tr.Track("body")
				var inner sync.WaitGroup
				if i%2 == 0 {
					inner.Go(func() { h.Hold(c) })
				} else {
					inner.Go(func() { h.Own(c) })
				}
				inner.Go(func() { c.Close() })
				inner.Go(func() { h.Close() })
				inner.Wait()
			}
		})
	}
	wg.Wait()
	byConn, byHolder := linkCount(tr)
	assert.Zero(t, byConn)
	assert.Zero(t, byHolder)
	for _, r := range tr.Open() {
		assert.Nil(t, r.HeldBy, "a closed holder holds nothing")
	}
}

// A holder dropped without Close while it holds a connection still holds
// it: net/http's read loop waits for a dropped body forever, so the
// connection's reports go on naming the body's line, and linking to its
// span. The link ends when the connection closes.
func TestCollectedHolderKeepsHolding(t *testing.T) {
	tr, log := newTestTracker(t)
	c, s := dialPair(t, tr)
	defer s.Close()
	span := trace.NewSpanContext(trace.SpanContextConfig{
		TraceID: trace.TraceID{1}, SpanID: trace.SpanID{2}, TraceFlags: trace.FlagsSampled})
	func() {
		// The holder's line, dropped without Close.
		h := tr.Track("body", TrackContext(trace.ContextWithSpanContext(t.Context(), span)))
		h.Hold(c)
	}()
	require.True(t, pollUntil(t, tr, 5*time.Second, func() bool {
		runtime.GC()
		return len(log.Leaks()) == 1
	}), "the dropped holder is reported collected")
	collected := log.Leaks()[0]
	assert.Equal(t, ReasonCollected, collected.Reason)
	assert.True(t, collected.Collected)

	r := connOpen(t, tr)
	require.NotNil(t, r.HeldBy, "a holder collected without Close still holds its connection")
	assert.True(t, r.HeldBy.Collected)
	assert.Equal(t, collected.Site(), r.Site(), "the connection leads with the dropped holder's line")
	assert.Contains(t, r.StackReport(), "held by body (collected), opened at:")
	assert.Equal(t, span, r.HeldBy.Span, "the dropped holder's span outlives its collected report")

	require.NoError(t, c.Close())
	byConn, byHolder := linkCount(tr)
	assert.Zero(t, byConn)
	assert.Zero(t, byHolder)
	tr.Poll()
	assert.Empty(t, tr.tel.info, "the holder's span is forgotten with its link")
}

// acceptedPair returns the tracked, accepted side of a loopback connection
// and its raw client side.
func acceptedPair(t *testing.T, tr *Tracker) (server, client net.Conn) {
	t.Helper()
	ln := tr.WrapListener(listen(t))
	t.Cleanup(func() { ln.Close() })
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	t.Cleanup(func() { client.Close() })
	server, err = ln.Accept()
	require.NoError(t, err)
	t.Cleanup(func() { server.Close() })
	return server, client
}

// An owner lives as long as the connection it owns: the connection's
// reports lead with the owner's line, the owner's Handle may be dropped,
// and the connection's Close ends both.
func TestOwnerEndsWithItsConnection(t *testing.T) {
	tr, log := newTestTracker(t)
	server, client := acceptedPair(t, tr)
	ownerLine := func() int {
		h, line := tr.Track("hijacked"), thisLine(t) // the owner's line
		require.True(t, h.Own(server))
		return line
	}() // the Handle is dropped here

	var conn Resource
	for range 3 {
		runtime.GC() // a dropped owner is not reported collected
	}
	for _, r := range tr.Open() {
		if r.Kind == KindConn {
			conn = r
		}
	}
	require.NotNil(t, conn.HeldBy)
	assert.Equal(t, Kind("hijacked"), conn.HeldBy.Kind)
	assert.Equal(t, ownerLine, conn.Site().Line)
	assert.Equal(t, "github.com/connleak/connleak/tracker.TestOwnerEndsWithItsConnection.func1", conn.Site().Function)

	client.Close()
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) == 1 }))
	l := log.Leaks()[0]
	assert.Equal(t, KindConn, l.Kind)
	assert.Equal(t, ReasonPeerClosed, l.Reason)
	assert.Equal(t, ownerLine, l.Site().Line, "the peer-closed connection is named by its owner")

	require.NoError(t, server.Close())
	tr.Poll()
	for _, r := range tr.Open() {
		assert.Equal(t, KindListener, r.Kind, "still open: %s", r)
	}
	assert.Len(t, log.Leaks(), 1, "nothing more reported: %v", log.Leaks())
	byConn, byHolder := linkCount(tr)
	assert.Zero(t, byConn)
	assert.Zero(t, byHolder)
}

// thisLine is the line that calls it.
func thisLine(t *testing.T) int {
	_, _, line, ok := runtime.Caller(1)
	require.True(t, ok)
	return line
}

// Own links nothing, and leaves the Handle open, where Hold would do
// nothing or the connection is closed.
func TestOwnRefusesWhatItCannotLink(t *testing.T) {
	tr, log := newTestTracker(t)
	other, _ := newTestTracker(t)
	server, _ := acceptedPair(t, tr)
	foreign, _ := acceptedPair(t, other)
	var nilHandle *Handle
	assert.False(t, nilHandle.Own(server))
	h := tr.Track("hijacked")
	assert.False(t, h.Own(nil))
	assert.False(t, h.Own(foreign))
	closed, _ := acceptedPair(t, tr)
	closed.Close()
	assert.False(t, h.Own(closed))
	byConn, _ := linkCount(tr)
	assert.Zero(t, byConn)
	var open bool
	for _, r := range tr.Open() {
		open = open || r.ID == h.ID()
	}
	assert.True(t, open, "a refused owner stays open for its caller to close")
	h.Close()
	tr.Poll()
	assert.Empty(t, log.Leaks())
}

// A connection collected without Close takes its owner with it, and the
// owner is reported collected too, with its own line.
func TestOwnedConnectionCollected(t *testing.T) {
	tr, log := newTestTracker(t)
	var ownerLine int
	ln := tr.WrapListener(listen(t))
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	defer client.Close()
	func() {
		server, err := ln.Accept()
		require.NoError(t, err)
		var h *Handle
		h, ownerLine = tr.Track("hijacked"), thisLine(t) // the owner's line
		require.True(t, h.Own(server))
		// server's wrapper is dropped here, unclosed; the cleanup closes
		// only the raw socket, which the wrapper no longer reaches.
	}()
	require.True(t, pollUntil(t, tr, 5*time.Second, func() bool { runtime.GC(); return len(log.Leaks()) == 2 }))
	kinds := map[Kind]Leak{}
	for _, l := range log.Leaks() {
		assert.Equal(t, ReasonCollected, l.Reason)
		kinds[l.Kind] = l
	}
	require.Contains(t, kinds, Kind("hijacked"))
	require.Contains(t, kinds, KindConn)
	assert.Equal(t, ownerLine, kinds["hijacked"].Site().Line)
	byConn, byHolder := linkCount(tr)
	assert.Zero(t, byConn)
	assert.Zero(t, byHolder)
}

// A holder that takes an owned connection ends its owner.
func TestOwnerEndsWhenAnotherHolderTakesOver(t *testing.T) {
	tr, log := newTestTracker(t)
	server, _ := acceptedPair(t, tr)
	owner := tr.Track("hijacked")
	require.True(t, owner.Own(server))
	body := tr.Track("body")
	defer body.Close()
	body.Hold(server)
	var kinds []Kind
	for _, r := range tr.Open() {
		kinds = append(kinds, r.Kind)
		if r.Kind == KindConn {
			require.NotNil(t, r.HeldBy)
			assert.Equal(t, body.ID(), r.HeldBy.ID)
		}
	}
	assert.NotContains(t, kinds, Kind("hijacked"))
	tr.Poll()
	assert.Empty(t, log.Leaks())
}

// A Handle re-armed by Reopen, then made the owner of a connection, loses
// its collection watch to the Own: re-armed again after the connection's
// end, it is watched again, and dropped without Close it is reported.
func TestReopenAfterOwnWatchesAgain(t *testing.T) {
	tr, log := newTestTracker(t)
	server, client := acceptedPair(t, tr)
	func() {
		h := tr.Track("hijacked").Reopen() // re-armed: its watch outlives a Close
		require.True(t, h.Own(server))
		require.NoError(t, server.Close()) // ends h with it
		h.Reopen()                         // dropped without Close
	}()
	client.Close()
	require.True(t, pollUntil(t, tr, 5*time.Second, func() bool {
		runtime.GC()
		for _, l := range log.Leaks() {
			if l.Kind == "hijacked" && l.Reason == ReasonCollected {
				return true
			}
		}
		return false
	}), "the re-armed Handle, dropped, is reported collected: %v", log.Leaks())
}
