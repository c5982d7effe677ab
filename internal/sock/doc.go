// Package sock is connleak's only contact with the operating system's
// sockets: it finds the descriptor under a connection without keeping the
// connection reachable, probes a socket for a peer that has closed
// (TCP_INFO on Linux, TCP_CONNECTION_INFO on macOS, recv(MSG_PEEK)
// elsewhere on Unix), reads Linux socket cookies, lists the process's own
// sockets from /proc (the process sweep), and formats socket addresses as
// package net does. Every system call and build tag of the project that is
// not the tracker's epoll engine lives here.
//
//	var h sock.Handle
//	h.Describe(conn, "tcp")
//	if p := sock.ProbeSocket(h); p.State >= sock.PeerClosed {
//		fmt.Println("peer gone:", p.Name) // "CLOSE_WAIT"
//	}
package sock
