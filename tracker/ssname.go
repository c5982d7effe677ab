package tracker

import (
	"sync"

	"github.com/connleak/connleak/internal/sock"
)

// SSName returns the name ss prints for a TCP state that Resource.SocketState
// or Socket.State spells the kernel's way: "CLOSE_WAIT" is "CLOSE-WAIT",
// "ESTABLISHED" is "ESTAB", "FIN_WAIT1" is "FIN-WAIT-1", "LISTEN" stays. A
// state that is no TCP state, such as "" for a socket that is not TCP, is
// returned unchanged.
func SSName(state string) string { return sock.SSName(state) }

// sockStates interns the state names the poller reads off sockets, so that
// a record keeps its socket's state in one byte: the names come from the
// kernel's short list of TCP states, and a record has no room for a string.
var sockStates = struct {
	mu    sync.Mutex
	names []string // by code; code 0 is ""
}{names: []string{""}}

// sockStateCode returns the code of name, giving it one if it has none. In
// the unlikely case that 255 names are taken, a new one is kept as "".
func sockStateCode(name string) uint8 {
	sockStates.mu.Lock()
	defer sockStates.mu.Unlock()
	for i, n := range sockStates.names {
		if n == name {
			return uint8(i)
		}
	}
	if len(sockStates.names) > 255 {
		return 0
	}
	sockStates.names = append(sockStates.names, name)
	return uint8(len(sockStates.names) - 1)
}

// sockStateName returns the name of a code sockStateCode gave.
func sockStateName(code uint8) string {
	sockStates.mu.Lock()
	defer sockStates.mu.Unlock()
	return sockStates.names[code]
}
