package tracker

// sockState is what a probe learned about a socket.
type sockState uint8

const (
	sockUnknown    sockState = iota // could not tell (not a stream socket, no support, fd gone)
	sockOpen                        // nothing says the peer has gone
	sockPeerClosed                  // the peer sent FIN (CLOSE_WAIT and later)
	sockReset                       // the connection was reset or torn down while the fd is open
)

// sockProbe is the result of one probe: the verdict and the platform's own
// name for the socket state ("CLOSE_WAIT"), for reports.
type sockProbe struct {
	state sockState
	name  string
}

// sockHandle identifies the socket under a tracked connection without keeping
// the connection reachable: the descriptor number and, where the platform has
// one, a cookie that tells a reused descriptor from the original. The cookie
// is read off the program's dial path (see record.identify); zero means not
// known.
type sockHandle struct {
	fd     uintptr
	cookie uint64
	stream bool // TCP or unix stream: peer close means something
	tcp    bool
	ok     bool
}
