package tracker

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel/attribute"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
)

// Attributes carried by a dial's context are the dialed connection's: in
// Open, and in its leak span, where a host name given by the integration
// replaces the peer's IP as server.address. A dial without them has none.
func TestDialAttributes(t *testing.T) {
	rig := newTelemetryRig(t)
	tr, log := newTestTracker(t, rig.options()...)
	ln := listen(t)
	dial := tr.WrapDialer(nil)

	attrs := []attribute.KeyValue{semconv.ServerAddress("orders.internal"), semconv.NetworkProtocolName("http")}
	ctx := ContextWithDialAttributes(context.Background(), attrs...)
	attrs[0] = semconv.ServerAddress("changed after the call") // the context keeps its own copy
	c, err := dial(ctx, "tcp", ln.Addr().String())
	require.NoError(t, err)
	defer c.Close()
	plain, err := dial(context.Background(), "tcp", ln.Addr().String())
	require.NoError(t, err)
	defer plain.Close()

	assert.Same(t, ctx, ContextWithDialAttributes(ctx), "no attributes: ctx unchanged")

	byID := make(map[string][]attribute.KeyValue)
	for _, r := range tr.Open() {
		byID[r.LocalAddr] = r.Attributes
	}
	assert.Equal(t, []attribute.KeyValue{semconv.ServerAddress("orders.internal"), semconv.NetworkProtocolName("http")},
		byID[c.LocalAddr().String()])
	assert.Empty(t, byID[plain.LocalAddr().String()])

	for range 2 {
		s, err := ln.Accept()
		require.NoError(t, err)
		require.NoError(t, s.Close())
	}
	require.True(t, pollUntil(t, tr, 5*time.Second, func() bool { return len(log.Leaks()) == 2 }))
	spans := rig.named(SpanLeak)
	require.Len(t, spans, 2, "a span for each dial's line")
	servers := make(map[string]string)
	for _, sp := range spans {
		a := attrMap(sp.Attributes())
		assert.Equal(t, "127.0.0.1", a[semconv.NetworkPeerAddressKey].AsString())
		servers[a[semconv.ServerAddressKey].AsString()] = a[semconv.NetworkProtocolNameKey].AsString()
	}
	assert.Equal(t, map[string]string{"orders.internal": "http", "127.0.0.1": ""}, servers,
		"the given host name replaces the peer's IP; the plain dial keeps the IP")
}
