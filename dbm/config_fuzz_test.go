package dbm_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/dbmanager-go/dbmanager/dbm"
)

// envVars are the variables LoadConfig reads, from Config's struct tags.
var envVars = func() []string {
	var vars []string
	for f := range reflect.TypeFor[dbm.Config]().Fields() {
		if v := f.Tag.Get("env"); v != "" {
			vars = append(vars, v)
		}
	}
	return vars
}()

// FuzzLoadConfig feeds random DB_* values to LoadConfig (through
// LoadConfigFrom, which takes the environment as a list, so that values a
// real environment cannot hold are tried too). The password goes into
// DB_PASSWORD and, depending on dsnForm, also into a URL, key=value or MySQL
// DB_DSN and a secret DB_PARAMS entry.
//
// The check for leaks needs no list of places to look: LoadConfig runs a
// second time with another password, and everything it returns (the error
// text, String, GoString, every fmt verb, slog and JSON output) must be the
// same.
// Output that does not change with the password cannot show it. The one
// allowed difference: a DSN whose redacted form happens to contain text that
// looks like the password is withheld whole.
func FuzzLoadConfig(f *testing.F) {
	// extra names one more variable (by index in envVars) set to extraValue.
	add := func(name, value, password string, dsnForm uint8) {
		f.Add("", "", "", "", "u", password, "d", "", "", uint8(slices.Index(envVars, name)), value, dsnForm)
	}
	for _, tc := range badValues {
		add(tc.name, tc.value, "topsecret", 0)
	}
	for i, pw := range dbm.HardPasswords {
		for form := range uint8(8) {
			f.Add([]string{"postgres", "pgx", "mysql", "sqlite"}[form%4], "", "db.example.com", "5432", "app user", pw,
				"my db", "", "application_name=api", uint8(i), "", form)
		}
	}
	f.Add("pgx", "", "::1", "6543", "u", "s3cr3t", "d", "verify-full", "a=1, b = 2", uint8(0), "", uint8(0))
	f.Add("", "postgres://u:s3cr3t@h/d?sslpassword=s3cr3t", "", "", "", "s3cr3t", "", "", "", uint8(0), "", uint8(0))
	f.Add("mysql", "", "h", "", "u", "h", "d", "", "", uint8(0), "", uint8(3)) // a password that is also the host
	f.Fuzz(func(t *testing.T, driver, dsn, host, port, user, password, database, sslmode, params string,
		extra uint8, extraValue string, dsnForm uint8) {
		// A secret parameter, when the password fits DB_PARAMS's syntax.
		inject := dsnForm&4 != 0 && !strings.ContainsAny(password, ",=")
		load := func(pw string) (dbm.Config, error) {
			vars := map[string]string{
				"DB_DRIVER": driver, "DB_HOST": host, "DB_PORT": port, "DB_USER": user, "DB_PASSWORD": pw,
				"DB_NAME": database, "DB_SSLMODE": sslmode, "DB_PARAMS": params,
			}
			switch dsnForm % 4 {
			case 0:
				vars["DB_DSN"] = dsn
			case 1:
				u := url.URL{Scheme: "postgres", User: url.UserPassword(user, pw), Host: host, Path: "/" + database, RawQuery: dsn}
				vars["DB_DSN"] = u.String()
			case 2:
				q := strings.NewReplacer(`\`, `\\`, `'`, `\'`)
				vars["DB_DSN"] = fmt.Sprintf("host='%s' user='%s' password='%s' dbname='%s' %s",
					q.Replace(host), q.Replace(user), q.Replace(pw), q.Replace(database), dsn)
			case 3:
				vars["DB_DSN"] = user + ":" + pw + "@tcp(" + host + ")/" + url.PathEscape(database) + "?" + dsn
			}
			if inject && pw != "" {
				vars["DB_PARAMS"] = strings.TrimPrefix(params+",sslpassword="+pw, ",")
			}
			if name := envVars[int(extra)%len(envVars)]; name != "DB_PASSWORD" {
				vars[name] = extraValue
			}
			var environ []string
			for k, v := range vars {
				environ = append(environ, k+"="+v)
			}
			return dbm.LoadConfigFrom(environ)
		}
		cfg, err := load(password)
		if err != nil {
			var ce *dbm.ConfigError
			if !errors.As(err, &ce) || !errors.Is(err, dbm.ErrConfig) {
				t.Fatalf("error %v (%T) is not a *ConfigError matching ErrConfig", err, err)
			}
		} else if cfg.Password != password {
			t.Fatalf("Password = %q, want %q", cfg.Password, password)
		}
		if password == "" {
			return
		}
		other := "\u2603other\u2603" // shares no text with password, nor (unless the fuzzer types snowmen) with the rest
		if strings.Contains(password, "\x00") {
			other += "\x00" // NUL bytes are judged, so keep them alike
		}
		if !utf8.ValidString(password) {
			other += "\xff" // and so is UTF-8 validity
		}
		cfg2, err2 := load(other)
		if (err == nil) != (err2 == nil) || err != nil && err.Error() != err2.Error() {
			t.Fatalf("the result depends on the password:\n%v\n%v", err, err2)
		}
		if err != nil {
			return
		}
		a, b := configOutputs(cfg), configOutputs(cfg2)
		if slices.Equal(a, b) {
			return
		}
		d1, d2 := dsnAttr(cfg), dsnAttr(cfg2)
		if d1 == d2 || d1 != "[DSN redacted]" && d2 != "[DSN redacted]" {
			t.Fatalf("output depends on the password:\n%q\n%q", a, b)
		}
		cfg.DSN, cfg2.DSN = "", "" // one DSN was withheld whole; the rest must agree
		if a, b := configOutputs(cfg), configOutputs(cfg2); !slices.Equal(a, b) {
			t.Fatalf("output depends on the password:\n%q\n%q", a, b)
		}
	})
}

// configOutputs is every way a Config can be printed or logged.
func configOutputs(cfg dbm.Config) []string {
	out := []string{cfg.String(), cfg.GoString(), fmt.Sprintf("%+v", &cfg), fmt.Sprintf("%v", []dbm.Config{cfg})}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%10.3v"} {
		out = append(out, fmt.Sprintf(verb, cfg))
	}
	var buf bytes.Buffer
	noTime := func(_ []string, a slog.Attr) slog.Attr {
		if a.Key == slog.TimeKey {
			return slog.Attr{}
		}
		return a
	}
	slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{ReplaceAttr: noTime})).Info("cfg", "config", cfg)
	slog.New(slog.NewJSONHandler(&buf, &slog.HandlerOptions{ReplaceAttr: noTime})).Info("cfg", "config", cfg)
	out = append(out, buf.String())
	if _, ok := any(cfg).(json.Marshaler); ok { // only then is encoding/json one of Config's outputs
		b, err := json.Marshal(cfg)
		out = append(out, string(b), fmt.Sprint(err))
	}
	return out
}

// dsnAttr is the DSN as LogValue shows it.
func dsnAttr(cfg dbm.Config) string {
	for _, a := range cfg.LogValue().Group() {
		if a.Key == "DSN" {
			return a.Value.String()
		}
	}
	return ""
}
