package tracker

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The cookie is read by the poller, not at dial time. If the descriptor
// number was reused before that (the socket closed under its wrapper), the
// addresses tell the new socket from the old one: the old record is never
// registered under the new socket.
func TestIdentifyRejectsReusedDescriptorBeforeRegistration(t *testing.T) {
	tr, log := newTestTracker(t, WithFullSweepEvery(0))
	e := epollOf(t, tr)
	a, b, sb := reusedDescriptor(t, tr, false) // a closed under its wrapper, never registered
	ra, rb := a.(trackedConn).tracked(), b.(trackedConn).tracked()
	assert.Zero(t, ra.cookie.Load(), "no cookie system call on the dial path")
	tr.Poll() // registers both, or tries to
	e.mu.Lock()
	assert.Equal(t, watchLost, ra.watch, "a's number now names b's socket")
	assert.Equal(t, watchRegistered, rb.watch)
	e.mu.Unlock()
	assert.Zero(t, ra.cookie.Load())
	assert.NotZero(t, rb.cookie.Load())

	require.NoError(t, sb.Close())
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(log.Leaks()) == 1 }))
	assert.Equal(t, rb.id, log.Leaks()[0].ID, "b's leak is b's, never a's")
	a.Close()
}

func TestSockaddrStringMatchesTCPAddr(t *testing.T) {
	tr, _ := newTestTracker(t)
	c, s := dialPair(t, tr)
	r := c.(trackedConn).tracked()
	assert.True(t, sameTCPAddrs(r.sock.fd, c.LocalAddr(), c.RemoteAddr()))
	assert.False(t, sameTCPAddrs(r.sock.fd, s.LocalAddr(), s.RemoteAddr()))
	ln6, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skip("no IPv6 loopback:", err)
	}
	defer ln6.Close()
	c6, err := tr.WrapDialer(nil)(t.Context(), "tcp", ln6.Addr().String())
	require.NoError(t, err)
	defer c6.Close()
	s6, err := ln6.Accept()
	require.NoError(t, err)
	defer s6.Close()
	assert.True(t, sameTCPAddrs(c6.(trackedConn).tracked().sock.fd, c6.LocalAddr(), c6.RemoteAddr()))
}
