package sqlpool_test

//lint:file-ignore SA1019 the wrappers offer the deprecated interfaces exactly when the driver does, and forward them

import (
	"context"
	"database/sql/driver"
	"io"
	"reflect"
	"testing"

	"github.com/connleak/connleak/sqlpool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	connIfaces = []reflect.Type{
		reflect.TypeFor[driver.Pinger](), reflect.TypeFor[driver.Execer](), reflect.TypeFor[driver.ExecerContext](),
		reflect.TypeFor[driver.Queryer](), reflect.TypeFor[driver.QueryerContext](),
		reflect.TypeFor[driver.ConnPrepareContext](), reflect.TypeFor[driver.ConnBeginTx](),
		reflect.TypeFor[driver.NamedValueChecker](),
	}
	// The two hooks sqlpool needs: the wrapper always has them.
	connHooks  = []reflect.Type{reflect.TypeFor[driver.SessionResetter](), reflect.TypeFor[driver.Validator]()}
	stmtIfaces = []reflect.Type{
		reflect.TypeFor[driver.StmtExecContext](), reflect.TypeFor[driver.StmtQueryContext](),
		reflect.TypeFor[driver.ColumnConverter](), reflect.TypeFor[driver.NamedValueChecker](),
	}
	connectorIfaces = []reflect.Type{reflect.TypeFor[io.Closer]()}
	driverIfaces    = []reflect.Type{reflect.TypeFor[driver.DriverContext]()}
)

// sameInterfaces checks that wrapped has each interface exactly when raw
// has it, and returns how many raw has.
func sameInterfaces(t *testing.T, what string, raw, wrapped any, ifaces []reflect.Type) int {
	t.Helper()
	has := 0
	for _, it := range ifaces {
		r := reflect.TypeOf(raw).Implements(it)
		w := reflect.TypeOf(wrapped).Implements(it)
		assert.Equal(t, r, w, "%s %T: %v", what, raw, it)
		if r {
			has++
		}
	}
	return has
}

// For each driver, every optional interface of a connector, driver,
// connection, statement and rows is on the wrapper exactly when it is on the
// driver's object, and Unwrap gives the driver's object back.
func TestInterfaceFidelity(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			b.need(t)
			tr, _ := newTracker(t)
			ctx := context.Background()
			rawConnector := b.connector(t, nil)
			wrappedConnector := sqlpool.WrapConnector(b.connector(t, tr.WrapDialer(nil)), sqlpool.WithTracker(tr))
			sameInterfaces(t, "connector", rawConnector, wrappedConnector, connectorIfaces)
			sameInterfaces(t, "driver", rawConnector.Driver(), wrappedConnector.Driver(), driverIfaces)

			raw, err := rawConnector.Connect(ctx)
			require.NoError(t, err)
			defer raw.Close()
			wrapped, err := wrappedConnector.Connect(ctx)
			require.NoError(t, err)
			defer wrapped.Close()
			n := sameInterfaces(t, "conn", raw, wrapped, connIfaces)
			t.Logf("%T has %d of %d optional connection interfaces", raw, n, len(connIfaces))
			for _, it := range connHooks {
				assert.True(t, reflect.TypeOf(wrapped).Implements(it), "hook %v", it)
			}
			assert.Equal(t, reflect.TypeOf(raw), reflect.TypeOf(sqlpool.Unwrap(wrapped)))

			const q = "SELECT 1"
			rawStmt, err := raw.(driver.ConnPrepareContext).PrepareContext(ctx, q)
			require.NoError(t, err)
			defer rawStmt.Close()
			wrappedStmt, err := wrapped.(driver.ConnPrepareContext).PrepareContext(ctx, q)
			require.NoError(t, err)
			defer wrappedStmt.Close()
			sameInterfaces(t, "stmt", rawStmt, wrappedStmt, stmtIfaces)
			assert.Equal(t, reflect.TypeOf(rawStmt), reflect.TypeOf(sqlpool.Unwrap(wrappedStmt)))

			rawRows, err := raw.(driver.QueryerContext).QueryContext(ctx, q, nil)
			require.NoError(t, err)
			defer rawRows.Close()
			wrappedRows, err := wrapped.(driver.QueryerContext).QueryContext(ctx, q, nil)
			require.NoError(t, err)
			defer wrappedRows.Close()
			n = sameInterfaces(t, "rows", rawRows, wrappedRows, rowsIfaces)
			t.Logf("%T has %d of %d optional rows interfaces", rawRows, n, len(rowsIfaces))
			assert.Equal(t, reflect.TypeOf(rawRows), reflect.TypeOf(sqlpool.Unwrap(wrappedRows)))
		})
	}
}
