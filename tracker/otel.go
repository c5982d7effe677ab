package tracker

import (
	"context"
	"fmt"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"

	"github.com/connleak/connleak/internal/sock"
)

// ScopeName is the instrumentation scope of the tracker's spans and metrics.
const ScopeName = "github.com/connleak/connleak/tracker"

// Names of the tracker's spans.
const (
	// SpanLeak is the name of the span a leak is reported with: one span for
	// the leaks of one open site judged in one poll.
	SpanLeak = "connleak.leak"
	// SpanResolved is the name of the span that reports leaks closed after
	// they were reported, or collected by the runtime: one span for the
	// leaks of one open site resolved in one poll.
	SpanResolved = "connleak.resolved"
)

// Defaults of WithLeakSpanLimit.
const (
	DefaultLeakSpanLimit    = 100
	DefaultLeakSpanLimitPer = time.Minute
)

// Attribute keys of the tracker's own, for what the semantic conventions
// have no name for. Network, server and code attributes use the
// conventions' names.
const (
	// AttrLeakReason is why the resource was judged leaked: "peer_closed",
	// "held_too_long", "collected".
	AttrLeakReason = attribute.Key("connleak.leak.reason")
	// AttrLeakCount is how many leaks of one open site a span reports.
	AttrLeakCount = attribute.Key("connleak.leak.count")
	// AttrLeakDuration is how long the first leak of a span had leaked, in
	// seconds (Leak.For).
	AttrLeakDuration = attribute.Key("connleak.leak.duration")
	// AttrLeakSuppressed is how many spans WithLeakSpanLimit held back
	// since the previous span the tracker made; absent when none.
	AttrLeakSuppressed = attribute.Key("connleak.leak.suppressed")
	// AttrResourceKind is the resource's Kind.
	AttrResourceKind = attribute.Key("connleak.resource.kind")
	// AttrResourceState is the resource's State: "active", "peer-closed",
	// "closed".
	AttrResourceState = attribute.Key("connleak.resource.state")
	// AttrResourceID is the Resource.ID of the first leak of a span, and of
	// the resource a link leads from.
	AttrResourceID = attribute.Key("connleak.resource.id")
	// AttrResourceLabel is the resource's Label, when it has one.
	AttrResourceLabel = attribute.Key("connleak.resource.label")
	// AttrSite is the report's headline (Site.String): the user's line, or
	// whose goroutine opened the resource when no line of the program is in
	// its stack.
	AttrSite = attribute.Key("connleak.site")
	// AttrCloseSite is where a resolved leak was closed (Site.String of its
	// CloseStack), or "collected by the runtime".
	AttrCloseSite = attribute.Key("connleak.close.site")
	// AttrHealthStatus is the health status ("ok", "warning", "critical")
	// of the metric connleak.health.status.
	AttrHealthStatus = attribute.Key("connleak.health.status")
)

// Names of the tracker's metrics.
const (
	MetricResourceCount      = "connleak.resource.count"
	MetricLeaks              = "connleak.leaks"
	MetricLeaksResolved      = "connleak.leaks.resolved"
	MetricHealthStatus       = "connleak.health.status"
	MetricCloseWaitCount     = "connleak.health.close_wait.count"
	MetricCloseWaitAge       = "connleak.health.close_wait.age"
	MetricProcessSocketCount = "connleak.process.socket.count"
)

// maxLinks bounds the links of one span: a span for a thousand leaks of one
// site links the opening spans of the first few.
const maxLinks = 16

// minInfoReset is the peak size from which an emptied side table is
// dropped rather than kept for reuse.
const minInfoReset = 64

// sweepEvery is the least time between two process sweeps made for the
// socket metric: a collector that asks more often gets the last sweep's
// counts, so a sweep costs at most this much of a core's time per 10 s
// (a few µs per descriptor).
const sweepEvery = 10 * time.Second

// WithTracerProvider sets where the tracker's leak spans go. nil, the
// default, means the global provider (otel.GetTracerProvider) as it is when
// a span is made, so a program that installs its SDK after New is still
// heard. Spans are made on the poller, never on a goroutine doing I/O.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return optionFunc(func(c *config) error {
		c.tracerProvider = tp
		return nil
	})
}

// WithMeterProvider sets where the tracker's metrics go. nil, the default,
// means the global provider (otel.GetMeterProvider): its instruments are
// made in New and follow the first SDK the program installs, before or
// after New, as the global provider's instruments do.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return optionFunc(func(c *config) error {
		c.meterProvider = mp
		return nil
	})
}

// WithLeakSpanLimit bounds the spans the tracker makes: at most n in any
// period per, the leaks of one open site judged in one poll making one span
// (SpanLeak) with their count, and so do resolved leaks (SpanResolved).
// A burst of ten thousand leaks from a few lines of code makes a few spans;
// spans over the limit are not made, and the next span that is says how
// many were held back (AttrLeakSuppressed). The metrics count every leak.
// n = 0 turns spans off. The default is DefaultLeakSpanLimit spans per
// DefaultLeakSpanLimitPer.
func WithLeakSpanLimit(n int, per time.Duration) Option {
	return optionFunc(func(c *config) error {
		if n < 0 || per <= 0 {
			return fmt.Errorf("WithLeakSpanLimit(%d, %v): the count must not be negative and the period must be positive", n, per)
		}
		c.spanLimit, c.spanLimitPer = n, per
		return nil
	})
}

// TrackContext records the span active in ctx, if any, as the resource's
// Resource.Span: the request or query that opened it, which its leak spans
// link to. Only the span's context is kept, not ctx. Without a span in ctx
// it returns nil, which Track skips: an untraced request or query pays one
// context lookup and no allocation.
func TrackContext(ctx context.Context) TrackOption {
	if ctx == nil || ctx == context.Background() || ctx == context.TODO() {
		return nil // no span, and no lookup: the usual context of a loop
	}
	sc := trace.SpanContextFromContext(ctx)
	if !sc.IsValid() {
		return nil
	}
	return &trackSpan{sc}
}

// TrackAttributes adds OpenTelemetry attributes to the resource's leak
// spans, such as db.system.name or server.address, and shows them in
// Resource.Attributes. They must not contain credentials.
//
// The option can be made once and given to every Track: a Track with one
// TrackAttributes shares its attributes and adds no allocation.
func TrackAttributes(attrs ...attribute.KeyValue) TrackOption {
	// Capped, so that a second TrackAttributes on the same Track appends
	// to a copy, never into this option's array, which records share.
	return trackAttributes(slices.Clip(append([]attribute.KeyValue(nil), attrs...)))
}

// TracerProvider returns the provider the tracker's spans go to: the one
// given to WithTracerProvider, else the global one as it is now.
// Integrations built on a Tracker take theirs from here, so one option
// configures them all.
func (t *Tracker) TracerProvider() trace.TracerProvider {
	if tp := t.cfg.tracerProvider; tp != nil {
		return tp
	}
	return otel.GetTracerProvider()
}

// MeterProvider returns the provider the tracker's metrics go to: the one
// given to WithMeterProvider, else the global one.
func (t *Tracker) MeterProvider() metric.MeterProvider {
	if mp := t.cfg.meterProvider; mp != nil {
		return mp
	}
	return otel.GetMeterProvider()
}

// telemetry is a tracker's OpenTelemetry side: the span contexts and
// attributes of the records that have them, kept out of line so that the
// record stays small, its instruments, and the span budget.
type telemetry struct {
	t *Tracker

	mu   sync.Mutex
	info map[uint64]otelInfo // by record id, for records with traced set
	peak int                 // the most entries info has held since it was made

	// The attribute sets of records opened with attributes and no span,
	// such as a pool's db.system.name on every checkout, by the index a
	// record keeps in its link word: a record re-armed at every checkout
	// then sets an index instead of taking the lock and an entry in info.
	// Sets are known by identity (an option made once shares its slice), so
	// the table fills with sets made anew each time, and then info serves.
	attrSets  [maxAttrSets]atomic.Pointer[[]attribute.KeyValue]
	attrCount atomic.Uint32 // written under mu

	leaks, resolved metric.Int64Counter
	reg             metric.Registration // the observers' callback; nil if none

	// Owned by the poller (under the tracker's reportMu).
	tokens     float64
	refilled   time.Time
	suppressed int

	sweepMu  sync.Mutex
	sweptAt  time.Time
	sweepObs []sweepCount
}

type otelInfo struct {
	span  trace.SpanContext
	attrs []attribute.KeyValue
}

type sweepCount struct {
	transport, state attribute.KeyValue
	n                int64
}

func (tel *telemetry) init(t *Tracker) {
	tel.t = t
	tel.tokens = float64(t.cfg.spanLimit)
	tel.refilled = time.Now()
	m := t.MeterProvider().Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL))
	// A provider that fails to make an instrument returns a usable no-op one
	// with the error; the tracker reports without it rather than fail New.
	tel.leaks, _ = m.Int64Counter(MetricLeaks, metric.WithUnit("{leak}"),
		metric.WithDescription("Resources judged leaked, by kind and reason."))
	tel.resolved, _ = m.Int64Counter(MetricLeaksResolved, metric.WithUnit("{leak}"),
		metric.WithDescription("Reported leaks closed afterwards, or collected by the runtime, by kind and reason."))
	open, err1 := m.Int64ObservableUpDownCounter(MetricResourceCount, metric.WithUnit("{resource}"),
		metric.WithDescription("Tracked resources open now, by kind and state."))
	health, err2 := m.Int64ObservableGauge(MetricHealthStatus, metric.WithUnit("1"),
		metric.WithDescription("1 for the tracker's health status now, 0 for the others."))
	cwCount, err3 := m.Int64ObservableUpDownCounter(MetricCloseWaitCount, metric.WithUnit("{connection}"),
		metric.WithDescription("Tracked connections open here whose peer has closed (CLOSE_WAIT)."))
	cwAge, err4 := m.Float64ObservableGauge(MetricCloseWaitAge, metric.WithUnit("s"),
		metric.WithDescription("How long the oldest tracked connection has been in CLOSE_WAIT."))
	socks, err5 := m.Int64ObservableUpDownCounter(MetricProcessSocketCount, metric.WithUnit("{socket}"),
		metric.WithDescription("Sockets of the process, wrapped or not, by transport and TCP state, from the process sweep."))
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil || err5 != nil {
		return
	}
	tel.reg, _ = m.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		tel.observe(o, open, health, cwCount, cwAge, socks)
		return nil
	}, open, health, cwCount, cwAge, socks)
}

// close stops the metric callback: a closed tracker must not stay reachable
// from a long-lived provider.
func (tel *telemetry) close() {
	if tel.reg != nil {
		tel.reg.Unregister()
	}
}

// maxAttrSets bounds the attribute sets records refer to by index.
const maxAttrSets = 255

// attrsIndex returns the 1-based index of the set attrs, adding it while
// there is room; 0 when there is none. The sets are few (an integration
// makes its options once), so a scan finds one sooner than a map would, and
// takes no lock.
func (tel *telemetry) attrsIndex(attrs []attribute.KeyValue) uint32 {
	if i := tel.findAttrs(attrs, tel.attrCount.Load()); i != 0 {
		return i
	}
	tel.mu.Lock()
	defer tel.mu.Unlock()
	n := tel.attrCount.Load()
	if i := tel.findAttrs(attrs, n); i != 0 || n == maxAttrSets {
		return i
	}
	set := new([]attribute.KeyValue)
	*set = attrs
	tel.attrSets[n].Store(set)
	tel.attrCount.Store(n + 1)
	return n + 1
}

func (tel *telemetry) findAttrs(attrs []attribute.KeyValue, n uint32) uint32 {
	for i := range n {
		if p := tel.attrSets[i].Load(); len(*p) == len(attrs) && &(*p)[0] == &attrs[0] {
			return i + 1
		}
	}
	return 0
}

// attrsOf returns the attributes r refers to by index, if any.
func (tel *telemetry) attrsOf(r *record) []attribute.KeyValue {
	if idx := r.linked.attrs(); idx != 0 {
		return *tel.attrSets[idx-1].Load()
	}
	return nil
}

// attach records span and attrs for r, which is not published yet. A
// record with neither costs nothing here, nor one with attributes alone
// whose set has an index.
func (tel *telemetry) attach(r *record, span trace.SpanContext, attrs []attribute.KeyValue) {
	if !span.IsValid() && len(attrs) == 0 {
		return
	}
	if !span.IsValid() {
		if idx := tel.attrsIndex(attrs); idx != 0 {
			r.linked.setAttrs(idx)
			return
		}
	}
	r.linked.set(tracedBit, true)
	tel.mu.Lock()
	if tel.info == nil {
		tel.info = make(map[uint64]otelInfo)
	}
	tel.info[r.id] = otelInfo{span: span, attrs: attrs}
	tel.peak = max(tel.peak, len(tel.info))
	tel.mu.Unlock()
}

func (tel *telemetry) infoOf(id uint64) (trace.SpanContext, []attribute.KeyValue) {
	tel.mu.Lock()
	in := tel.info[id]
	tel.mu.Unlock()
	return in.span, in.attrs
}

// drop forgets the span and attributes of a record no report will need.
func (tel *telemetry) drop(id uint64) {
	tel.mu.Lock()
	delete(tel.info, id)
	if len(tel.info) == 0 && tel.peak > minInfoReset {
		// A Go map keeps the size of its peak: a burst's is let go once
		// it has emptied, a small one kept for the next traced dial.
		tel.info, tel.peak = nil, 0
	}
	tel.mu.Unlock()
}

// allow takes one span from the budget of WithLeakSpanLimit.
func (tel *telemetry) allow(now time.Time) bool {
	cfg := &tel.t.cfg
	if cfg.spanLimit == 0 {
		return false
	}
	rate := float64(cfg.spanLimit) / cfg.spanLimitPer.Seconds()
	tel.tokens = min(float64(cfg.spanLimit), tel.tokens+now.Sub(tel.refilled).Seconds()*rate)
	tel.refilled = now
	if tel.tokens < 1 {
		return false
	}
	tel.tokens--
	return true
}

// report counts the leaks and resolved leaks of one poll and makes their
// spans, one for each open site, within the budget. It runs on the poller.
func (tel *telemetry) report(leaks, resolved []Leak) {
	if len(leaks) == 0 && len(resolved) == 0 {
		return
	}
	ctx := context.Background()
	tracer := tel.t.TracerProvider().Tracer(ScopeName, trace.WithSchemaURL(semconv.SchemaURL))
	now := time.Now()
	for _, g := range GroupLeaks(leaks) {
		tel.leaks.Add(ctx, int64(len(g.Leaks)), metric.WithAttributes(kindReason(g)...))
		tel.span(ctx, tracer, SpanLeak, g, now)
	}
	for _, g := range GroupLeaks(resolved) {
		tel.resolved.Add(ctx, int64(len(g.Leaks)), metric.WithAttributes(kindReason(g)...))
		tel.span(ctx, tracer, SpanResolved, g, now)
	}
}

func kindReason(g LeakGroup) []attribute.KeyValue {
	return []attribute.KeyValue{AttrResourceKind.String(string(g.Kind)), AttrLeakReason.String(reasonName(g.Reason))}
}

// span makes the span of one group: it starts when the first leak began to
// leak and ends when it was judged, or, for a resolved leak, closed.
func (tel *telemetry) span(ctx context.Context, tracer trace.Tracer, name string, g LeakGroup, now time.Time) {
	if !tel.allow(now) {
		tel.suppressed++
		return
	}
	first := g.Leaks[0]
	end := now
	if name == SpanResolved && !first.ClosedAt.IsZero() {
		end = first.ClosedAt
	}
	// The cheap attributes go to Start, for samplers; the rest, stacks
	// symbolized, only to a span that records.
	_, sp := tracer.Start(ctx, name,
		trace.WithNewRoot(),
		trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithTimestamp(end.Add(-first.For)),
		trace.WithLinks(links(g.Leaks)...),
		trace.WithAttributes(
			AttrResourceKind.String(string(g.Kind)),
			AttrLeakReason.String(reasonName(g.Reason)),
			AttrLeakCount.Int(len(g.Leaks)),
		))
	if sp.IsRecording() {
		sp.SetAttributes(leakAttrs(first)...)
		if tel.suppressed > 0 {
			sp.SetAttributes(AttrLeakSuppressed.Int(tel.suppressed))
		}
		switch {
		case name == SpanResolved:
			sp.SetAttributes(AttrCloseSite.String(closedAt(first)))
		case g.Reason != ReasonIdleInPool: // the pool's hygiene, not an error
			sp.SetStatus(codes.Error, "leaked: "+g.Reason.String())
		}
	}
	tel.suppressed = 0
	sp.End(trace.WithTimestamp(end))
}

// links leads from a group's span to the spans that opened its first
// resources, and to their holders' (Handle.Hold): the request that dialed a
// connection, the query that holds it.
func links(leaks []Leak) []trace.Link {
	var out []trace.Link
	seen := make(map[trace.SpanID]bool)
	add := func(r *Resource) {
		if sc := r.Span; sc.IsValid() && !seen[sc.SpanID()] && len(out) < maxLinks {
			seen[sc.SpanID()] = true
			out = append(out, trace.Link{SpanContext: sc, Attributes: []attribute.KeyValue{
				AttrResourceID.Int64(int64(r.ID)), AttrResourceKind.String(string(r.Kind))}})
		}
	}
	for i := range leaks {
		if len(out) == maxLinks {
			break
		}
		add(&leaks[i].Resource)
		if h := leaks[i].HeldBy; h != nil {
			add(h)
		}
	}
	return out
}

// leakAttrs describes one leak by the semantic conventions where they have
// a name, and by the tracker's own keys where they have none.
func leakAttrs(l Leak) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		AttrResourceID.Int64(int64(l.ID)),
		AttrResourceState.String(l.State.String()),
		AttrLeakDuration.Float64(l.For.Seconds()),
		AttrSite.String(l.Site().String()),
		semconv.CodeStacktrace(l.StackReport()),
	}
	if f := l.Site().Frame; f != (Frame{}) {
		attrs = append(attrs,
			semconv.CodeFunctionName(f.Function),
			semconv.CodeFilePath(f.File),
			semconv.CodeLineNumber(f.Line))
	}
	if l.Label != "" {
		attrs = append(attrs, AttrResourceLabel.String(l.Label))
	}
	if st, ok := connectionState(l.SocketState); ok && l.State != StateClosed {
		attrs = append(attrs, st)
	}
	attrs = append(attrs, networkAttrs(l.Resource)...)
	if h := l.HeldBy; h != nil {
		attrs = append(attrs, h.Attributes...)
	}
	return append(attrs, l.Attributes...)
}

// networkAttrs are the network.* and server.* attributes of a resource's
// addresses. The server is the peer of a connection this side dialed, and
// this side for one it accepted or a listener.
func networkAttrs(r Resource) []attribute.KeyValue {
	var attrs []attribute.KeyValue
	if tr, ok := transport(r.Network); ok {
		attrs = append(attrs, tr)
	}
	local, lport := splitAddr(r.LocalAddr)
	peer, pport := splitAddr(r.RemoteAddr)
	if peer != "" {
		attrs = append(attrs, semconv.NetworkPeerAddress(peer))
		if pport >= 0 {
			attrs = append(attrs, semconv.NetworkPeerPort(pport))
		}
	}
	if local != "" {
		attrs = append(attrs, semconv.NetworkLocalAddress(local))
		if lport >= 0 {
			attrs = append(attrs, semconv.NetworkLocalPort(lport))
		}
	}
	if ip := net.ParseIP(firstNonEmpty(peer, local)); ip != nil {
		if ip.To4() != nil {
			attrs = append(attrs, semconv.NetworkTypeIPv4)
		} else {
			attrs = append(attrs, semconv.NetworkTypeIPv6)
		}
	}
	server, sport := peer, pport
	if r.Accepted || r.Kind == KindListener {
		server, sport = local, lport
	}
	if server != "" && sport >= 0 {
		attrs = append(attrs, semconv.ServerAddress(server), semconv.ServerPort(sport))
	}
	return attrs
}

// splitAddr splits "host:port"; an address without a port (a unix socket's
// path) comes back whole, with port -1.
func splitAddr(addr string) (host string, port int) {
	if addr == "" {
		return "", -1
	}
	h, p, err := net.SplitHostPort(addr)
	if err != nil {
		return addr, -1
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		return addr, -1
	}
	return h, n
}

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// transport maps a Go network name to network.transport.
func transport(network string) (attribute.KeyValue, bool) {
	switch {
	case strings.HasPrefix(network, "tcp"):
		return semconv.NetworkTransportTCP, true
	case strings.HasPrefix(network, "udp"):
		return semconv.NetworkTransportUDP, true
	case strings.HasPrefix(network, "unix"):
		return semconv.NetworkTransportUnix, true
	}
	return attribute.KeyValue{}, false
}

// connectionState maps a kernel's TCP state name, as Linux's ss and macOS's
// netstat spell it, to network.connection.state.
func connectionState(name string) (attribute.KeyValue, bool) {
	switch name {
	case "ESTABLISHED":
		return semconv.NetworkConnectionStateEstablished, true
	case "SYN_SENT":
		return semconv.NetworkConnectionStateSynSent, true
	case "SYN_RECV", "SYN_RECEIVED":
		return semconv.NetworkConnectionStateSynReceived, true
	case "FIN_WAIT1", "FIN_WAIT_1":
		return semconv.NetworkConnectionStateFinWait1, true
	case "FIN_WAIT2", "FIN_WAIT_2":
		return semconv.NetworkConnectionStateFinWait2, true
	case "TIME_WAIT":
		return semconv.NetworkConnectionStateTimeWait, true
	case "CLOSE", "CLOSED":
		return semconv.NetworkConnectionStateClosed, true
	case "CLOSE_WAIT":
		return semconv.NetworkConnectionStateCloseWait, true
	case "LAST_ACK":
		return semconv.NetworkConnectionStateLastAck, true
	case "LISTEN":
		return semconv.NetworkConnectionStateListen, true
	case "CLOSING":
		return semconv.NetworkConnectionStateClosing, true
	}
	return attribute.KeyValue{}, false
}

// reasonName is a Reason as an attribute value: short, stable, for queries.
func reasonName(r Reason) string {
	switch r {
	case ReasonPeerClosed:
		return "peer_closed"
	case ReasonHeldTooLong:
		return "held_too_long"
	case ReasonCollected:
		return "collected"
	case ReasonIdleInPool:
		return "idle_in_pool"
	}
	return "reason_" + strconv.Itoa(int(r))
}

// observe reports the observable instruments at collection time, on the
// collector's goroutine. Its cost: one pass over the open records (no
// system call), the health grading (in proportion to the suspects), and a
// process sweep at most every sweepEvery.
func (tel *telemetry) observe(o metric.Observer, open, health, cwCount metric.Int64Observable,
	cwAge metric.Float64Observable, socks metric.Int64Observable) {
	t := tel.t
	type ks struct {
		kind  Kind
		state State
	}
	counts := make(map[ks]int64)
	for _, r := range t.all() {
		if st := State(r.state.Load()); st != StateClosed {
			counts[ks{r.kind, st}]++
		}
	}
	for k, n := range counts {
		o.ObserveInt64(open, n, metric.WithAttributes(
			AttrResourceKind.String(string(k.kind)), AttrResourceState.String(k.state.String())))
	}

	h := t.Health()
	for _, s := range []HealthStatus{HealthOK, HealthWarning, HealthCritical} {
		v := int64(0)
		if s == h.Status {
			v = 1
		}
		o.ObserveInt64(health, v, metric.WithAttributes(AttrHealthStatus.String(s.String())))
	}
	o.ObserveInt64(cwCount, int64(h.CloseWait))
	o.ObserveFloat64(cwAge, h.OldestCloseWait.Seconds())

	for _, c := range tel.sweep() {
		attrs := []attribute.KeyValue{c.transport}
		if c.state.Valid() {
			attrs = append(attrs, c.state)
		}
		o.ObserveInt64(socks, c.n, metric.WithAttributes(attrs...))
	}
}

// sweep counts the process's sockets by transport and state, sweeping again
// only when the last sweep is older than sweepEvery. Sockets of a transport
// the conventions do not name are left out; on systems without a sweep, all.
func (tel *telemetry) sweep() []sweepCount {
	tel.sweepMu.Lock()
	defer tel.sweepMu.Unlock()
	if !tel.sweptAt.IsZero() && time.Since(tel.sweptAt) < sweepEvery {
		return tel.sweepObs
	}
	tel.sweptAt = time.Now()
	socks, err := sock.List()
	if err != nil {
		tel.sweepObs = nil
		return nil
	}
	type key struct{ transport, state attribute.KeyValue }
	idx := make(map[key]int)
	var out []sweepCount
	for _, s := range socks {
		tr, ok := transport(s.Network)
		if !ok {
			continue
		}
		st, _ := connectionState(s.State)
		k := key{tr, st}
		i, ok := idx[k]
		if !ok {
			i = len(out)
			idx[k] = i
			out = append(out, sweepCount{transport: tr, state: st})
		}
		out[i].n++
	}
	tel.sweepObs = out
	return out
}
