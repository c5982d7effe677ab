package sock

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Every state the Linux probe can name has an ss name.
func TestSSNameCoversLinuxStates(t *testing.T) {
	for st, kernel := range tcpStateNames {
		if kernel == "" {
			continue
		}
		_, ok := ssNames[kernel]
		assert.True(t, ok, "state %d (%s) has no ss name", st, kernel)
	}
}

// The names agree with ss's own, on real sockets of this process in
// LISTEN, ESTAB, FIN-WAIT-2 and CLOSE-WAIT, each read by the sweep and by ss.
func TestSSNameAgreesWithSS(t *testing.T) {
	ssPath, err := exec.LookPath("ss")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatalf("ss (iproute2) is missing under CI: %v", err)
		}
		t.Skipf("ss (iproute2) is not installed: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	pair := func() (net.Conn, net.Conn) {
		c, err := net.Dial("tcp", ln.Addr().String())
		require.NoError(t, err)
		s, err := ln.Accept()
		require.NoError(t, err)
		t.Cleanup(func() { c.Close(); s.Close() })
		return c, s
	}
	pair()            // both ends ESTABLISHED
	half, _ := pair() // half: FIN_WAIT2 once its FIN is acked; the other end CLOSE_WAIT
	require.NoError(t, half.(*net.TCPConn).CloseWrite())

	ours := map[string]bool{ln.Addr().String(): true}
	want := map[string]int{"LISTEN": 1, "ESTAB": 2, "FIN-WAIT-2": 1, "CLOSE-WAIT": 1}
	var got map[string]string // "local peer" -> kernel name, for our sockets
	deadline := time.Now().Add(5 * time.Second)
	for {
		got = map[string]string{}
		counts := map[string]int{}
		socks, err := List()
		require.NoError(t, err)
		for _, s := range socks {
			if s.Network == "tcp" && (ours[s.LocalAddr] || ours[s.RemoteAddr]) {
				got[s.LocalAddr+" "+s.RemoteAddr] = s.State
				counts[SSName(s.State)]++
			}
		}
		if fmt.Sprint(counts) == fmt.Sprint(want) {
			break
		}
		require.True(t, time.Now().Before(deadline), "the sockets did not settle: %v", counts)
		time.Sleep(10 * time.Millisecond)
	}

	out, err := exec.Command(ssPath, "-tanH").Output()
	require.NoError(t, err)
	fromSS := map[string]string{} // "local peer" -> ss's state
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text()) // State Recv-Q Send-Q Local Peer
		if len(f) < 5 {
			continue
		}
		peer := f[4]
		if strings.HasSuffix(peer, ":*") {
			peer = "" // a listener has no peer; the sweep leaves it empty
		}
		fromSS[f[3]+" "+peer] = f[0]
	}
	for addrs, kernel := range got {
		ssState, ok := fromSS[addrs]
		if assert.True(t, ok, "ss does not list %s:\n%s", addrs, out) {
			assert.Equal(t, ssState, SSName(kernel), "%s: the kernel's %s", addrs, kernel)
		}
	}
}
