package tracker

import (
	"context"
	"net"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/trace"
)

// listener wraps a net.Listener: Accept returns tracked connections.
type listener struct {
	net.Listener
	rec *record
}

// Accept waits for the next connection and returns it tracked. Its open
// site is the caller of Accept; its first Read or Write records the handler
// that owns it.
func (l *listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return c, err
	}
	return l.rec.t.wrapConn(c, true, trace.SpanContext{}, nil, 1), nil
}

// Close ends tracking, then closes the listener and returns exactly what the
// underlying Close returns.
func (l *listener) Close() error {
	l.rec.t.release(l.rec, 1)
	return l.Listener.Close()
}

// tcpListener keeps SetDeadline and SyscallConn of *net.TCPListener.
type tcpListener struct {
	listener
	tcp *net.TCPListener
}

func (l *tcpListener) SetDeadline(t time.Time) error         { return l.tcp.SetDeadline(t) }
func (l *tcpListener) SyscallConn() (syscall.RawConn, error) { return l.tcp.SyscallConn() }

// unixListener keeps SetDeadline, SyscallConn and SetUnlinkOnClose of
// *net.UnixListener.
type unixListener struct {
	listener
	unix *net.UnixListener
}

func (l *unixListener) SetDeadline(t time.Time) error         { return l.unix.SetDeadline(t) }
func (l *unixListener) SyscallConn() (syscall.RawConn, error) { return l.unix.SyscallConn() }
func (l *unixListener) SetUnlinkOnClose(unlink bool)          { l.unix.SetUnlinkOnClose(unlink) }

// WrapListener starts tracking l as a KindListener resource and returns a
// listener whose Accept returns tracked connections. A listener is never
// judged peer-closed; one left open shows in Open and in testutil's reports.
// WrapListener(nil) returns nil.
func (t *Tracker) WrapListener(l net.Listener) net.Listener {
	if l == nil {
		return nil
	}
	r := t.newRecord(KindListener, 1)
	r.laddr = l.Addr()
	var cookie uint64
	r.sock, cookie = listenerSocket(l) // for the process sweep; never watched
	r.cookie.Store(cookie)
	var w net.Listener
	switch u := l.(type) {
	case *net.TCPListener:
		w = watchCollection(&tcpListener{listener: listener{Listener: u, rec: r}, tcp: u}, r)
	case *net.UnixListener:
		w = watchCollection(&unixListener{listener: listener{Listener: u, rec: r}, unix: u}, r)
	default:
		w = watchCollection(&listener{Listener: l, rec: r}, r)
	}
	t.register(r)
	return w
}

// DialFunc is the signature of net.Dialer.DialContext, which pgx,
// go-sql-driver/mysql, net/http and gRPC all accept.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// WrapDialer returns a DialFunc that dials with dial and returns the
// connection tracked, with the caller of the returned function as its open
// site. A nil dial means a zero net.Dialer's DialContext. Errors from dial
// are returned unchanged. The span active in the dial's context, if any, is
// the connection's Resource.Span, which its leak spans link to. A hook that
// ctx carries (ContextWithDialHook) is called with the tracked connection
// before it is returned, and attributes it carries
// (ContextWithDialAttributes) are the connection's.
func (t *Tracker) WrapDialer(dial DialFunc) DialFunc {
	if dial == nil {
		var d net.Dialer
		dial = d.DialContext
	}
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		c, err := dial(ctx, network, addr)
		if err != nil {
			return c, err
		}
		// Only the span's context is kept, never ctx: a request's context
		// must not stay reachable for as long as its connection.
		w := t.wrapConn(c, false, trace.SpanContextFromContext(ctx), dialAttributes(ctx), 1)
		if hook, ok := ctx.Value(dialHookKey{}).(func(net.Conn)); ok {
			hook(w)
		}
		return w, nil
	}
}
