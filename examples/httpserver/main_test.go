package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/connleak/connleak/nethttp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The demo's claim, checked: every client that hung up leaves one leaked
// connection, held by its hijack, and the report names the line that
// hijacked it; closing the room resolves them all.
func TestHTTPServerDemo(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out strings.Builder
	res, err := run(&out, config{clients: 40, hangups: 25})
	require.NoError(t, err)
	t.Log(out.String())

	line := markerLine(t, "connleak: the hijack")
	require.Len(t, res.leaks, 25)
	for _, l := range res.leaks {
		site := l.Site()
		require.True(t, strings.HasSuffix(site.Function, ".(*room).chat"), site.Function)
		require.True(t, strings.HasSuffix(site.File, "httpserver/main.go"), site.File)
		require.Equal(t, line, site.Line)
		require.NotNil(t, l.HeldBy)
		assert.Equal(t, nethttp.KindHijacked, l.HeldBy.Kind)
		assert.Equal(t, "CLOSE_WAIT", l.SocketState)
	}
	assert.Contains(t, out.String(), fmt.Sprintf("httpserver/main.go:%d", line), "the output names the line")
	read := markerLine(t, "connleak: the read that sees the hang-up")
	assert.Equal(t, read, res.leaks[0].PeerCloseSeenStack.Site().Line)
	assert.Contains(t, out.String(), fmt.Sprintf("httpserver/main.go:%d (its Read returned EOF)", read))
	assert.Contains(t, out.String(), "25 leaks of conn")
	assert.True(t, strings.HasPrefix(res.health, "ok, 25 connections in CLOSE_WAIT"), res.health)
	assert.Equal(t, 25, res.resolved, "every leak resolves once the room is closed")

	// The debug page on the operator's port showed the same leaks, at the
	// same line, in CLOSE-WAIT as ss spells it.
	require.Equal(t, 25, res.debug.Leaks.Count)
	require.Len(t, res.debug.Leaks.Groups, 1)
	g := res.debug.Leaks.Groups[0]
	assert.Equal(t, line, g.Site.Line)
	assert.Equal(t, 25, g.States["CLOSE-WAIT"], g.States)
}

// markerLine finds the line of main.go that carries marker.
func markerLine(t *testing.T, marker string) int {
	f, err := os.Open("main.go")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.Contains(sc.Text(), marker) {
			return n
		}
	}
	t.Fatalf("marker %q not found in main.go", marker)
	return 0
}
