package tracker

import (
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// conn wraps a net.Conn of a type the tracker has no special knowledge of.
type conn struct {
	net.Conn
	rec *record
}

func (c *conn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	c.rec.observe(err)
	return n, err
}

func (c *conn) Write(b []byte) (int, error) {
	c.rec.writing.Add(1) // a Write blocked on a slow reader is not idleness
	n, err := c.Conn.Write(b)
	c.rec.writing.Add(-1)
	c.rec.observe(err)
	return n, err
}

// Close ends tracking, then closes the connection and returns exactly what
// the underlying Close returns.
func (c *conn) Close() error {
	c.rec.t.release(c.rec, 1)
	return c.Conn.Close()
}

// NetConn returns the wrapped connection, as tls.Conn's method of that name
// does.
func (c *conn) NetConn() net.Conn { return c.Conn }

func (c *conn) tracked() *record { return c.rec }

// sysConn adds SyscallConn for wrapped types that have it, so the tracker
// never hides syscall.Conn.
type sysConn struct {
	conn
	sc syscall.Conn
}

func (c *sysConn) SyscallConn() (syscall.RawConn, error) { return c.sc.SyscallConn() }

// tcpLike is every method of *net.TCPConn beyond net.Conn. A tcpConn made
// by another tracker has them too, so wrapping twice keeps them.
type tcpLike interface {
	net.Conn
	CloseRead() error
	CloseWrite() error
	SyscallConn() (syscall.RawConn, error)
	ReadFrom(io.Reader) (int64, error)
	WriteTo(io.Writer) (int64, error)
	SetKeepAlive(bool) error
	SetKeepAlivePeriod(time.Duration) error
	SetKeepAliveConfig(net.KeepAliveConfig) error
	SetLinger(int) error
	SetNoDelay(bool) error
	SetReadBuffer(int) error
	SetWriteBuffer(int) error
	MultipathTCP() (bool, error)
	File() (*os.File, error)
}

// unixLike is every method of *net.UnixConn beyond net.Conn.
type unixLike interface {
	net.Conn
	CloseRead() error
	CloseWrite() error
	SyscallConn() (syscall.RawConn, error)
	ReadFrom([]byte) (int, net.Addr, error)
	ReadFromUnix([]byte) (int, *net.UnixAddr, error)
	ReadMsgUnix(b, oob []byte) (n, oobn, flags int, addr *net.UnixAddr, err error)
	WriteTo([]byte, net.Addr) (int, error)
	WriteToUnix([]byte, *net.UnixAddr) (int, error)
	WriteMsgUnix(b, oob []byte, addr *net.UnixAddr) (n, oobn int, err error)
	SetReadBuffer(int) error
	SetWriteBuffer(int) error
	File() (*os.File, error)
}

// tcpConn keeps every method of *net.TCPConn.
type tcpConn struct {
	conn
	tcp tcpLike
}

func (c *tcpConn) CloseRead() error                         { return c.tcp.CloseRead() }
func (c *tcpConn) CloseWrite() error                        { return c.tcp.CloseWrite() }
func (c *tcpConn) SyscallConn() (syscall.RawConn, error)    { return c.tcp.SyscallConn() }
func (c *tcpConn) SetKeepAlive(on bool) error               { return c.tcp.SetKeepAlive(on) }
func (c *tcpConn) SetKeepAlivePeriod(d time.Duration) error { return c.tcp.SetKeepAlivePeriod(d) }
func (c *tcpConn) SetKeepAliveConfig(cfg net.KeepAliveConfig) error {
	return c.tcp.SetKeepAliveConfig(cfg)
}
func (c *tcpConn) SetLinger(sec int) error       { return c.tcp.SetLinger(sec) }
func (c *tcpConn) SetNoDelay(on bool) error      { return c.tcp.SetNoDelay(on) }
func (c *tcpConn) SetReadBuffer(n int) error     { return c.tcp.SetReadBuffer(n) }
func (c *tcpConn) SetWriteBuffer(n int) error    { return c.tcp.SetWriteBuffer(n) }
func (c *tcpConn) MultipathTCP() (bool, error)   { return c.tcp.MultipathTCP() }
func (c *tcpConn) File() (f *os.File, err error) { return c.tcp.File() }

// ReadFrom copies into the connection, keeping the sendfile and splice paths
// of *net.TCPConn even when the source is a tracked conn too. An error may
// come from either side, so it is not taken as a peer close of either: the
// socket probe sees a real one.
func (c *tcpConn) ReadFrom(r io.Reader) (int64, error) {
	c.rec.writing.Add(1)
	n, src, err := readFrom(c.tcp, r)
	c.rec.writing.Add(-1)
	c.rec.touch(1)
	if src != nil {
		src.touch(1)
		if err == nil {
			src.sawPeerClose(1) // ReadFrom stops cleanly only at the source's EOF
		}
	}
	return n, err
}

// WriteTo copies from the connection until EOF, keeping the splice path of
// *net.TCPConn. A nil error means the peer closed its side; an error may
// come from either side and is left to the socket probes.
func (c *tcpConn) WriteTo(w io.Writer) (int64, error) {
	dst, drec := unwrapWriter(w)
	if drec != nil {
		drec.writing.Add(1)
	}
	n, err := c.tcp.WriteTo(dst)
	if drec != nil {
		drec.writing.Add(-1)
		drec.touch(1)
	}
	c.rec.touch(1)
	if err == nil {
		c.rec.sawPeerClose(1)
	}
	return n, err
}

// unixConn keeps every method of *net.UnixConn.
type unixConn struct {
	conn
	unix unixLike
}

func (c *unixConn) CloseRead() error                      { return c.unix.CloseRead() }
func (c *unixConn) CloseWrite() error                     { return c.unix.CloseWrite() }
func (c *unixConn) SyscallConn() (syscall.RawConn, error) { return c.unix.SyscallConn() }
func (c *unixConn) SetReadBuffer(n int) error             { return c.unix.SetReadBuffer(n) }
func (c *unixConn) SetWriteBuffer(n int) error            { return c.unix.SetWriteBuffer(n) }
func (c *unixConn) File() (f *os.File, err error)         { return c.unix.File() }
func (c *unixConn) ReadFrom(b []byte) (int, net.Addr, error) {
	n, a, err := c.unix.ReadFrom(b)
	c.rec.observe(err)
	return n, a, err
}
func (c *unixConn) ReadFromUnix(b []byte) (int, *net.UnixAddr, error) {
	n, a, err := c.unix.ReadFromUnix(b)
	c.rec.observe(err)
	return n, a, err
}
func (c *unixConn) ReadMsgUnix(b, oob []byte) (n, oobn, flags int, addr *net.UnixAddr, err error) {
	n, oobn, flags, addr, err = c.unix.ReadMsgUnix(b, oob)
	c.rec.observe(err)
	return
}
func (c *unixConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	n, err := c.unix.WriteTo(b, addr)
	c.rec.observe(err)
	return n, err
}
func (c *unixConn) WriteToUnix(b []byte, addr *net.UnixAddr) (int, error) {
	n, err := c.unix.WriteToUnix(b, addr)
	c.rec.observe(err)
	return n, err
}
func (c *unixConn) WriteMsgUnix(b, oob []byte, addr *net.UnixAddr) (n, oobn int, err error) {
	n, oobn, err = c.unix.WriteMsgUnix(b, oob, addr)
	c.rec.observe(err)
	return
}

// readFrom lets *net.TCPConn see through a wrapped source so that sendfile
// and splice still apply when both ends are tracked.
// It returns the source's record when the source is tracked; a source
// behind an io.LimitedReader stops at the limit, not at its EOF, so its
// record is touched here and not returned.
func readFrom(dst tcpLike, r io.Reader) (int64, *record, error) {
	switch src := r.(type) {
	case *io.LimitedReader:
		inner, rec := unwrapReader(src.R)
		if rec == nil {
			n, err := dst.ReadFrom(r)
			return n, nil, err
		}
		lr := &io.LimitedReader{R: inner, N: src.N}
		n, err := dst.ReadFrom(lr)
		src.N = lr.N
		rec.touch(2)
		return n, nil, err
	default:
		inner, rec := unwrapReader(r)
		n, err := dst.ReadFrom(inner)
		return n, rec, err
	}
}

type trackedConn interface {
	net.Conn
	NetConn() net.Conn
	tracked() *record
}

func unwrapReader(r io.Reader) (io.Reader, *record) {
	if tc, ok := r.(trackedConn); ok {
		return tc.NetConn(), tc.tracked()
	}
	return r, nil
}

func unwrapWriter(w io.Writer) (io.Writer, *record) {
	if tc, ok := w.(trackedConn); ok {
		return tc.NetConn(), tc.tracked()
	}
	return w, nil
}

// WrapConn starts tracking c and returns a connection that behaves exactly
// like it: a wrapped *net.TCPConn or *net.UnixConn keeps every method of its
// type (CloseWrite, ReadFrom and the rest), and any type with SyscallConn
// keeps it. The open-site stack is the caller's. Close on the result ends
// tracking and returns what c.Close returns. WrapConn(nil) returns nil, and a
// connection this tracker already wraps is returned as it is.
//
// Wrap below TLS (the net.Conn given to tls.Client or tls.Server), so that
// the tracker sees the socket.
func (t *Tracker) WrapConn(c net.Conn) net.Conn {
	return t.wrapConn(c, false, trace.SpanContext{}, nil, 1)
}

// wrapConn wraps c; span is the span active where it was opened, if any.
func (t *Tracker) wrapConn(c net.Conn, accepted bool, span trace.SpanContext, attrs []attribute.KeyValue, skip int) net.Conn {
	if c == nil {
		return nil
	}
	if tc, ok := c.(trackedConn); ok && tc.tracked().t == t {
		return c
	}
	r := t.newRecord(KindConn, skip+1)
	r.accepted = accepted
	r.needFirstIO.Store(accepted)
	t.tel.attach(r, span, attrs)
	var w net.Conn
	switch u := c.(type) {
	case tcpLike:
		w = watchCollection(&tcpConn{conn: conn{Conn: u, rec: r}, tcp: u}, r)
	case unixLike:
		w = watchCollection(&unixConn{conn: conn{Conn: u, rec: r}, unix: u}, r)
	case syscall.Conn:
		w = watchCollection(&sysConn{conn: conn{Conn: c, rec: r}, sc: u}, r)
	default:
		w = watchCollection(&conn{Conn: c, rec: r}, r)
	}
	t.registerConn(r, c)
	return w
}

// Unwrap returns the connection under every tracker wrapper around c, or c
// itself when it is not wrapped. It stops at types the tracker did not make,
// such as *tls.Conn. The wrapper must stay reachable for as long as the
// connection is in use: once it is dropped, the tracker reports it collected.
func Unwrap(c net.Conn) net.Conn {
	for {
		tc, ok := c.(trackedConn)
		if !ok {
			return c
		}
		c = tc.NetConn()
	}
}
