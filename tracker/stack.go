package tracker

import (
	"fmt"
	"strings"

	"github.com/connleak/connleak/internal/stack"
)

// Stack is a captured call stack: program counters only, symbolized when it is
// printed. Stacks captured at the same site share one interned copy, so a
// hundred thousand connections opened by one line of code hold one Stack.
// The zero Stack is empty.
type Stack struct {
	e *stack.Entry
}

// Frame is one symbolized frame of a Stack.
type Frame struct {
	Function string // package-qualified function name
	File     string
	Line     int
}

// String formats the frame as "function (file:line)".
func (f Frame) String() string {
	if f.Function == "" {
		return "unknown"
	}
	return fmt.Sprintf("%s (%s:%d)", f.Function, f.File, f.Line)
}

// IsZero reports whether no stack was captured.
func (s Stack) IsZero() bool { return len(s.e.PCs()) == 0 }

// PCs returns the program counters of the stack, innermost first. The slice
// is shared: callers must not modify it.
func (s Stack) PCs() []uintptr { return s.e.PCs() }

// Frames symbolizes the stack, innermost call first.
func (s Stack) Frames() []Frame {
	fs := stack.Frames(s.e.PCs())
	out := make([]Frame, len(fs))
	for i, f := range fs {
		out[i] = Frame(f)
	}
	return out
}

// Site is the headline of a report: the line of the program that owns a
// resource. It is the first frame of the program's main module (in a test
// binary, the module under test, and any _test.go file), or failing that
// the first frame outside connleak, the standard library and the known pool
// and client libraries (pgx and puddle, go-redis, gRPC, the database
// drivers). Libraries such as net/http, pgxpool and go-redis dial on
// goroutines of their own, whose stacks hold no line of the program: the
// Site then has no Frame, and Goroutine names the library instead of
// presenting one of its frames as the user's line.
type Site struct {
	// Frame is the user's line; zero when the stack holds none.
	Frame
	// Goroutine, when Frame is zero, names the library whose goroutine
	// opened the resource ("net/http", "github.com/jackc/puddle"); empty
	// when the stack was cut short (WithStackDepth) before it reached its
	// goroutine's first frame, or is empty.
	Goroutine string
}

// IsZero reports whether the site names neither a line nor a library.
func (s Site) IsZero() bool { return s.Frame == (Frame{}) && s.Goroutine == "" }

// String is the user's line as "function (file:line)", or says whose
// goroutine opened the resource: "on a net/http goroutine: no line of the
// program is in its stack".
func (s Site) String() string {
	switch {
	case s.Frame != (Frame{}):
		return s.Frame.String()
	case s.Goroutine != "":
		return "on a " + s.Goroutine + " goroutine: no line of the program is in its stack"
	}
	return "no line of the program in the frames captured (see WithStackDepth)"
}

// headline is the site as a report's second line reads it: "at" a line, or
// the goroutine's library.
func (s Site) headline() string {
	if s.Frame != (Frame{}) {
		return "at " + s.Frame.String()
	}
	return s.String()
}

// Site returns the stack's headline (see Site).
func (s Stack) Site() Site {
	fs := stack.Frames(s.e.PCs())
	h := stack.Find(fs)
	if h.User >= 0 {
		return Site{Frame: Frame(fs[h.User])}
	}
	if h.Cut {
		return Site{}
	}
	return Site{Goroutine: h.Library}
}

// String symbolizes the stack in the format of a goroutine dump, with the
// user's line first so that the line to fix is the first thing read.
func (s Stack) String() string {
	frames := stack.Frames(s.e.PCs())
	if len(frames) == 0 {
		return "(no stack)\n"
	}
	var b strings.Builder
	if user := stack.Find(frames).User; user > 0 {
		writeFrame(&b, frames[user], "")
		b.WriteString("\tcalled through:\n")
		for _, f := range frames[:user] {
			writeFrame(&b, f, "\t")
		}
		b.WriteString("\tthen:\n")
		frames = frames[user+1:]
	}
	for _, f := range frames {
		writeFrame(&b, f, "")
	}
	return b.String()
}

func writeFrame(b *strings.Builder, f stack.Frame, indent string) {
	fmt.Fprintf(b, "%s%s\n%s\t%s:%d\n", indent, f.Function, indent, f.File, f.Line)
}
