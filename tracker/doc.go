// Package tracker finds the code that forgot to close its connections.
//
// A Tracker records every connection, listener and resource wrapped or
// tracked through it, with the stack of the code that opened it. A poller
// watches each tracked socket for a peer that has closed (the kernel's
// CLOSE_WAIT) while the program has not, and reports it as a Leak once it has
// seen no Read or Write for the grace period, naming the user's line.
//
//	tr := tracker.New(tracker.WithGracePeriod(30 * time.Second))
//	defer tr.Close()
//	ln, _ := net.Listen("tcp", "127.0.0.1:8080")
//	ln = tr.WrapListener(ln) // accepted conns are tracked
//	dial := tr.WrapDialer(nil) // dialed conns are tracked
//	...
//	for _, l := range tr.Leaks() {
//		fmt.Println(l) // kind, addresses, state, how long, why, where
//	}
//
// # Ownership
//
// The tracker never keeps a connection reachable. Go closes the socket of a
// connection the program has dropped when the garbage collector finds it; a
// registry holding connections would turn that self-healing leak into a
// permanent one. A wrapped connection dropped without Close is reported once
// with ReasonCollected.
//
// # Reports
//
// A report leads with the resource's Site: the line of the program that owns
// it, the first frame of the main module in its stack (in a test, the module
// under test). Libraries that dial on goroutines of their own (net/http,
// pgxpool, go-redis, gRPC) leave no such line, and the report then names the
// library's goroutine instead of one of its frames, unless a Handle that
// holds the connection says whose it is (Handle.Hold). Stacks are captured as
// program counters, interned, and symbolized only when a report is made; on
// amd64 a call path seen before is recognized by a walk of the frame
// pointers, which CONNLEAK_STACKWALK=off in the environment turns off.
//
// # Detection
//
// Peer close is learned from the program's own Reads (EOF or a reset) on
// every system, and by the poller. On Linux the tracker registers each
// socket with an epoll instance of its own (EPOLLRDHUP, edge-triggered), so
// a tick looks only at the sockets whose peer has closed and confirms each
// with getsockopt(TCP_INFO) (CLOSE_WAIT, or CLOSE after a reset); a full
// TCP_INFO sweep every WithFullSweepEvery polls catches anything missed. On
// macOS every socket is probed on each tick with TCP_CONNECTION_INFO, on
// other Unix systems with recv(MSG_PEEK|MSG_DONTWAIT). The tracker never
// reads bytes from a socket, never dups it, and never closes anything on its
// own.
//
// # Process sweep, health, profile
//
// ProcessSockets lists every socket of the process, wrapped or not, with its
// TCP state (Linux). Health grades the connections stuck in CLOSE_WAIT
// against WithThresholds. WithProfile keeps a runtime/pprof profile of open
// resources by open-site stack (ProfileName), and WithSignalDump writes
// WriteReport's text on SIGUSR1.
//
// # OpenTelemetry
//
// The tracker reports to OpenTelemetry through the API alone: the providers
// of WithTracerProvider and WithMeterProvider, by default the global ones,
// which stay no-op until the program installs an SDK.
//
//	tr := tracker.New(tracker.WithTracerProvider(tp), tracker.WithMeterProvider(mp))
//	dial := tr.WrapDialer(nil) // conn, err := dial(requestCtx, "tcp", addr)
//
// A connection remembers the span active in its dial's context (Track takes
// one with TrackContext). When the poller judges leaks it makes one span,
// SpanLeak, for the leaks of each open site, with their count, the reason,
// the network, server and code attributes of the semantic conventions
// (code.stacktrace holds StackReport), and links to the spans that opened
// the first of them: the request that dialed the connection. Closing a
// reported leak makes a SpanResolved span. Spans are made on the poller,
// never on a goroutine doing I/O, within the budget of WithLeakSpanLimit.
// The metrics count leaks by kind and reason, and observe, when they are
// collected, the open resources by kind and state, the health status, and
// the process's sockets by network.connection.state.
package tracker
