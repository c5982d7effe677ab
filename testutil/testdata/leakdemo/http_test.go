package leakdemo

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/connleak/connleak/nethttp"
	"github.com/connleak/connleak/testutil"
)

// A plain http.Transport with the tracker's dialer, and a response body
// never closed. net/http dials on a goroutine of its own, so no line of this
// test is in the conn's stack: the report must say so rather than name a
// line of net/http as the test's.
func TestLeakHTTPTransport(t *testing.T) {
	tr := testutil.NewTracker(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	// The server's cleanup runs before the tracker's: the transport, waiting
	// for the body to be read, never sees the server hang up, and the conn
	// is in CLOSE_WAIT when it is reported.
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: &http.Transport{DialContext: tr.WrapDialer(nil)}}
	resp, err := client.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	hold(resp)
}

// The same leak through nethttp's transport: the body is tracked from the
// line that called Get, and holds the connection it is read from, so both
// are reported at this test's line.
func TestLeakNetHTTPBody(t *testing.T) {
	tr := testutil.NewTracker(t)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "no", http.StatusInternalServerError)
	}))
	t.Cleanup(srv.Close)
	client := &http.Client{Transport: nethttp.NewTransport(nil, nethttp.WithTracker(tr))}
	resp, err := client.Get(srv.URL) // LINE:nethttp-get
	if err != nil {
		t.Fatal(err)
	}
	hold(resp)
}
