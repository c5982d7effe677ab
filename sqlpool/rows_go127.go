//go:build go1.27

package sqlpool

import (
	"database/sql/driver"
	"io"
)

// rowsMask adds RowsColumnScanner, new in Go 1.27.
func rowsMask(r driver.Rows) uint {
	mask := rowsMaskCommon(r)
	if _, ok := r.(driver.RowsColumnScanner); ok {
		mask |= 1 << 6
	}
	return mask
}

type rowsColumnScanner rows

// NextRow is what database/sql calls instead of Next when the driver has
// it, so the last row is seen here too.
func (r *rowsColumnScanner) NextRow() error {
	s, ok := r.drv.(driver.RowsColumnScanner)
	if !ok {
		return io.EOF
	}
	err := s.NextRow()
	if err == io.EOF {
		(*rows)(r).exhausted()
	}
	return err
}

func (r *rowsColumnScanner) ScanColumn(scanCtx driver.ScanContext, index int, dest any) error {
	s, ok := r.drv.(driver.RowsColumnScanner)
	if !ok {
		return io.EOF
	}
	return s.ScanColumn(scanCtx, index, dest)
}
