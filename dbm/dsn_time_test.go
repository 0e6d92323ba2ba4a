package dbm

import (
	"net/url"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
)

// The MySQL session's time zone must be the driver's loc, or TIMESTAMP
// values and NOW() are shifted by the server's own zone.
func TestMySQLDSNSessionTimeZone(t *testing.T) {
	for _, c := range []struct {
		params map[string]string
		want   string // the time_zone the DSN sets; "" for none
	}{
		{nil, "'+00:00'"},
		{map[string]string{"loc": "UTC"}, "'+00:00'"},
		{map[string]string{"loc": "Europe/Paris"}, ""},
		{map[string]string{"time_zone": "'Europe/Paris'", "loc": "Europe/Paris"}, "'Europe/Paris'"},
		{map[string]string{"time_zone": "SYSTEM"}, "SYSTEM"},
	} {
		cfg := Config{Driver: DriverMySQL, Host: "h", Database: "d", Params: c.params}.withDefaults()
		mc, err := mysql.ParseDSN(cfg.dsn())
		if err != nil {
			t.Fatalf("ParseDSN(%q): %v", cfg.dsn(), err)
		}
		if got := mc.Params["time_zone"]; got != c.want {
			t.Errorf("Params %v: time_zone = %q, want %q", c.params, got, c.want)
		}
	}
}

// SQLite's date functions must understand the times the driver writes.
func TestSQLiteDSNTimeFormat(t *testing.T) {
	for _, c := range []struct {
		params map[string]string
		want   string
	}{
		{nil, "sqlite"},
		{map[string]string{"_time_format": "datetime"}, "datetime"},
		{map[string]string{"_time_integer_format": "unix_micro"}, ""},
	} {
		dsn := Config{Driver: DriverSQLite, Database: "x.db", Params: c.params}.dsn()
		q, err := url.ParseQuery(dsn[strings.IndexByte(dsn, '?')+1:])
		if err != nil {
			t.Fatalf("%q: %v", dsn, err)
		}
		if got := q.Get("_time_format"); got != c.want {
			t.Errorf("Params %v: _time_format = %q in %q, want %q", c.params, got, dsn, c.want)
		}
	}
}
