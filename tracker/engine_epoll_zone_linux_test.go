//go:build linux

package tracker

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/connleak/connleak/internal/sock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// zoneChildEnv marks the child process that runs TestEpollSeesZonedPeerClose
// inside the network namespace its parent made.
const zoneChildEnv = "CONNLEAK_ZONE_CHILD"

// zoneIface is the interface that carries fe80::1 in the namespace, and so
// the zone of every address of the test's connection.
const zoneIface = "d0"

// A connection over a zoned link-local address is registered with epoll
// like any other, and its peer's close is reported on the next tick. The
// identity check compares the socket's addresses with the wrapper's, which
// name the zone: a formatter that dropped it left such a socket to the full
// sweep, minutes later. Full sweeps are off here, so nothing but epoll can
// see the close. Adding a link-local address needs a network namespace of
// the test's own, and a process inside it: the test binary runs itself
// there.
func TestEpollSeesZonedPeerClose(t *testing.T) {
	if os.Getenv(zoneChildEnv) != "" {
		zonedPeerClose(t)
		return
	}
	ip, ns := zonedNetns(t)
	self, err := os.Executable()
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	const name = "TestEpollSeesZonedPeerClose"
	cmd := exec.CommandContext(ctx, ip, "netns", "exec", ns, self,
		"-test.run=^"+name+"$", "-test.count=1", "-test.v", "-test.timeout=1m")
	cmd.Env = append(os.Environ(), zoneChildEnv+"=1")
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "the child in namespace %s failed:\n%s", ns, out)
	// A child that skipped, or matched no test, exits 0 too.
	require.Contains(t, string(out), "--- PASS: "+name, "the child did not run the test:\n%s", out)
	t.Logf("the child in namespace %s:\n%s", ns, out)
}

// zonedPeerClose is the child's half of TestEpollSeesZonedPeerClose.
func zonedPeerClose(t *testing.T) {
	const interval = 20 * time.Millisecond
	type report struct {
		leak Leak
		at   time.Time
		poll uint64 // the tracker's poll count when it reported the leak
	}
	reports := make(chan report, 4)
	var tr *Tracker
	tr = New(WithPollInterval(interval), WithGracePeriod(0), WithFullSweepEvery(0), WithLogger(nil),
		WithOnLeak(func(l Leak) {
			// Reports are delivered after the poll lock is released, and
			// before the next poll starts.
			tr.pollMu.Lock()
			n := tr.polls
			tr.pollMu.Unlock()
			reports <- report{l, time.Now(), n}
		}))
	t.Cleanup(func() { tr.Close() })
	e := epollOf(t, tr)

	host := "fe80::1%" + zoneIface
	ln, err := net.Listen("tcp6", net.JoinHostPort(host, "0"))
	require.NoError(t, err)
	defer ln.Close()
	// A listener's own address carries no zone: the dial names it again.
	port := ln.Addr().(*net.TCPAddr).Port
	c, err := tr.WrapDialer(nil)(t.Context(), "tcp", net.JoinHostPort(host, fmt.Sprint(port)))
	require.NoError(t, err)
	defer c.Close()
	s, err := ln.Accept()
	require.NoError(t, err)
	defer s.Close()
	require.Contains(t, c.LocalAddr().String(), "%"+zoneIface)
	require.Contains(t, c.RemoteAddr().String(), "%"+zoneIface)

	// The formatter on its own, on a real zoned socket: its failure names
	// the two strings, where the engine's only says the socket was lost.
	fd, ok := sock.Descriptor(Unwrap(c))
	require.True(t, ok)
	local, err := unix.Getsockname(int(fd))
	require.NoError(t, err)
	peer, err := unix.Getpeername(int(fd))
	require.NoError(t, err)
	assert.Equal(t, c.LocalAddr().String(), sock.AddrString(local))
	assert.Equal(t, c.RemoteAddr().String(), sock.AddrString(peer))

	r := c.(trackedConn).tracked()
	watch := func() uint8 {
		e.mu.Lock()
		defer e.mu.Unlock()
		return r.watch
	}
	// The poller hands the socket to the engine on its first tick.
	require.Eventually(t, func() bool { return watch() != watchNone }, 2*time.Second, time.Millisecond)
	assert.Equal(t, watchName(watchRegistered), watchName(watch()))

	require.NoError(t, s.Close())
	// Counting from the FIN's arrival, not from Close, so that a tick
	// between the two cannot be taken for a missed one.
	require.Eventually(t, func() bool { return sock.ProbeSocket(r.sock).Name == "CLOSE_WAIT" },
		time.Second, 100*time.Microsecond, "the FIN did not arrive")
	landed := time.Now()
	tr.pollMu.Lock()
	before := tr.polls
	tr.pollMu.Unlock()
	// Far more than a tick, and far less than the default five minutes
	// between full sweeps, the only other way the close could be seen.
	const patience = time.Second
	select {
	case got := <-reports:
		assert.Equal(t, r.id, got.leak.ID)
		assert.Equal(t, ReasonPeerClosed, got.leak.Reason)
		assert.Equal(t, "CLOSE_WAIT", got.leak.SocketState)
		polls := int64(got.poll) - int64(before) // below zero if reported before it was read
		t.Logf("the FIN was seen %v and its leak reported %v after it landed, %d polls later (poll interval %v)",
			max(got.leak.PeerClosedAt.Sub(landed), 0), got.at.Sub(landed), polls, interval)
		// The next tick harvests the event; a zero grace still ends after
		// the moment the close was seen, so the poll the tracker schedules
		// right after that tick reports it. Counting polls rather than
		// time keeps a slow machine from failing the test.
		assert.LessOrEqual(t, polls, int64(2), "the close must be seen on the first tick after it")
	case <-time.After(patience):
		t.Fatalf("the peer's close was not reported within %v (%d poll intervals, no full sweep); the socket's registration: %s",
			patience, patience/interval, watchName(watch()))
	}
}

// watchName names a registration state, for failure messages.
func watchName(w uint8) string {
	switch w {
	case watchNone:
		return "watchNone"
	case watchRegistered:
		return "watchRegistered"
	case watchEveryTick:
		return "watchEveryTick"
	case watchLost:
		return "watchLost"
	}
	return fmt.Sprintf("watch(%d)", w)
}

// zoneNetnsSeq tells apart the namespaces of one process (-count=N).
var zoneNetnsSeq atomic.Uint64

// zonedNetns makes a network namespace, deleted when t ends, with
// fe80::1/64 on interface zoneIface, and returns the ip command and the
// namespace's name. It skips t when the namespace cannot be made, and fails
// it instead under CI, where a skip would hide that the test never ran.
func zonedNetns(t *testing.T) (ip, ns string) {
	t.Helper()
	unavailable := func(format string, args ...any) {
		t.Helper()
		msg := "needs a network namespace with a link-local address: " + fmt.Sprintf(format, args...)
		if os.Getenv("CI") != "" {
			t.Fatal(msg + " (CI is set: this test must run)")
		}
		t.Skip(msg)
	}
	if os.Geteuid() != 0 {
		unavailable("not root")
	}
	ip, err := exec.LookPath("ip")
	if err != nil {
		// root's PATH usually has the sbin directories, a test's may not.
		for _, p := range []string{"/usr/sbin/ip", "/sbin/ip"} {
			if _, serr := os.Stat(p); serr == nil {
				ip, err = p, nil
				break
			}
		}
	}
	if err != nil {
		unavailable("no ip command (iproute2)")
	}
	run := func(args ...string) error {
		out, err := exec.Command(ip, args...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
		}
		return nil
	}
	ns = fmt.Sprintf("connleak-zone-%d-%d", os.Getpid(), zoneNetnsSeq.Add(1))
	if err := run("netns", "add", ns); err != nil {
		unavailable("%v", err)
	}
	t.Cleanup(func() {
		if err := run("netns", "del", ns); err != nil {
			t.Errorf("the namespace stays behind: %v", err)
		}
	})
	if err := run("-n", ns, "link", "set", "lo", "up"); err != nil {
		unavailable("%v", err)
	}
	// Some kernels lack the dummy driver; a veth pair, whose other end
	// stays in the namespace too, does as well.
	if err := run("-n", ns, "link", "add", zoneIface, "type", "dummy"); err != nil {
		if verr := run("-n", ns, "link", "add", zoneIface, "type", "veth", "peer", "name", zoneIface+"p"); verr != nil {
			unavailable("%v; %v", err, verr)
		}
		if err := run("-n", ns, "link", "set", zoneIface+"p", "up"); err != nil {
			unavailable("%v", err)
		}
	}
	if err := run("-n", ns, "link", "set", zoneIface, "up"); err != nil {
		unavailable("%v", err)
	}
	// nodad: duplicate address detection would keep the address tentative,
	// and unusable, for a second or more.
	if err := run("-n", ns, "addr", "add", "fe80::1/64", "dev", zoneIface, "nodad"); err != nil {
		unavailable("%v", err)
	}
	// ip netns exec needs mount namespaces as well.
	if err := run("netns", "exec", ns, "true"); err != nil {
		unavailable("%v", err)
	}
	return ip, ns
}
