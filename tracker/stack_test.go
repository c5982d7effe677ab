package tracker

import (
	"net"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Many conns opened at one site share one interned stack.
func TestStacksAreInterned(t *testing.T) {
	tr, _ := newTestTracker(t)
	ln := listen(t)
	var conns []net.Conn
	for range 50 {
		c, err := tr.WrapDialer(nil)(t.Context(), "tcp", ln.Addr().String())
		require.NoError(t, err)
		conns = append(conns, c)
		s, err := ln.Accept()
		require.NoError(t, err)
		defer s.Close()
	}
	open := tr.Open()
	require.Len(t, open, 50)
	for _, r := range open[1:] {
		assert.Same(t, open[0].Stack.e, r.Stack.e)
	}
	assert.Equal(t, int64(50), open[0].Stack.e.Refs())
	for _, c := range conns {
		c.Close()
	}
	assert.Equal(t, int64(0), open[0].Stack.e.Refs())
}

func TestStackDepthIsHonoured(t *testing.T) {
	tr, _ := newTestTracker(t, WithStackDepth(2))
	h := tr.Track("x")
	defer h.Close()
	assert.Len(t, tr.Open()[0].Stack.PCs(), 2)
}
