package main

import (
	"bufio"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/connleak/connleak/tracker"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

// The example's claim, checked: each connection left in CLOSE_WAIT by an
// unclosed body is reported at the line that called Get.
func TestHTTPClientExample(t *testing.T) {
	defer goleak.VerifyNone(t)
	var out strings.Builder
	leaks, err := run(&out)
	require.NoError(t, err, out.String())
	t.Log(out.String())

	line := markerLine(t, "connleak: the leak's line")
	var conns int
	for _, l := range leaks {
		site := l.Site()
		assert.True(t, strings.HasSuffix(site.Function, "httpclient.status"), site.Function)
		assert.Equal(t, line, site.Line, l.String())
		if l.Kind == tracker.KindConn {
			conns++
			assert.Equal(t, "CLOSE_WAIT", l.SocketState)
			require.NotNil(t, l.HeldBy)
			assert.Contains(t, l.HeldBy.Label, "/orders")
		}
	}
	assert.Equal(t, 2, conns, "one connection per failed request")
	assert.Contains(t, out.String(), "main.go:"+strconv.Itoa(line)+")")
}

// markerLine finds the line of main.go that carries marker.
func markerLine(t *testing.T, marker string) int {
	f, err := os.Open("main.go")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		if strings.Contains(sc.Text(), marker) && !strings.Contains(sc.Text(), "markerLine") {
			return n
		}
	}
	t.Fatalf("marker %q not found in main.go", marker)
	return 0
}
