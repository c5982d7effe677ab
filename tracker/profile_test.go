package tracker

import (
	"bytes"
	"net"
	"runtime"
	"runtime/pprof"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The pprof profile holds each open resource under its open-site stack,
// the same stack the tracker reports, until it is closed or collected.
func TestProfileOfOpenResources(t *testing.T) {
	tr, _ := newTestTracker(t, WithProfile())
	p := pprof.Lookup(ProfileName)
	require.NotNil(t, p)
	base := p.Count()
	var conns []net.Conn
	for range 2 {
		c, _ := dialPair(t, tr)
		conns = append(conns, c)
	}
	c1 := conns[0]
	assert.Equal(t, base+2, p.Count())

	var b bytes.Buffer
	require.NoError(t, p.WriteTo(&b, 1))
	out := b.String()
	assert.Contains(t, out, "2 @ ", "both connections share one open site")
	site := tr.Open()[0].Stack.Site()
	assert.Contains(t, out, site.Function)
	// The first frame of the profile's stack is the first frame of the
	// tracker's: both start at the caller of the wrapping function.
	first := tr.Open()[0].Stack.Frames()[0]
	head := out[strings.Index(out, "#\t"):]
	head = head[:strings.IndexByte(head, '\n')]
	assert.Contains(t, head, first.Function)

	require.NoError(t, c1.Close())
	assert.Equal(t, base+1, p.Count())

	// A collected wrapper leaves the profile too.
	func() {
		ln := listen(t)
		c, err := tr.WrapDialer(nil)(t.Context(), "tcp", ln.Addr().String())
		require.NoError(t, err)
		s, err := ln.Accept()
		require.NoError(t, err)
		t.Cleanup(func() { s.Close() })
		_ = c
	}()
	assert.Equal(t, base+2, p.Count())
	require.Eventually(t, func() bool { runtime.GC(); return p.Count() == base+1 }, 5*time.Second, time.Millisecond)
}

// Without WithProfile nothing is added.
func TestProfileOffByDefault(t *testing.T) {
	tr, _ := newTestTracker(t)
	before := openProfile().Count()
	dialPair(t, tr)
	assert.Equal(t, before, openProfile().Count())
}
