package stack

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestPkgOf(t *testing.T) {
	for fn, want := range map[string]string{
		"net/http.(*Transport).dialConn":                        "net/http",
		"net.(*Dialer).DialContext":                             "net",
		"github.com/connleak/connleak/tracker.(*conn).Read":     "github.com/connleak/connleak/tracker",
		"main.main.func1":                                       "main",
		"example.com/a.b/c.F":                                   "example.com/a.b/c",
		"github.com/jackc/puddle/v2.(*Pool[...]).acquire.func1": "github.com/jackc/puddle/v2",
		"example.com/svc%2ev2.Connect":                          "example.com/svc.v2",
	} {
		assert.Equal(t, want, pkgOf(fn), fn)
	}
}

func TestIsLibrary(t *testing.T) {
	for fn, want := range map[string]bool{
		"net/http.(*Transport).dialConn":                        true,
		"internal/poll.(*FD).Read":                              true,
		"github.com/connleak/connleak/tracker.(*Tracker).Track": true,
		"github.com/connleak/connleak/internal/stack.Find":      true,
		"github.com/jackc/pgx/v5/pgxpool.(*Pool).Acquire":       true,
		"github.com/jackc/puddle/v2.(*Pool[...]).Acquire":       true,
		"github.com/redis/go-redis/v9.(*baseClient).dial":       true,
		"google.golang.org/grpc.(*ClientConn).Invoke":           true,
		"github.com/connleak/connleak/examples/closewait.main":  false,
		"github.com/jackc/pgxfoo.F":                             false, // whole path segments only
		"main.main":                                             false,
		"example.com/app/store.(*DB).Get":                       false,
	} {
		assert.Equal(t, want, IsLibrary(fn), fn)
	}
}

func TestFind(t *testing.T) {
	frame := func(fn, file string) Frame { return Frame{Function: fn, File: file, Line: 1} }
	transportDial := []Frame{
		frame("github.com/connleak/connleak/tracker.(*Tracker).WrapDialer.func1", "listener.go"),
		frame("net/http.(*Transport).dial", "transport.go"),
		frame("net/http.(*Transport).dialConn", "transport.go"),
		frame("net/http.(*Transport).dialConnFor", "transport.go"),
		frame("runtime.goexit", "asm_amd64.s"),
	}
	assert.Equal(t, Headline{User: -1, Library: "net/http"}, Find(transportDial))
	assert.Equal(t, Headline{User: -1, Library: "net/http", Cut: true}, Find(transportDial[:3]),
		"no goroutine start: the stack was cut")

	puddle := []Frame{
		frame("github.com/connleak/connleak/tracker.(*Tracker).WrapDialer.func1", "listener.go"),
		frame("github.com/jackc/pgx/v5/pgconn.connectOne", "pgconn.go"),
		frame("github.com/jackc/puddle/v2.(*Pool[...]).initResourceValue.func1", "pool.go"),
		frame("runtime.goexit", "asm_amd64.s"),
	}
	assert.Equal(t, Headline{User: -1, Library: "github.com/jackc/puddle"}, Find(puddle))

	// As the real clients dial (tracker's stack_clients_test.go): pgxpool
	// filling MinConns, and go-redis filling a command's miss.
	pgxpoolFill := []Frame{
		frame("github.com/jackc/pgx/v5/pgconn.connectOne", "pgconn.go"),
		frame("github.com/jackc/pgx/v5.ConnectConfig", "conn.go"),
		frame("github.com/jackc/pgx/v5/pgxpool.NewWithConfig.func3", "pool.go"),
		frame("github.com/jackc/puddle/v2.(*Pool[...]).CreateResource", "pool.go"),
		frame("github.com/jackc/pgx/v5/pgxpool.(*Pool).createIdleResources.func1", "pool.go"),
		frame("runtime.goexit", "asm_amd64.s"),
	}
	assert.Equal(t, Headline{User: -1, Library: "github.com/jackc/pgx"}, Find(pgxpoolFill))
	goRedis := []Frame{
		frame("github.com/redis/go-redis/v9.(*baseClient).dial", "redis.go"),
		frame("github.com/redis/go-redis/v9.(*hooksMixin).dialHook", "redis.go"),
		frame("github.com/redis/go-redis/v9.newConnPool.func1", "options.go"),
		frame("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).dialConn", "pool.go"),
		frame("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).newConn", "pool.go"),
		frame("github.com/redis/go-redis/v9/internal/pool.(*ConnPool).queuedNewConn.func2", "pool.go"),
		frame("runtime.goexit", "asm_amd64.s"),
	}
	assert.Equal(t, Headline{User: -1, Library: "github.com/redis/go-redis"}, Find(goRedis))

	user := []Frame{
		frame("github.com/connleak/connleak/tracker.(*Tracker).WrapDialer.func1", "listener.go"),
		frame("example.com/vendored/lib.Dial", "lib.go"),
		frame("github.com/connleak/connleak/examples/echo.(*Client).Echo", "echo.go"),
		frame("main.main", "main.go"),
		frame("runtime.main", "proc.go"),
		frame("runtime.goexit", "asm_amd64.s"),
	}
	assert.Equal(t, 2, Find(user).User, "the main module's frame before a third-party one")
	assert.Equal(t, 1, Find(user[:2]).User, "else the first frame outside the known libraries")

	inTest := []Frame{
		frame("github.com/connleak/connleak/tracker.(*Tracker).WrapDialer.func1", "listener.go"),
		frame("github.com/connleak/connleak/tracker.TestX", "x_test.go"),
	}
	assert.Equal(t, 1, Find(inTest).User, "a _test.go frame is the test's own line")
	assert.Equal(t, Headline{User: -1, Cut: true}, Find(nil))
}
