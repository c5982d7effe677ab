package sock

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSSNameSpellings(t *testing.T) {
	for kernel, want := range map[string]string{
		"ESTABLISHED": "ESTAB", "CLOSE_WAIT": "CLOSE-WAIT", "TIME_WAIT": "TIME-WAIT",
		"SYN_SENT": "SYN-SENT", "FIN_WAIT1": "FIN-WAIT-1", "FIN_WAIT2": "FIN-WAIT-2",
		"LISTEN": "LISTEN", "LAST_ACK": "LAST-ACK", "CLOSE": "UNCONN",
		// macOS spells some states its own way.
		"SYN_RECEIVED": "SYN-RECV", "FIN_WAIT_1": "FIN-WAIT-1", "FIN_WAIT_2": "FIN-WAIT-2", "CLOSED": "UNCONN",
		// Not TCP states: the peek probe's verdicts, a socket that is not TCP.
		"PEER_CLOSED": "PEER_CLOSED", "OPEN": "OPEN", "": "",
	} {
		assert.Equal(t, want, SSName(kernel), "SSName(%q)", kernel)
	}
}
