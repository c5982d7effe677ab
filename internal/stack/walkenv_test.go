package stack

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// walkOffChild tells a re-run of the test binary that it is the child of
// TestWalkEnvOff.
const walkOffChild = "CONNLEAK_STACK_TEST_WALK_OFF_CHILD"

// WalkEnv is read once, when the program starts, so the switch is tested in
// a fresh run of this test binary with CONNLEAK_STACKWALK=off, which runs
// the capture tests again there: every capture must then go through
// runtime.Callers and give the same stacks.
func TestWalkEnvOff(t *testing.T) {
	if os.Getenv(walkOffChild) != "" {
		require.False(t, walkEnabled, "%s=%s", WalkEnv, os.Getenv(WalkEnv))
		st := NewTable()
		for range 2 {
			e, want := site(st, 0, 32)
			require.NotNil(t, e)
			assert.Equal(t, framesOf(want), framesOf(e.pcs))
		}
		assert.Equal(t, int64(2), st.callers.Load())
		assert.Zero(t, walkedKeys(st))
		t.Log("child: the walk is off")
		return
	}
	tests := "^(TestWalkEnvOff|TestCaptureMatchesRuntimeCallers|TestWalkedCaptureRespectsSkipAndDepth|" +
		"TestDistinctPathsGetDistinctStacks|TestGenericInstantiationsAtOneSite|TestCaptureConcurrentWithSweep)$"
	cmd := exec.Command(os.Args[0], "-test.run="+tests, "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), WalkEnv+"=off", walkOffChild+"=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "child: the walk is off")
	assert.Contains(t, string(out), "--- PASS: TestCaptureMatchesRuntimeCallers")
	assert.NotContains(t, string(out), "--- SKIP")
}
