package pgtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm/internal/testsrv"
)

// BouncerBinEnv names the pgbouncer executable, overriding the search in
// $PATH and /usr/sbin (Debian's package installs it there).
const BouncerBinEnv = "DBM_TEST_PGBOUNCER"

// Bouncer is a running PgBouncer in front of a PostgreSQL server, started
// by [StartBouncer] for one test.
type Bouncer struct {
	Host     string // always "127.0.0.1"
	Port     int    // the port PgBouncer listens on
	Dir      string // the temporary directory holding its configuration and log
	PoolSize int    // server connections per database and user (default_pool_size)

	cmd  *exec.Cmd
	done chan error // receives cmd.Wait's result
}

// BouncerConfig sets what [StartBouncer] writes into pgbouncer.ini.
type BouncerConfig struct {
	// PoolMode is "transaction" (the default: the mode that breaks session
	// state), "session" or "statement".
	PoolMode string
	// PoolSize is default_pool_size: how many server connections clients
	// share per database and user. Default 3, fewer than a test's pool
	// usually opens, so that clients really take turns on server
	// connections.
	PoolSize int
	// User is the role clients log in as; PgBouncer trusts it (auth_type
	// trust) and logs in to the server as the same role, without a
	// password. Default "postgres".
	User string
	// Settings are more [pgbouncer] settings, such as
	// {"max_prepared_statements", "100"} on PgBouncer 1.21 and later.
	Settings [][2]string
}

// StartBouncer starts PgBouncer (Debian's package "pgbouncer") listening on
// a free 127.0.0.1 port, in front of the server at host:port, for every
// database name ("*" in its [databases] section), and registers t.Cleanup
// to stop it. The server must let cfg.User in without a password (the
// shared test server trusts local connections).
//
// Without pgbouncer installed, or without the "postgres" OS user to run it
// as when the tests run as root (PgBouncer refuses to run as root), it skips
// the test with the reason, or fails it when DBM_REQUIRE_INTEGRATION=1.
func StartBouncer(t testing.TB, host string, port int, cfg BouncerConfig) *Bouncer {
	t.Helper()
	bin, err := findBouncer()
	if err != nil {
		skipOrFail(t, "PgBouncer (apt-get install pgbouncer)", err)
	}
	var runAs *user.User
	if os.Geteuid() == 0 {
		if runAs, err = user.Lookup(osUser); err != nil {
			skipOrFail(t, fmt.Sprintf("OS user %q (PgBouncer refuses to run as root)", osUser), err)
		}
	}
	if cfg.PoolMode == "" {
		cfg.PoolMode = "transaction"
	}
	if cfg.PoolSize == 0 {
		cfg.PoolSize = 3
	}
	if cfg.User == "" {
		cfg.User = "postgres"
	}
	dir, err := os.MkdirTemp("", dirPrefix+"bouncer-")
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	b := &Bouncer{Host: "127.0.0.1", Dir: dir, PoolSize: cfg.PoolSize}
	// The port was free when chosen, but someone may take it before
	// PgBouncer binds it: try a few.
	for attempt := 1; ; attempt++ {
		if b.Port, err = testsrv.FreePort(); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		err = b.start(bin, runAs, host, port, cfg)
		if err == nil {
			break
		}
		if attempt == 3 {
			t.Fatalf("pgtest: PgBouncer: %v", err)
		}
		t.Logf("pgtest: PgBouncer on port %d failed, retrying on another: %v", b.Port, err)
	}
	t.Cleanup(func() {
		if err := b.stop(); err != nil {
			t.Errorf("pgtest: stopping PgBouncer: %v", err)
		}
	})
	return b
}

// Addr returns "host:port".
func (b *Bouncer) Addr() string { return net.JoinHostPort(b.Host, strconv.Itoa(b.Port)) }

// Log returns PgBouncer's log so far, for failure messages.
func (b *Bouncer) Log() string {
	out, err := os.ReadFile(filepath.Join(b.Dir, "pgbouncer.log"))
	if err != nil {
		return "(no PgBouncer log: " + err.Error() + ")"
	}
	return string(out)
}

// start writes the configuration, starts PgBouncer in the foreground (so
// that the test process owns it) and waits until its port accepts TCP
// connections.
func (b *Bouncer) start(bin string, runAs *user.User, host string, port int, cfg BouncerConfig) error {
	ini := filepath.Join(b.Dir, "pgbouncer.ini")
	users := filepath.Join(b.Dir, "users.txt")
	conf := [][2]string{
		{"listen_addr", "127.0.0.1"},
		{"listen_port", strconv.Itoa(b.Port)},
		{"unix_socket_dir", ""},
		{"auth_type", "trust"},
		{"auth_file", users},
		{"pool_mode", cfg.PoolMode},
		{"default_pool_size", strconv.Itoa(cfg.PoolSize)},
		{"max_client_conn", "500"},
		{"logfile", filepath.Join(b.Dir, "pgbouncer.log")},
		{"admin_users", cfg.User},
		// Parameters a driver may send at login that PgBouncer does not
		// track; refusing the login for them would test nothing.
		{"ignore_startup_parameters", "extra_float_digits,search_path"},
	}
	var s strings.Builder
	fmt.Fprintf(&s, "[databases]\n* = host=%s port=%d\n\n[pgbouncer]\n", host, port)
	for _, kv := range append(conf, cfg.Settings...) {
		fmt.Fprintf(&s, "%s = %s\n", kv[0], kv[1])
	}
	if err := os.WriteFile(ini, []byte(s.String()), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(users, []byte(strconv.Quote(cfg.User)+` ""`+"\n"), 0o644); err != nil {
		return err
	}
	if err := chownAll(runAs, b.Dir, ini, users); err != nil {
		return err
	}
	out, err := os.Create(filepath.Join(b.Dir, "stderr.log"))
	if err != nil {
		return err
	}
	defer out.Close()
	cmd := exec.Command(bin, ini)
	cmd.Dir = b.Dir
	cmd.Env = cleanEnv()
	cmd.Stdout, cmd.Stderr = out, out
	if err := runAsUser(cmd, runAs); err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	b.cmd, b.done = cmd, make(chan error, 1)
	go func() { b.done <- cmd.Wait() }()
	err = testsrv.WaitListening(b.Addr(), commandTimeout, b.done)
	switch {
	case err == nil:
		return nil
	case testsrv.IsExited(err):
		stderr, _ := os.ReadFile(out.Name())
		return fmt.Errorf("%w:\n%s\n%s", err, stderr, b.Log())
	}
	_ = b.stop()
	return fmt.Errorf("%w\n%s", err, b.Log())
}

// stop ends PgBouncer: SIGTERM (immediate shutdown), then SIGKILL if it has
// not exited within the command timeout.
func (b *Bouncer) stop() error {
	if b.cmd == nil {
		return nil
	}
	_ = terminate(b.cmd.Process)
	select {
	case <-b.done:
	case <-time.After(commandTimeout):
		_ = b.cmd.Process.Kill()
		<-b.done
		return errors.New("PgBouncer did not exit on SIGTERM; killed")
	}
	b.cmd = nil
	return nil
}

// findBouncer returns the path of pgbouncer.
func findBouncer() (string, error) {
	if p := os.Getenv(BouncerBinEnv); p != "" {
		if !isExecutable(p) {
			return "", fmt.Errorf("$%s=%s is not an executable file", BouncerBinEnv, p)
		}
		return p, nil
	}
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	if isExecutable("/usr/sbin/pgbouncer") {
		return "/usr/sbin/pgbouncer", nil
	}
	return "", fmt.Errorf("pgbouncer not in $%s, $PATH or /usr/sbin", BouncerBinEnv)
}

// chownAll gives paths to u; nothing when u is nil.
func chownAll(u *user.User, paths ...string) error {
	if u == nil {
		return nil
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	for _, p := range paths {
		if err := os.Chown(p, uid, gid); err != nil {
			return err
		}
	}
	return nil
}
