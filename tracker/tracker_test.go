package tracker

import (
	"net"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestSmokePeerClosedReported(t *testing.T) {
	var leaks []Leak
	tr := New(WithPollInterval(time.Hour), WithGracePeriod(0), WithLogger(nil), WithOnLeak(func(l Leak) { leaks = append(leaks, l) }))
	defer tr.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	c, err := tr.WrapDialer(nil)(t.Context(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	s, err := ln.Accept()
	require.NoError(t, err)
	s.Close()
	time.Sleep(20 * time.Millisecond)
	tr.Poll()
	time.Sleep(2 * time.Millisecond)
	tr.Poll()
	require.Len(t, leaks, 1)
	t.Log(leaks[0])
}
