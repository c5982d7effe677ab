package tracker

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOptionsAreValidated(t *testing.T) {
	for _, tc := range []struct {
		opt  Option
		name string
	}{
		{WithPollInterval(0), "WithPollInterval"},
		{WithPollInterval(-time.Second), "WithPollInterval"},
		{WithGracePeriod(-1), "WithGracePeriod"},
		{WithStackDepth(0), "WithStackDepth"},
		{WithStackDepth(1000), "WithStackDepth"},
		{WithHoldLimit("tx", 0), "WithHoldLimit"},
	} {
		err := Validate(tc.opt)
		require.Error(t, err, tc.name)
		assert.Contains(t, err.Error(), tc.name)
		assert.PanicsWithError(t, err.Error(), func() { New(tc.opt) })
	}
	assert.NoError(t, Validate(WithPollInterval(time.Millisecond), WithGracePeriod(0), WithStackDepth(1), nil))
}
