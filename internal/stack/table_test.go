package stack

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSweepForgetsUnusedStacksOnly(t *testing.T) {
	st := NewTable()
	for i := range 1000 {
		st.Release(st.intern([]uintptr{uintptr(i + 1)}))
	}
	kept := st.intern([]uintptr{1, 2, 3})
	assert.Equal(t, 1001, st.Size())
	st.Sweep()
	assert.Equal(t, 1, st.Size())
	assert.Same(t, kept, st.intern([]uintptr{1, 2, 3}), "a stack in use is never forgotten")
	assert.Equal(t, int64(2), kept.Refs())
}

func TestMaybeSweepWaitsForTheTableToDouble(t *testing.T) {
	st := NewTable()
	var held []*Entry
	for i := range minSweep {
		held = append(held, st.intern([]uintptr{uintptr(i + 1)}))
	}
	st.MaybeSweep() // minSweep new entries, all in use: swept, nothing forgotten
	require.Equal(t, minSweep, st.Size())
	for i := range minSweep - 1 {
		st.Release(st.intern([]uintptr{uintptr(i + 1_000_000)}))
	}
	st.MaybeSweep()
	assert.Equal(t, 2*minSweep-1, st.Size(), "grown by less than it held: left alone")
	st.Release(st.intern([]uintptr{2_000_000}))
	st.MaybeSweep()
	assert.Equal(t, minSweep, st.Size(), "doubled: the unused stacks are forgotten")
	for _, e := range held {
		st.Release(e)
	}
}

func TestReleasedEntryIsNotHandedOutAfterSweep(t *testing.T) {
	st := NewTable()
	e := st.intern([]uintptr{7})
	st.Release(e)
	st.Sweep()
	assert.Negative(t, e.Refs())
	e2 := st.intern([]uintptr{7})
	assert.NotSame(t, e, e2)
	assert.Equal(t, int64(1), e2.Refs())
}

// A stack whose hash another stack holds in the table gets an entry of its
// own, every time, outside the table; the holder is left alone.
func TestInternHashCollision(t *testing.T) {
	st := NewTable()
	a := st.intern([]uintptr{1, 2})
	b := []uintptr{3, 4}
	h := st.hashPCs(b)
	st.shards[h%shards].m[h] = a // as if a hashed like b
	got := st.intern(b)
	again := st.intern(b)
	assert.Equal(t, b, got.PCs())
	assert.NotSame(t, a, got)
	assert.NotSame(t, got, again)
	assert.Equal(t, int64(1), a.Refs())
	assert.Same(t, a, st.shards[h%shards].m[h])
}

// A capture never sweeps, however many unused stacks the table holds: they
// stay until the poller's MaybeSweep, and the capture's cost does not depend
// on them.
func TestCaptureLeavesUnusedStacksToTheSweep(t *testing.T) {
	st := NewTable()
	const unused = shards * 2 * minSweep // thousands per shard for a capture to find, if it swept
	for k := range unused {
		st.Release(st.intern([]uintptr{uintptr(k) + 1}))
	}
	e := st.Capture(0, 32)
	require.NotNil(t, e)
	assert.Equal(t, unused+1, st.Size())
	st.Release(e)
	st.MaybeSweep()
	assert.Zero(t, st.Size())
}

// A stack given to Intern is the entry Capture made for it, with a
// reference of its own.
func TestInternSharesCapturedEntries(t *testing.T) {
	st := NewTable()
	e := st.Capture(0, 32)
	got := st.Intern(append([]uintptr(nil), e.PCs()...))
	assert.Same(t, e, got)
	assert.Equal(t, int64(2), got.Refs())
	assert.Nil(t, st.Intern(nil))
}
