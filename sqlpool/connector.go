package sqlpool

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"sync"

	"github.com/connleak/connleak/tracker"
)

// connector wraps a driver.Connector.
type connector struct {
	c   driver.Connector
	cfg *config
}

// Connect opens a driver connection and links it to the socket the
// tracker's dialer dialed for it, which it learns through the context.
func (k *connector) Connect(ctx context.Context) (driver.Conn, error) {
	var d dialed
	dc, err := k.c.Connect(tracker.ContextWithDialAttributes(tracker.ContextWithDialHook(ctx, d.note), k.cfg.otel.dialAttrs...))
	if err != nil {
		return nil, err
	}
	return newConn(dc, k.cfg, d.last(), ctx), nil
}

func (k *connector) Driver() driver.Driver { return wrapDriverCfg(k.c.Driver(), k.cfg) }

func (k *connector) driverObject() any { return k.c }

func (k *connector) sqlpoolConfig() *config { return k.cfg }

type connectorCloser connector

// Close closes the driver's connector.
func (k *connectorCloser) Close() error {
	if c, ok := k.c.(interface{ Close() error }); ok {
		return c.Close()
	}
	return nil
}

// dialed is what the tracker's dialer dialed during one Connect: a driver
// may dial more than once (pgx retries without TLS when the server refuses
// it), and possibly from another goroutine; the last one is the connection's.
type dialed struct {
	mu sync.Mutex
	c  net.Conn
}

func (d *dialed) note(c net.Conn) {
	d.mu.Lock()
	d.c = c
	d.mu.Unlock()
}

func (d *dialed) last() net.Conn {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.c
}

// drv wraps a driver.Driver.
type drv struct {
	d   driver.Driver
	cfg *config
}

// Open opens a driver connection. Without a context the tracker's dialer
// cannot say which socket is this connection's: a driver with DriverContext
// is opened through its connector instead.
func (w *drv) Open(name string) (driver.Conn, error) {
	c, err := w.d.Open(name)
	if err != nil {
		return nil, err
	}
	return newConn(c, w.cfg, nil, nil), nil
}

func (w *drv) driverObject() any { return w.d }

func (w *drv) sqlpoolConfig() *config { return w.cfg }

type driverContext drv

// OpenConnector opens the driver's connector, wrapped.
func (w *driverContext) OpenConnector(name string) (driver.Connector, error) {
	dc, ok := w.d.(driver.DriverContext)
	if !ok {
		return nil, errors.New("connleak/sqlpool: the driver has no OpenConnector")
	}
	c, err := dc.OpenConnector(name)
	if err != nil {
		return nil, err
	}
	return wrapConnectorCfg(c, w.cfg), nil
}
