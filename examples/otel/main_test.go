package main

import (
	"bufio"
	"encoding/json"
	"io"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	"go.uber.org/goleak"

	"github.com/connleak/connleak/tracker"
)

// jsonSpan is the part of the stdout exporter's JSON that the test reads.
type jsonSpan struct {
	Name        string
	SpanContext struct{ TraceID, SpanID string }
	Attributes  []struct {
		Key   string
		Value struct{ Value any }
	}
	Links []struct {
		SpanContext struct{ TraceID, SpanID string }
	}
}

func (s jsonSpan) attr(key string) any {
	for _, a := range s.Attributes {
		if a.Key == key {
			return a.Value.Value
		}
	}
	return nil
}

// lockedBuffer is written by the exporter's goroutine and read by the test.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// The example, run as main runs it with the stdout exporter: one leak span
// for the 250 connections of the pump's line, linked to request spans the
// same output holds, and one resolved span once the sessions are closed.
func TestExampleExportsTheLeakSpan(t *testing.T) {
	defer goleak.VerifyNone(t)
	var spansOut lockedBuffer
	exp, err := stdouttrace.New(stdouttrace.WithWriter(&spansOut))
	require.NoError(t, err)
	var story strings.Builder
	res, err := run(&story, exp, config{requests: 420, hangups: 250})
	require.NoError(t, err)
	t.Log(story.String())
	assert.Equal(t, 250, res.leaked)

	var spans []jsonSpan
	dec := json.NewDecoder(strings.NewReader(spansOut.String()))
	for {
		var s jsonSpan
		if err := dec.Decode(&s); err == io.EOF {
			break
		} else {
			require.NoError(t, err)
		}
		spans = append(spans, s)
	}
	requests := map[string]bool{}
	for _, sc := range res.requests {
		requests[sc.TraceID().String()+"/"+sc.SpanID().String()] = true
	}
	var leak, resolved []jsonSpan
	exported := 0
	for _, s := range spans {
		switch s.Name {
		case tracker.SpanLeak:
			leak = append(leak, s)
		case tracker.SpanResolved:
			resolved = append(resolved, s)
		case "GET /feed":
			exported++
		}
	}
	assert.Equal(t, 420, exported, "every request span is exported")
	// The poller judges each connection when its grace ends, so the 250 may
	// fall in more than one poll (more on a loaded machine): one span per
	// poll for the line, never one per leak.
	require.NotEmpty(t, leak)
	assert.LessOrEqual(t, len(leak), 25, "a few spans for 250 leaks of one line, not 250")
	total := 0.0
	for _, l := range leak {
		total += l.attr(string(tracker.AttrLeakCount)).(float64)
		assert.Equal(t, "peer_closed", l.attr(string(tracker.AttrLeakReason)))
		assert.Equal(t, "close_wait", l.attr("network.connection.state"))
		fn, _ := l.attr("code.function.name").(string)
		assert.True(t, strings.HasSuffix(fn, ".(*relay).subscribe"), "the headline is the dialing line: %s", fn)
		assert.EqualValues(t, markerLine(t, "conn, err := rl.dial(ctx"), l.attr("code.line.number"))
		require.NotEmpty(t, l.Links)
		for _, link := range l.Links {
			assert.True(t, requests[link.SpanContext.TraceID+"/"+link.SpanContext.SpanID],
				"the link leads to a request span: %+v", link.SpanContext)
		}
	}
	assert.EqualValues(t, 250, total)
	// Closed while the poller runs, they may be resolved over a few polls.
	require.NotEmpty(t, resolved)
	assert.LessOrEqual(t, len(resolved), 5)
	total = 0
	for _, r := range resolved {
		total += r.attr(string(tracker.AttrLeakCount)).(float64)
	}
	assert.EqualValues(t, 250, total)
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
