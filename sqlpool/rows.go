package sqlpool

import (
	"context"
	"database/sql/driver"
	"io"
	"reflect"

	"github.com/connleak/connleak/tracker"
)

// rows wraps a query's rows, tracked from the line that ran the query to
// their Close or their last row. database/sql closes rows whose last row
// was read, so rows read to the end are no leak.
type rows struct {
	drv driver.Rows
	h   *tracker.Handle
}

// newRows tracks the rows of a query on c, unless the checkout carries
// them: the first statement of a checkout is a query that took the
// connection out of the pool itself (DB.Query, DB.QueryRow, Stmt.Query),
// at the same line as the checkout, and database/sql returns the
// connection only when its rows are closed or read to the end. The
// checkout, open at the query's line until then, is what names rows left
// open, at no cost of their own; the driver's rows are then handed to
// database/sql unwrapped.
//
// Such rows are not watched for collection. It would tell nothing more:
// database/sql keeps each driver connection reachable from its DB until the
// connection is closed, so the checkout of dropped rows stays open forever,
// which is the leak (the pool has lost a connection), and is reported as
// such (open at the end of a test, held past WithCheckoutHoldLimit).
//
// The rows of a later query on the checkout, in a transaction or on a
// DB.Conn that ran something before, are tracked on their own from their
// line. The first query on a DB.Conn is carried by its checkout, at the
// line of DB.Conn.
func (c *conn) newRows(r driver.Rows, ctx context.Context) driver.Rows {
	if c.fresh {
		c.fresh = false
		return r
	}
	base := rows{drv: r, h: c.cfg.tr.Track(KindRows, withSpan(c.cfg.rowsOpts, ctx)...)}
	return wrapRows(base, rowsMask(r))
}

// rowsMaskCommon is the mask of the optional interfaces of every Go release.
func rowsMaskCommon(r driver.Rows) uint {
	var mask uint
	if _, ok := r.(driver.RowsNextResultSet); ok {
		mask |= 1 << 0
	}
	if _, ok := r.(driver.RowsColumnTypeScanType); ok {
		mask |= 1 << 1
	}
	if _, ok := r.(driver.RowsColumnTypeDatabaseTypeName); ok {
		mask |= 1 << 2
	}
	if _, ok := r.(driver.RowsColumnTypeLength); ok {
		mask |= 1 << 3
	}
	if _, ok := r.(driver.RowsColumnTypeNullable); ok {
		mask |= 1 << 4
	}
	if _, ok := r.(driver.RowsColumnTypePrecisionScale); ok {
		mask |= 1 << 5
	}
	return mask
}

func (r *rows) driverObject() any { return r.drv }

func (r *rows) Columns() []string { return r.drv.Columns() }

func (r *rows) Close() error {
	r.h.Close()
	return r.drv.Close()
}

func (r *rows) Next(dest []driver.Value) error {
	err := r.drv.Next(dest)
	if err == io.EOF {
		r.exhausted()
	}
	return err
}

// exhausted ends tracking at the last row of the last result set.
func (r *rows) exhausted() {
	if n, ok := r.drv.(driver.RowsNextResultSet); !ok || !n.HasNextResultSet() {
		r.h.Close()
	}
}

type rowsNextResultSet rows

func (r *rowsNextResultSet) HasNextResultSet() bool {
	if n, ok := r.drv.(driver.RowsNextResultSet); ok {
		return n.HasNextResultSet()
	}
	return false
}

func (r *rowsNextResultSet) NextResultSet() error {
	if n, ok := r.drv.(driver.RowsNextResultSet); ok {
		return n.NextResultSet()
	}
	return io.EOF
}

type rowsColumnTypeScanType rows

func (r *rowsColumnTypeScanType) ColumnTypeScanType(index int) reflect.Type {
	if c, ok := r.drv.(driver.RowsColumnTypeScanType); ok {
		return c.ColumnTypeScanType(index)
	}
	return reflect.TypeFor[any]()
}

type rowsColumnTypeDatabaseTypeName rows

func (r *rowsColumnTypeDatabaseTypeName) ColumnTypeDatabaseTypeName(index int) string {
	if c, ok := r.drv.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return c.ColumnTypeDatabaseTypeName(index)
	}
	return ""
}

type rowsColumnTypeLength rows

func (r *rowsColumnTypeLength) ColumnTypeLength(index int) (int64, bool) {
	if c, ok := r.drv.(driver.RowsColumnTypeLength); ok {
		return c.ColumnTypeLength(index)
	}
	return 0, false
}

type rowsColumnTypeNullable rows

func (r *rowsColumnTypeNullable) ColumnTypeNullable(index int) (nullable, ok bool) {
	if c, ok := r.drv.(driver.RowsColumnTypeNullable); ok {
		return c.ColumnTypeNullable(index)
	}
	return false, false
}

type rowsColumnTypePrecisionScale rows

func (r *rowsColumnTypePrecisionScale) ColumnTypePrecisionScale(index int) (precision, scale int64, ok bool) {
	if c, ok := r.drv.(driver.RowsColumnTypePrecisionScale); ok {
		return c.ColumnTypePrecisionScale(index)
	}
	return 0, 0, false
}
