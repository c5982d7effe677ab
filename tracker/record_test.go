package tracker

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

// A record is allocated for every tracked connection: it must stay in the
// runtime's 256-byte size class, or the memory bar of 512 B per connection
// (the record, the wrapper and the registry's share) goes.
func TestRecordFitsItsSizeClass(t *testing.T) {
	assert.LessOrEqual(t, unsafe.Sizeof(record{}), uintptr(256))
}
