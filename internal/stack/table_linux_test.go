package stack

import (
	"runtime/debug"
	"syscall"
	"testing"
	"unsafe"
)

// A key whose next frame lies on a page that cannot be read does not match
// a stack whose frame below links elsewhere, and never reads that page: a
// lookup reads a frame only where the frame below links to it.
func TestMatchesReadsNoFrameALinkDoesNotLeadTo(t *testing.T) {
	goexitPC := goroutineStart()
	page := syscall.Getpagesize()
	mem, err := syscall.Mmap(-1, 0, 2*page, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	base := unsafe.Pointer(&mem[page-32])
	word := func(i int) *uintptr { return (*uintptr)(unsafe.Add(base, 8*i)) }
	*word(0), *word(1) = uintptr(base)+16, 0x1234
	*word(2), *word(3) = 0, 0x5678 // links nowhere
	w := newWalkedStack([]uintptr{0x1234, 0x5678, goexitPC}, []uintptr{16, uintptr(page) - 16}, 0, 0, nil)
	if err := syscall.Mprotect(mem[page:], syscall.PROT_NONE); err != nil {
		t.Fatal(err)
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("read the page behind a broken link: %v", r)
		}
	}()
	if w.matches(base) {
		t.Fatal("matched a stack whose frame links elsewhere")
	}
}
