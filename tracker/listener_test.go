package tracker

import (
	"net"
	"net/http"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestTCPListenerKeepsItsMethods(t *testing.T) {
	tr, _ := newTestTracker(t)
	ln := tr.WrapListener(listen(t))
	_, ok := ln.(syscall.Conn)
	assert.True(t, ok)
	dl, ok := ln.(interface{ SetDeadline(time.Time) error })
	require.True(t, ok)
	require.NoError(t, dl.SetDeadline(time.Now().Add(10*time.Millisecond)))
	_, err := ln.Accept()
	var ne net.Error
	require.ErrorAs(t, err, &ne)
	assert.True(t, ne.Timeout(), "Accept errors are returned unchanged")
}

// An accepted conn's report names the handler that first used it, not only
// the shared accept loop.
func TestAcceptedConnRecordsHandler(t *testing.T) {
	tr, log := newTestTracker(t)
	ln := tr.WrapListener(listen(t))
	// Closed, not dropped: a dropped wrapper is a leak of its own, reported
	// as collected once the garbage collector runs.
	defer ln.Close()
	done := make(chan net.Conn, 1)
	go acceptLoop(ln, done)
	client, err := net.Dial("tcp", ln.Addr().String())
	require.NoError(t, err)
	_, err = client.Write([]byte("hi\n"))
	require.NoError(t, err)
	server := <-done
	defer server.Close()
	require.NoError(t, client.Close())
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) == 1 }))
	l := log.Leaks()[0]
	assert.True(t, l.Accepted)
	assert.Equal(t, "github.com/connleak/connleak/tracker.forgetfulHandler", l.Site().Function)
	assert.Equal(t, "github.com/connleak/connleak/tracker.acceptLoop", l.Stack.Site().Function)
	report := l.String()
	assert.Contains(t, report, "first read/write")
	assert.Contains(t, report, "accepted at")
	assert.Contains(t, report, "CLOSE_WAIT")
	assert.Contains(t, report, " <- "+client.LocalAddr().String())
	t.Log(report)
}

//go:noinline
func forgetfulHandler(c net.Conn, out chan<- net.Conn) {
	buf := make([]byte, 3)
	c.Read(buf) // the handler's first read: it owns the conn now
	out <- c
}

// net/http's server reads a connection first on a goroutine of its own,
// whose stack holds no line of the program: the accepted connection's Site
// is then the line that serves the listener.
func TestAcceptedConnSiteFallsBackToTheAcceptLoop(t *testing.T) {
	tr, _ := newTestTracker(t)
	ln := tr.WrapListener(listen(t))
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {})}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }() // the program's line that serves
	defer func() {
		srv.Close()
		<-served
	}()
	client := &http.Client{Transport: &http.Transport{}}
	defer client.CloseIdleConnections()
	resp, err := client.Get("http://" + ln.Addr().String())
	require.NoError(t, err)
	resp.Body.Close()
	var accepted []Resource
	for _, r := range tr.Open() {
		if r.Accepted {
			accepted = append(accepted, r)
		}
	}
	require.Len(t, accepted, 1)
	r := accepted[0]
	require.False(t, r.FirstIOStack.IsZero())
	assert.Equal(t, "net/http", r.FirstIOStack.Site().Goroutine, "the first read is net/http's")
	assert.Equal(t, "github.com/connleak/connleak/tracker.TestAcceptedConnSiteFallsBackToTheAcceptLoop.func2", r.Site().Function)
}
