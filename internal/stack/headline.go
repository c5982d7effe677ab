package stack

import (
	"runtime/debug"
	"strings"
	"sync"
)

// Module is connleak's own module path. Its library packages are never the
// user's line; its examples, programs of their own, are.
const Module = "github.com/connleak/connleak"

// KnownLibraries are the pool and client libraries that dial, query or hold
// connections on behalf of the program, often on goroutines of their own.
// Their frames are never the user's line. Each is matched as an import path
// prefix on whole segments, so that every major version matches
// ("github.com/jackc/pgx" matches ".../pgx/v5/pgxpool").
var KnownLibraries = []string{
	"golang.org/x/net",
	"google.golang.org/grpc",
	"github.com/jackc/pgx",
	"github.com/jackc/pgconn",
	"github.com/jackc/puddle",
	"github.com/lib/pq",
	"github.com/go-sql-driver/mysql",
	"modernc.org/sqlite",
	"github.com/mattn/go-sqlite3",
	"github.com/redis/go-redis",
	"github.com/go-redis/redis",
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp",
	"github.com/XSAM/otelsql",
}

// Headline is the answer to "which line of the program owns this?" for one
// stack.
type Headline struct {
	// User is the index of the user's frame, or -1 when the stack holds
	// none.
	User int
	// Library, when User is -1, names the library whose goroutine the
	// stack belongs to ("net/http", "github.com/jackc/puddle"): its
	// outermost frame's, or the known library it falls under.
	Library string
	// Cut, when User is -1, says the stack was cut short by the capture
	// depth before it reached the goroutine's first frame: a user frame
	// may lie beyond it.
	Cut bool
}

// Find applies the headline rule to frames, innermost first. The user's
// line is the first frame of the program's main module (as
// debug.ReadBuildInfo names it; in a test binary, the module under test),
// or of a _test.go file, that is not connleak's own library code. Failing
// that, it is the first frame outside connleak, the standard library and
// KnownLibraries. A stack with neither names no user frame, and says whose
// goroutine it is instead.
func Find(frames []Frame) Headline {
	for i, f := range frames {
		if strings.HasSuffix(f.File, "_test.go") || (inMainModule(pkgOf(f.Function)) && !isOwn(pkgOf(f.Function))) {
			return Headline{User: i}
		}
	}
	for i, f := range frames {
		if !IsLibrary(f.Function) {
			return Headline{User: i}
		}
	}
	h := Headline{User: -1, Cut: true}
	for i := len(frames) - 1; i >= 0; i-- {
		pkg := pkgOf(frames[i].Function)
		if frames[i].Function == "runtime.goexit" {
			h.Cut = false
			continue
		}
		if pkg == "runtime" || pkg == "" {
			continue
		}
		h.Library = libraryOf(pkg)
		break
	}
	return h
}

// IsLibrary reports whether the function (as named in a stack) belongs to
// connleak, the standard library or one of KnownLibraries.
func IsLibrary(function string) bool {
	pkg := pkgOf(function)
	return isOwn(pkg) || isStd(pkg) || hasPrefix(pkg, KnownLibraries)
}

// libraryOf is the name a report gives the library of pkg: the known
// library it falls under, or the package itself.
func libraryOf(pkg string) string {
	for _, p := range KnownLibraries {
		if underPath(pkg, p) {
			return p
		}
	}
	return pkg
}

func isOwn(pkg string) bool { return underPath(pkg, Module) && !underPath(pkg, Module+"/examples") }

// isStd reports whether pkg is in the standard library: its first path
// element has no dot. Package main is the program's, not the library's.
func isStd(pkg string) bool {
	if pkg == "main" || pkg == "" {
		return false
	}
	first, _, _ := strings.Cut(pkg, "/")
	return !strings.Contains(first, ".")
}

var mainModule = sync.OnceValue(func() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		return bi.Main.Path
	}
	return ""
})

func inMainModule(pkg string) bool {
	if pkg == "main" {
		return true
	}
	m := mainModule()
	return m != "" && underPath(pkg, m)
}

func hasPrefix(pkg string, prefixes []string) bool {
	for _, p := range prefixes {
		if underPath(pkg, p) {
			return true
		}
	}
	return false
}

// underPath reports whether pkg is p or below it, on whole path segments.
func underPath(pkg, p string) bool {
	return pkg == p || (strings.HasPrefix(pkg, p) && pkg[len(p)] == '/')
}

// pkgOf extracts the import path from a function name as a stack names it:
// "net/http.(*Transport).dialConn", "example.com/a/b.F.func1",
// "github.com/jackc/puddle/v2.(*Pool[...]).get". A dot in the path's last
// element is escaped as %2e there ("example.com/svc%2ev2.F"), and unescaped
// here.
func pkgOf(fn string) string {
	slash := strings.LastIndexByte(fn, '/')
	dot := strings.IndexByte(fn[slash+1:], '.')
	if dot < 0 {
		return fn
	}
	return strings.ReplaceAll(fn[:slash+1+dot], "%2e", ".")
}
