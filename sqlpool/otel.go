package sqlpool

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"net"
	"net/url"
	"reflect"
	"runtime"
	"strings"
	"sync"
	"time"
	"weak"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/semconv/v1.43.0/dbconv"

	"github.com/connleak/connleak/tracker"
)

// ScopeName is the instrumentation scope of sqlpool's metrics.
const ScopeName = "github.com/connleak/connleak/sqlpool"

// WithDBSystem sets the db.system.name that sqlpool's resources, and the
// sockets dialed for its connections, carry in their leak spans, and that
// names the database in reports: a value of the OpenTelemetry semantic
// conventions, such as "postgresql", "mysql", "mariadb" or "sqlite". By
// default it is derived from the driver's package: pgx and lib/pq are
// "postgresql", go-sql-driver/mysql is "mysql" (it cannot tell a MariaDB
// server from a MySQL one: say "mariadb" here), the SQLite drivers are
// "sqlite", and a driver sqlpool does not know is "other_sql". An empty name
// keeps the default.
func WithDBSystem(name string) Option {
	return optionFunc(func(c *config) { c.otel.system = name })
}

// WithPoolName sets db.client.connection.pool.name, the name of the pool in
// sqlpool's metrics and on its resources' leak spans. The conventions want
// it unique within the program: pools that share a name on one tracker are
// counted as one. It must not contain credentials.
//
// By default Open names the pool after its data source name's server and
// database, as host:port/database (a URL, a key=value list or
// go-sql-driver/mysql's form; the path of an SQLite file), never with its
// user or password, and after driverName when the name has none of these
// forms. Register names it after the name it registers. OpenDB, WrapConnector
// and WrapDriver, which see no data source name, name it after the database
// system (see WithDBSystem).
func WithPoolName(name string) Option {
	return optionFunc(func(c *config) { c.otel.pool = name })
}

// otelConfig is a config's OpenTelemetry side, computed once when the
// first wrapper is made from it, so that a query adds no allocation for it.
type otelConfig struct {
	once   sync.Once
	system string // WithDBSystem, else derived
	pool   string // WithPoolName, else derived

	// dialAttrs are the attributes of the sockets dialed for the pool's
	// connections, given through Connect's context.
	dialAttrs []attribute.KeyValue
	// db is the database Open or OpenDB made, whose settings give
	// db.client.connection.max; nil for a driver wrapped without one.
	db weak.Pointer[sql.DB]
	// useTime and useOpts record db.client.connection.use_time with a
	// precomputed attribute set.
	useTime dbconv.ClientConnectionUseTime
	useOpts []metric.RecordOption
}

// initOtel settles the database system and pool name, adds their
// attributes to every Track the config makes, and registers the pool for
// the tracker's db.client.connection metrics. d or c is the driver's own
// object the first wrapper wraps. Only the first call does anything.
func (c *config) initOtel(d driver.Driver, k driver.Connector) {
	c.otel.once.Do(func() {
		sys := c.otel.system
		if sys == "" {
			sys = systemOf(d, k)
		}
		c.otel.system = sys
		if c.otel.pool == "" {
			c.otel.pool = sys
		}
		attrs := []attribute.KeyValue{
			semconv.DBSystemNameKey.String(sys),
			semconv.DBClientConnectionPoolName(c.otel.pool),
		}
		c.otel.dialAttrs = attrs
		opt := tracker.TrackAttributes(attrs...)
		for _, opts := range []*[]tracker.TrackOption{
			&c.connOpts, &c.resetOpts, &c.outOpts, &c.rowsOpts, &c.stmtOpts, &c.txOpts,
		} {
			*opts = append((*opts)[:len(*opts):len(*opts)], opt)
		}
		p := poolsOf(c.tr)
		c.otel.useTime = p.useTime
		c.otel.useOpts = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(
			semconv.DBClientConnectionPoolName(c.otel.pool)))}
		p.add(c)
	})
}

// observeDB records db, made by Open or OpenDB on a wrapper of c, so that
// the pool's db.client.connection.max follows db's SetMaxOpenConns.
func (c *config) observeDB(db *sql.DB) *sql.DB {
	c.otel.db = weak.Make(db)
	return db
}

// withSpan adds to opts the span active in ctx, the query, transaction or
// checkout's caller, so that leak spans link to it. A context without a
// span returns opts as they are: an untraced query pays one context lookup
// and no allocation.
func withSpan(opts []tracker.TrackOption, ctx context.Context) []tracker.TrackOption {
	if ctx == nil {
		return opts
	}
	span := tracker.TrackContext(ctx)
	if span == nil {
		return opts
	}
	return append(opts[:len(opts):len(opts)], span)
}

// checkoutStart returns the time a checkout starts for
// db.client.connection.use_time; zero, and no clock read, while no SDK
// listens.
func (o *otelConfig) checkoutStart() time.Time {
	if !o.useTime.Enabled(context.Background()) {
		return time.Time{}
	}
	return time.Now()
}

// checkoutEnd records the use time of a checkout that started at start.
func (o *otelConfig) checkoutEnd(start time.Time) {
	if start.IsZero() {
		return
	}
	o.useTime.Inst().Record(context.Background(), time.Since(start).Seconds(), o.useOpts...)
}

// pools holds, for every tracker sqlpool was given, the pools registered
// on it and the registration of their metrics' callback. Keys are weak: a
// tracker the program has dropped takes its callback with it.
var pools sync.Map // weak.Pointer[tracker.Tracker] -> *poolSet

// poolSet is one tracker's pools and instruments.
type poolSet struct {
	key     weak.Pointer[tracker.Tracker]
	useTime dbconv.ClientConnectionUseTime
	count   dbconv.ClientConnectionCountObservable
	max     dbconv.ClientConnectionMaxObservable

	mu   sync.Mutex
	cfgs []weak.Pointer[config]
}

// poolsOf returns tr's poolSet, making its instruments and registering its
// callback the first time. A provider that cannot make an instrument
// leaves it a no-op: the database works without it.
func poolsOf(tr *tracker.Tracker) *poolSet {
	key := weak.Make(tr)
	if v, ok := pools.Load(key); ok {
		return v.(*poolSet)
	}
	p := &poolSet{key: key}
	m := tr.MeterProvider().Meter(ScopeName, metric.WithSchemaURL(semconv.SchemaURL))
	p.useTime, _ = dbconv.NewClientConnectionUseTime(m)
	p.count, _ = dbconv.NewClientConnectionCountObservable(m)
	p.max, _ = dbconv.NewClientConnectionMaxObservable(m)
	if v, loaded := pools.LoadOrStore(key, p); loaded {
		return v.(*poolSet) // another goroutine's, made at the same time
	}
	reg, err := m.RegisterCallback(p.observe, p.count.Inst(), p.max.Inst())
	if err != nil {
		return p
	}
	// The provider outlives a tracker made for a test or a job: the
	// callback goes with the tracker.
	runtime.AddCleanup(tr, func(reg metric.Registration) {
		reg.Unregister()
		pools.Delete(key)
	}, reg)
	return p
}

func (p *poolSet) add(c *config) {
	p.mu.Lock()
	p.cfgs = append(p.cfgs, weak.Make(c))
	p.mu.Unlock()
}

// poolSeries is one series of db.client.connection.count.
type poolSeries struct {
	pool string
	idle bool
}

// observe reports db.client.connection.count and db.client.connection.max
// when they are collected. Counts come from the tracker's own record of
// the pools' driver connections, rather than from an Add at each checkout
// and return: a query costs nothing more, and no connection's end can be
// missed. A connection is idle while it sits in its pool (Resource.Idle),
// used from its checkout to its return. Every pool reports both states,
// zero included. The maximum is db.Stats().MaxOpenConnections of the
// databases Open and OpenDB made, summed over the databases that share a
// pool name; it is not reported for a pool that has no limit, or whose
// *sql.DB sqlpool does not know (WrapDriver, WrapConnector, Register).
func (p *poolSet) observe(_ context.Context, o metric.Observer) error {
	tr := p.key.Value()
	if tr == nil {
		return nil
	}
	type limit struct {
		max     int64
		unknown bool
	}
	limits := make(map[string]limit)
	p.mu.Lock()
	live := p.cfgs[:0]
	for _, w := range p.cfgs {
		c := w.Value()
		if c == nil {
			continue
		}
		live = append(live, w)
		l := limits[c.otel.pool]
		var n int
		if db := c.otel.db.Value(); db != nil {
			n = db.Stats().MaxOpenConnections
		}
		if n > 0 {
			l.max += int64(n)
		} else {
			l.unknown = true
		}
		limits[c.otel.pool] = l
	}
	clear(p.cfgs[len(live):])
	p.cfgs = live
	p.mu.Unlock()

	counts := make(map[poolSeries]int64, 2*len(limits))
	for name := range limits {
		counts[poolSeries{name, true}] = 0
		counts[poolSeries{name, false}] = 0
	}
	for _, r := range tr.Open() {
		if r.Kind != KindConn {
			continue
		}
		if name, ok := poolNameOf(r.Attributes); ok {
			counts[poolSeries{name, r.Idle}]++
		}
	}
	for s, n := range counts {
		state := dbconv.ClientConnectionStateUsed
		if s.idle {
			state = dbconv.ClientConnectionStateIdle
		}
		o.ObserveInt64(p.count.Inst(), n, metric.WithAttributes(
			p.count.AttrClientConnectionPoolName(s.pool),
			p.count.AttrClientConnectionState(state)))
	}
	for name, l := range limits {
		if !l.unknown {
			o.ObserveInt64(p.max.Inst(), l.max, metric.WithAttributes(
				p.max.AttrClientConnectionPoolName(name)))
		}
	}
	return nil
}

// poolNameOf reads the pool name initOtel gave a connection.
func poolNameOf(attrs []attribute.KeyValue) (string, bool) {
	for _, a := range attrs {
		if a.Key == semconv.DBClientConnectionPoolNameKey {
			return a.Value.AsString(), true
		}
	}
	return "", false
}

// systems maps driver packages, by path prefix, to their db.system.name.
var systems = []struct {
	pkg    string
	system attribute.KeyValue
}{
	{"github.com/jackc/pgx", semconv.DBSystemNamePostgreSQL},
	{"github.com/lib/pq", semconv.DBSystemNamePostgreSQL},
	{"github.com/go-sql-driver/mysql", semconv.DBSystemNameMySQL},
	{"modernc.org/sqlite", semconv.DBSystemNameSQLite},
	{"github.com/mattn/go-sqlite3", semconv.DBSystemNameSQLite},
	{"github.com/ncruces/go-sqlite3", semconv.DBSystemNameSQLite},
	{"github.com/glebarez/go-sqlite", semconv.DBSystemNameSQLite},
	{"github.com/microsoft/go-mssqldb", semconv.DBSystemNameMicrosoftSQLServer},
	{"github.com/denisenkom/go-mssqldb", semconv.DBSystemNameMicrosoftSQLServer},
	{"github.com/ClickHouse/clickhouse-go", semconv.DBSystemNameClickHouse},
	{"github.com/sijms/go-ora", semconv.DBSystemNameOracleDB},
	{"github.com/godror/godror", semconv.DBSystemNameOracleDB},
}

// systemOf derives db.system.name from the package of the driver, or of
// the connector when its driver says nothing.
func systemOf(d driver.Driver, k driver.Connector) string {
	if d == nil && k != nil {
		d = k.Driver()
	}
	for _, v := range []any{d, k} {
		if v == nil {
			continue
		}
		t := reflect.TypeOf(v)
		for t.Kind() == reflect.Pointer {
			t = t.Elem()
		}
		for _, s := range systems {
			if strings.HasPrefix(t.PkgPath(), s.pkg) {
				return s.system.Value.AsString()
			}
		}
	}
	return semconv.DBSystemNameOtherSQL.Value.AsString()
}

// dsnPoolName names a pool after dsn's server and database, as
// host:port/database, or an SQLite file's path, never with credentials;
// driverName when dsn has none of the forms it knows.
func dsnPoolName(driverName, dsn string) string {
	name := ""
	switch {
	case strings.Contains(dsn, "://"):
		if u, err := url.Parse(dsn); err == nil && u.Host != "" {
			name = joinPool(u.Host, u.Path)
		}
	case strings.HasPrefix(dsn, "file:"):
		// SQLite's URI form: the path, without its query's settings
		path, _, _ := strings.Cut(strings.TrimPrefix(dsn, "file:"), "?")
		name = path
	case isKeyValue(dsn):
		name = keyValuePool(dsn)
	default:
		name = mysqlPool(dsn)
	}
	if name == "" || name == "/" {
		return driverName
	}
	return name
}

// keyValuePool reads host, port and dbname from a key=value list, such as
// lib/pq's "host=db port=5432 dbname=app user=u password=p".
func keyValuePool(dsn string) string {
	var host, port, db string
	for _, f := range strings.Fields(dsn) {
		k, v, _ := strings.Cut(f, "=")
		v = strings.Trim(v, "'")
		switch k {
		case "host":
			host = v
		case "port":
			port = v
		case "dbname":
			db = v
		}
	}
	if host == "" && db == "" {
		return ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	}
	return joinPool(host, db)
}

// mysqlPool reads the address and database from go-sql-driver/mysql's
// form, [user[:password]@][net[(addr)]]/dbname[?params]. The password may
// hold '@' and '/', so the database follows the last '/' and the address
// the last '@' before it, as the driver reads them.
func mysqlPool(dsn string) string {
	slash := strings.LastIndex(dsn, "/")
	if slash < 0 {
		return ""
	}
	pre, db := dsn[:slash], dsn[slash+1:]
	db, _, _ = strings.Cut(db, "?")
	addr := pre[strings.LastIndex(pre, "@")+1:]
	// only "net(addr)" with a network's name: anything else, a path such
	// as an SQLite file's or a form sqlpool does not read, might hold
	// what it must not show
	open := strings.Index(addr, "(")
	if open < 0 || !strings.HasSuffix(addr, ")") || !isWord(addr[:open]) ||
		strings.ContainsAny(db, " =") {
		return ""
	}
	return joinPool(addr[open+1:len(addr)-1], db)
}

// isKeyValue tells a key=value list from the other forms by its first
// key, a bare word.
func isKeyValue(dsn string) bool {
	f, _, _ := strings.Cut(strings.TrimSpace(dsn), " ")
	k, _, ok := strings.Cut(f, "=")
	return ok && isWord(k)
}

func isWord(s string) bool {
	for _, r := range s {
		if (r < 'a' || r > 'z') && (r < 'A' || r > 'Z') && (r < '0' || r > '9') && r != '_' {
			return false
		}
	}
	return s != ""
}

func joinPool(host, db string) string {
	return host + "/" + strings.TrimPrefix(db, "/")
}
