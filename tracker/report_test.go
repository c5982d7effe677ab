package tracker

import (
	"bytes"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLogsAreGroupedBySite(t *testing.T) {
	var buf bytes.Buffer
	tr := New(WithPollInterval(time.Hour), WithGracePeriod(0), WithLogger(newTextLogger(&buf)))
	defer tr.Close()
	ln := listen(t)
	var servers []net.Conn
	for range 5 {
		c, err := tr.WrapDialer(nil)(t.Context(), "tcp", ln.Addr().String())
		require.NoError(t, err)
		defer c.Close()
		s, err := ln.Accept()
		require.NoError(t, err)
		servers = append(servers, s)
	}
	for _, s := range servers {
		s.Close()
	}
	require.True(t, pollUntil(t, tr, 2*time.Second, func() bool { return len(tr.Leaks()) == 5 }))
	tr.Poll()
	out := buf.String()
	assert.Equal(t, 1, strings.Count(out, "connleak: leak"), out)
	assert.Contains(t, out, "level=WARN")
	assert.Contains(t, out, "count=5")
	assert.Contains(t, out, "report_test.go")

	groups := GroupLeaks(tr.Leaks())
	require.Len(t, groups, 1)
	assert.Equal(t, 5, len(groups[0].Leaks))
	assert.Contains(t, groups[0].String(), "5 leaks of conn")
}
