package sock

import (
	"net"
	"syscall"
)

// State is what a probe learned about a socket.
type State uint8

const (
	Unknown    State = iota // could not tell (not a stream socket, no support, descriptor gone)
	Open                    // nothing says the peer has gone
	PeerClosed              // the peer sent FIN (CLOSE_WAIT and later)
	Reset                   // the connection was reset or torn down while the descriptor is open
)

// Probe is the result of one probe: the verdict and the platform's own
// name for the socket state ("CLOSE_WAIT"), for reports.
type Probe struct {
	State State
	Name  string
}

// Handle identifies the socket under a connection without keeping the
// connection reachable: the descriptor number and, on Linux, the cookie
// that tells a reused descriptor from the original (zero: not known).
type Handle struct {
	FD     uintptr
	Cookie uint64
	Stream bool // TCP or unix stream: a peer close means something
	TCP    bool
	OK     bool // FD is valid
}

// Describe fills the zero h from the socket under c, and leaves it zero (not
// OK) when c has no descriptor. The cookie is not read here: that system
// call would be paid by every connection, most of which close before anyone
// looks at them.
func (h *Handle) Describe(c net.Conn, network string) {
	if !h.readDescriptor(c) {
		*h = Handle{}
		return
	}
	switch network {
	case "tcp", "tcp4", "tcp6":
		h.TCP, h.Stream = true, true
	case "unix":
		h.Stream = true
	}
}

// Descriptor finds the descriptor under x (a connection or listener with
// SyscallConn) without keeping x reachable and without dup'ing it, as File
// would.
func Descriptor(x any) (fd uintptr, ok bool) {
	var h Handle
	if !h.readDescriptor(x) {
		return 0, false
	}
	return h.FD, true
}

// readDescriptor sets h.FD and h.OK from the descriptor under x. The closure
// handed to Control captures only h, which already lives on the heap when h
// is part of a tracker's record: one allocation fewer on every wrapped
// connection.
func (h *Handle) readDescriptor(x any) bool {
	sc, isSC := x.(syscall.Conn)
	if !isSC {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	err = raw.Control(func(d uintptr) { h.FD, h.OK = d, true })
	return err == nil && h.OK
}

// Socket is one socket of this process, as the process sweep found it.
type Socket struct {
	FD         int
	Network    string // "tcp", "tcp6", "udp", "unix", ...
	LocalAddr  string
	RemoteAddr string
	State      string // the kernel's state name ("ESTABLISHED", "CLOSE_WAIT"); "" if not TCP
	Cookie     uint64 // the kernel's socket cookie; 0 if unknown
}
