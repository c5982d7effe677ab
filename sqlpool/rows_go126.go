//go:build !go1.27

package sqlpool

import "database/sql/driver"

func rowsMask(r driver.Rows) uint { return rowsMaskCommon(r) }
