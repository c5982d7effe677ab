//go:build amd64

package stack

import "unsafe"

// canWalkFrames: on amd64 every Go function that makes a call keeps the
// frame-pointer chain (saved BP, then the return address), so the physical
// call stack can be read without the runtime's unwinder.
const canWalkFrames = true

// framePointer returns the frame pointer of its caller.
func framePointer() unsafe.Pointer
