package sqlpool_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/connleak/connleak/testutil"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// failures records what testutil would fail a test with.
type failures struct{ msgs []string }

func (f *failures) Errorf(format string, args ...any) {
	f.msgs = append(f.msgs, fmt.Sprintf(format, args...))
}

// Rows left open by a query that took the connection from the pool fail a
// testutil check naming the query's line, though they are carried by the
// connection's checkout rather than tracked on their own; closed, nothing
// fails, and neither do the pool's idle connections.
func TestUnclosedRowsFailVerifyNone(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			tr, _ := newTracker(t)
			db := b.open(t, tr)
			ctx := context.Background()
			var one int
			require.NoError(t, db.QueryRowContext(ctx, "SELECT 1").Scan(&one)) // returned: idle in the pool

			rows, err := db.QueryContext(ctx, "SELECT 1")
			line := here()
			require.NoError(t, err)
			var f failures
			testutil.VerifyNone(&f, testutil.WithTracker(tr), testutil.WithTimeout(0))
			require.Len(t, f.msgs, 1)
			assert.Contains(t, f.msgs[0], fmt.Sprintf("sql.checkout opened at testutil_test.go:%d", line))
			assert.NotContains(t, f.msgs[0], secret)

			require.NoError(t, rows.Close())
			f = failures{}
			testutil.VerifyNone(&f, testutil.WithTracker(tr), testutil.WithTimeout(0))
			assert.Empty(t, f.msgs)
		})
	}
}
