package sock

// ssNames maps the kernel's TCP state names, as the probes and the process
// sweep give them (Linux's and macOS's spellings both), to the names ss
// prints. People who meet a CLOSE_WAIT incident know ss's names
// ("CLOSE-WAIT"), so pages that sit next to ss's output use them.
var ssNames = map[string]string{
	"ESTABLISHED":  "ESTAB",
	"SYN_SENT":     "SYN-SENT",
	"SYN_RECV":     "SYN-RECV",
	"SYN_RECEIVED": "SYN-RECV",
	"FIN_WAIT1":    "FIN-WAIT-1",
	"FIN_WAIT_1":   "FIN-WAIT-1",
	"FIN_WAIT2":    "FIN-WAIT-2",
	"FIN_WAIT_2":   "FIN-WAIT-2",
	"TIME_WAIT":    "TIME-WAIT",
	// ss calls TCP_CLOSE "UNCONN". An open descriptor is left in it after
	// a reset, and ss never lists it then: the kernel has unhashed it.
	"CLOSE":      "UNCONN",
	"CLOSED":     "UNCONN",
	"CLOSE_WAIT": "CLOSE-WAIT",
	"LAST_ACK":   "LAST-ACK",
	"LISTEN":     "LISTEN",
	"CLOSING":    "CLOSING",
	"UNKNOWN":    "UNKNOWN",
}

// SSName returns the name ss gives the TCP state that the kernel, as the
// probes and the sweep spell it, calls kernel: "CLOSE_WAIT" is
// "CLOSE-WAIT", "ESTABLISHED" is "ESTAB". A name that is no TCP state (the
// peek probe's "PEER_CLOSED", an empty string) is returned as it is.
func SSName(kernel string) string {
	if n, ok := ssNames[kernel]; ok {
		return n
	}
	return kernel
}
