package sqlpool

import (
	"context"
	"database/sql/driver"

	"github.com/connleak/connleak/tracker"
)

// tx wraps a driver transaction, tracked from the line that began it to its
// Commit or Rollback.
type tx struct {
	drv driver.Tx
	h   *tracker.Handle
	c   *conn
	ctx context.Context // BeginTx's: database/sql rolls back when it is done
}

func (c *conn) newTx(t driver.Tx, ctx context.Context) driver.Tx {
	c.fresh = false
	h := c.cfg.tr.Track(KindTx, withSpan(c.cfg.txOpts, ctx)...)
	return &tx{drv: t, h: h, c: c, ctx: ctx}
}

func (t *tx) Commit() error {
	t.h.Close()
	return t.drv.Commit()
}

func (t *tx) Rollback() error {
	err := t.drv.Rollback()
	if !t.c.hooks && t.ctx.Err() != nil {
		t.c.discard = true // see conn.IsValid
	}
	t.h.Close()
	return err
}

func (t *tx) driverObject() any { return t.drv }
