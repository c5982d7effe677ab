// Package stack captures the call stacks of the code that opens a tracked
// resource, interns them so that every resource opened on one call path
// shares one copy, and names the line of the program that owns a stack.
//
//	st := stack.NewTable()
//	e := st.Capture(0, 32) // the caller's stack, at most 32 frames
//	defer st.Release(e)
//	frames := stack.Frames(e.PCs())
//	if h := stack.Find(frames); h.User >= 0 {
//		fmt.Println(frames[h.User].Function) // the user's line
//	}
//
// A capture on a path already seen costs a walk of the frame-pointer chain
// and a map lookup (amd64), or, for one of the last few paths through its
// call site, the walk alone, comparing each frame with the remembered one;
// runtime.Callers runs once per distinct path. The
// stacks returned are always runtime.Callers's, with the same skip and depth.
// A table forgets the stacks no holder uses when the tracker's poller calls
// MaybeSweep, never during a capture.
//
// Setting CONNLEAK_STACKWALK=off in the environment (WalkEnv) before the
// program starts turns the walk off: every capture then calls
// runtime.Callers, for a program where the walk is suspected of a wrong
// stack, or to measure what it saves.
package stack
