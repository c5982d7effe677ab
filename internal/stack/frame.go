package stack

import "runtime"

// Frame is one symbolized frame.
type Frame struct {
	Function string // package-qualified function name
	File     string
	Line     int
}

// Frames symbolizes pcs, as returned by runtime.Callers, innermost call
// first, with inlined calls expanded.
func Frames(pcs []uintptr) []Frame {
	if len(pcs) == 0 {
		return nil
	}
	frames := runtime.CallersFrames(pcs)
	var out []Frame
	for {
		f, more := frames.Next()
		if f.Function != "" || f.File != "" {
			out = append(out, Frame{Function: f.Function, File: f.File, Line: f.Line})
		}
		if !more {
			break
		}
	}
	return out
}
