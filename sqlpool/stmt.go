package sqlpool

//lint:file-ignore SA1019 the wrappers offer the deprecated interfaces exactly when the driver does, and forward them

import (
	"context"
	"database/sql/driver"
	"errors"

	"github.com/connleak/connleak/tracker"
)

// stmt wraps a prepared statement, tracked from the line that prepared it
// to its Close.
type stmt struct {
	drv driver.Stmt
	c   *conn // database/sql runs a statement on its connection only
	h   *tracker.Handle
}

func (c *conn) newStmt(s driver.Stmt, ctx context.Context) driver.Stmt {
	c.fresh = false
	base := stmt{drv: s, c: c, h: c.cfg.tr.Track(KindStmt, withSpan(c.cfg.stmtOpts, ctx)...)}
	var mask uint
	if _, ok := s.(driver.StmtExecContext); ok {
		mask |= 1 << 0
	}
	if _, ok := s.(driver.StmtQueryContext); ok {
		mask |= 1 << 1
	}
	if _, ok := s.(driver.ColumnConverter); ok {
		mask |= 1 << 2
	}
	if _, ok := s.(driver.NamedValueChecker); ok {
		mask |= 1 << 3
	}
	return wrapStmt(base, mask)
}

func (s *stmt) driverObject() any { return s.drv }

func (s *stmt) Close() error {
	s.h.Close()
	return s.drv.Close()
}

func (s *stmt) NumInput() int { return s.drv.NumInput() }

func (s *stmt) Exec(args []driver.Value) (driver.Result, error) {
	s.c.fresh = false
	return s.drv.Exec(args)
}

func (s *stmt) Query(args []driver.Value) (driver.Rows, error) {
	r, err := s.drv.Query(args)
	if err != nil {
		return nil, err
	}
	return s.c.newRows(r, nil), nil
}

type stmtExecContext stmt

func (s *stmtExecContext) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.c.fresh = false
	if e, ok := s.drv.(driver.StmtExecContext); ok {
		return e.ExecContext(ctx, args)
	}
	return nil, errors.New("connleak/sqlpool: the driver statement has no ExecContext")
}

type stmtQueryContext stmt

func (s *stmtQueryContext) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	q, ok := s.drv.(driver.StmtQueryContext)
	if !ok {
		return nil, errors.New("connleak/sqlpool: the driver statement has no QueryContext")
	}
	r, err := q.QueryContext(ctx, args)
	if err != nil {
		return nil, err
	}
	return s.c.newRows(r, ctx), nil
}

type stmtColumnConverter stmt

func (s *stmtColumnConverter) ColumnConverter(idx int) driver.ValueConverter {
	if c, ok := s.drv.(driver.ColumnConverter); ok {
		return c.ColumnConverter(idx)
	}
	return driver.DefaultParameterConverter
}

type stmtNamedValueChecker stmt

func (s *stmtNamedValueChecker) CheckNamedValue(nv *driver.NamedValue) error {
	if n, ok := s.drv.(driver.NamedValueChecker); ok {
		return n.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}
