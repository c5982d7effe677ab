//go:build !amd64

package stack

import "unsafe"

// canWalkFrames is false where the frame-pointer layout has not been checked:
// there every stack is captured with runtime.Callers.
const canWalkFrames = false

func framePointer() unsafe.Pointer { return nil }
