package tracker

import "github.com/connleak/connleak/internal/sock"

// SSName returns the name ss prints for a TCP state that Resource.SocketState
// or Socket.State spells the kernel's way: "CLOSE_WAIT" is "CLOSE-WAIT",
// "ESTABLISHED" is "ESTAB", "FIN_WAIT1" is "FIN-WAIT-1", "LISTEN" stays. A
// state that is no TCP state, such as "" for a socket that is not TCP, is
// returned unchanged.
func SSName(state string) string { return sock.SSName(state) }
