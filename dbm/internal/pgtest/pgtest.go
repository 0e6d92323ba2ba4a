// Package pgtest starts throwaway PostgreSQL servers for integration tests
// that the shared test server cannot cover: password authentication (the
// shared server trusts everyone), restarts and crashes, TLS with client
// certificates ([WithFile], [WithHBA]).
//
// A server is a fresh cluster made by initdb in a temporary directory,
// listening on a free 127.0.0.1 port with scram-sha-256 authentication for
// every connection. It is stopped and deleted when the test ends:
//
//	srv := pgtest.Start(t)
//	cfg := dbm.Config{Host: srv.Host, Port: srv.Port, User: srv.Superuser,
//		Password: srv.Password, Database: "postgres", SSLMode: "disable"}
//
// The server trades durability for speed (fsync and synchronous_commit off):
// a crash (Stop("immediate")) may lose the last acknowledged commits, unless
// the server was started with [Durable]. [Server.Ready] tells whether it
// accepts logins, and [Server.ReadyAt] when it last started to.
//
// The server binaries are looked up in $DBM_TEST_PG_BINDIR, then
// /usr/lib/postgresql/<version>/bin (highest version first), then $PATH.
// initdb refuses to run as root, so when the tests run as root the server
// runs as the OS user "postgres" (through runuser, or su).
//
// When the binaries or that user are missing, Start skips the test with the
// reason, or fails it when DBM_REQUIRE_INTEGRATION=1, so CI cannot pass by
// skipping; [OnMissing] lets the caller decide instead.
package pgtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/lib/pq"

	"github.com/dbmanager-go/dbmanager/dbm/internal/testsrv"
)

// RequireEnv is the variable CI sets: with it, a missing PostgreSQL
// installation fails the test instead of skipping it.
const RequireEnv = testsrv.RequireEnv

// BinDirEnv names a directory holding initdb and pg_ctl, overriding the
// search.
const BinDirEnv = "DBM_TEST_PG_BINDIR"

// osUser is the account the server runs as when the tests run as root.
const osUser = "postgres"

// commandTimeout bounds initdb, pg_ctl start and pg_ctl stop. It is generous:
// the machines running the tests are slow and shared.
const commandTimeout = 2 * time.Minute

// dirPrefix starts the names of the temporary directories (and command
// output files) in os.TempDir.
const dirPrefix = "dbm-pgtest-"

// ownerFile, in a server's directory, holds the PID of the test process
// that started the server.
const ownerFile = "owner.pid"

// orphanAge is how old a server directory without an owner file must be
// before another test run may delete it: younger ones may be starting up.
const orphanAge = 10 * time.Minute

// Option configures [Start].
type Option interface{ apply(*options) }

type options struct {
	missing   func(t testing.TB, what string, err error)
	superuser string
	auth      string
	settings  [][2]string
	files     []dataFile
	hba       []string
}

// dataFile is a file that Start writes into the data directory.
type dataFile struct {
	name    string
	content []byte
}

type optionFunc func(*options)

func (f optionFunc) apply(o *options) { f(o) }

func defaultOptions() options {
	return options{missing: skipOrFail, superuser: "postgres", auth: "scram-sha-256"}
}

// OnMissing sets what Start calls when PostgreSQL cannot be run here (no
// binaries, no "postgres" OS user): fn should skip the test with the reason
// or fail it. The default skips, or fails when DBM_REQUIRE_INTEGRATION=1. If
// fn returns, Start skips the test.
func OnMissing(fn func(t testing.TB, what string, err error)) Option {
	return optionFunc(func(o *options) {
		if fn != nil {
			o.missing = fn
		}
	})
}

// WithSuperuser sets the name of the cluster's superuser. Default "postgres".
func WithSuperuser(name string) Option {
	return optionFunc(func(o *options) {
		if name != "" {
			o.superuser = name
		}
	})
}

// WithAuth sets the authentication method initdb writes into pg_hba.conf for
// every connection. Default "scram-sha-256".
func WithAuth(method string) Option {
	return optionFunc(func(o *options) {
		if method != "" {
			o.auth = method
		}
	})
}

// Durable makes every commit the server acknowledged survive a crash of the
// server, such as Stop("immediate"): it turns synchronous_commit back on.
// By default the server acknowledges a commit before its WAL is written, for
// speed, so a crash may lose the last acknowledged commits. fsync stays off
// either way: it guards against a crash of the operating system, which no
// test causes.
func Durable() Option { return WithSetting("synchronous_commit", "on") }

// WithSetting adds a postgresql.conf setting, such as ("max_connections",
// "5"). value is written as a quoted string.
func WithSetting(name, value string) Option {
	return optionFunc(func(o *options) { o.settings = append(o.settings, [2]string{name, value}) })
}

// WithFile writes a file into the data directory before the server starts,
// readable only by the server's OS user (mode 0600, as PostgreSQL wants for
// a private key). name is relative to the data directory, where relative
// paths in settings such as ssl_cert_file point. For TLS:
//
//	pgtest.WithFile("server.crt", certPEM), pgtest.WithFile("server.key", keyPEM),
//	pgtest.WithSetting("ssl", "on")
//
// (server.crt and server.key are PostgreSQL's default file names).
func WithFile(name string, content []byte) Option {
	return optionFunc(func(o *options) { o.files = append(o.files, dataFile{name, content}) })
}

// WithHBA replaces pg_hba.conf with lines, such as
// "hostssl all all 127.0.0.1/32 cert". Without it, every connection
// authenticates with the WithAuth method. Connections the lines do not
// match are refused.
func WithHBA(lines ...string) Option {
	return optionFunc(func(o *options) { o.hba = append(o.hba, lines...) })
}

func skipOrFail(t testing.TB, what string, err error) {
	t.Helper()
	testsrv.SkipOrFail(t, what, err)
}

// Server is a running throwaway PostgreSQL cluster.
type Server struct {
	Host      string // always "127.0.0.1"
	Port      int    // a port that was free when the server started
	Superuser string // the superuser's name
	Password  string // the superuser's password (random)
	Dir       string // the temporary directory holding the cluster and its log
	DataDir   string // the cluster's data directory, inside Dir

	initdb, pgctl string
	runAs         *user.User // nil: run the binaries as the current user

	mu      sync.Mutex // serializes Stop and StartAgain
	running bool
}

// Start creates and starts a server, and registers t.Cleanup to stop it
// (immediate mode) and delete its directory. It returns once the server
// accepts TCP connections; any failure after the prerequisites are found
// fails the test with the server's log.
//
// Under go test -short it skips the test instead: a throwaway server takes
// seconds to create and start, and the quick tier leaves servers of their
// own (restarts, authentication, TLS) to the full suite.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	o := defaultOptions()
	for _, opt := range opts {
		if opt != nil {
			opt.apply(&o)
		}
	}
	missing := func(what string, err error) {
		t.Helper()
		o.missing(t, what, err)
		t.Skipf("SKIP: %s not available: %v", what, err)
	}

	initdb, pgctl, err := findBinaries()
	if err != nil {
		missing("PostgreSQL server binaries (initdb, pg_ctl)", err)
	}
	if testing.Short() {
		t.Skipf("-short: starts a throwaway PostgreSQL server; the full suite (make test) runs it")
	}
	s := &Server{Host: "127.0.0.1", Superuser: o.superuser, initdb: initdb, pgctl: pgctl}
	if os.Geteuid() == 0 {
		u, err := user.Lookup(osUser)
		if err != nil {
			missing(fmt.Sprintf("OS user %q (initdb refuses to run as root)", osUser), err)
		}
		if err := canSwitchUser(); err != nil {
			missing("runuser or su (to run initdb as "+osUser+")", err)
		}
		s.runAs = u
	}

	reapOrphans(s)
	s.makeDir(t)

	s.Password = randomHex(16)
	pwfile := filepath.Join(s.Dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(s.Password+"\n"), 0o600); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if err := s.chown(pwfile); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	out, err := s.run(s.initdb, "-D", s.DataDir, "-U", s.Superuser, "-A", o.auth, "--pwfile="+pwfile,
		"-E", "UTF8", "--locale=C", "--no-sync")
	_ = os.Remove(pwfile)
	if err != nil {
		t.Fatalf("pgtest: initdb: %v\n%s", err, out)
	}

	if err := s.writeDataFiles(o); err != nil {
		t.Fatalf("pgtest: %v", err)
	}

	settings := [][2]string{
		{"listen_addresses", "127.0.0.1"},
		{"unix_socket_directories", s.Dir},
		{"fsync", "off"},
		{"synchronous_commit", "off"},
		{"full_page_writes", "off"},
		{"max_connections", "50"},
		{"shared_buffers", "16MB"},
		// ReadyAt reads the log's timestamps.
		{"log_line_prefix", "%m [%p] "},
		{"log_timezone", "UTC"},
	}
	if err := s.appendConf(append(settings, o.settings...)); err != nil {
		t.Fatalf("pgtest: %v", err)
	}

	s.listen(t)
	return s
}

// makeDir creates the server's temporary directory, owned by the server's
// OS user, and registers the cleanup that stops the server and deletes the
// directory.
func (s *Server) makeDir(t testing.TB) {
	t.Helper()
	// Not t.TempDir: its parent directory is private to the current user,
	// and the server may run as another one.
	dir, err := os.MkdirTemp("", dirPrefix)
	if err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
	s.Dir, s.DataDir = dir, filepath.Join(dir, "data")
	t.Cleanup(func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if _, err := os.Stat(filepath.Join(s.DataDir, "postmaster.pid")); s.running || err == nil {
			if err := s.stopLocked("immediate"); err != nil {
				t.Errorf("pgtest: stopping the server: %v", err)
			}
		}
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("pgtest: %v", err)
		}
	})
	if err := s.chown(dir); err != nil {
		t.Fatalf("pgtest: %v", err)
	}
}

// listen starts the server on a free port. The port was free when chosen,
// but someone may take it before the server binds it: it tries a few.
func (s *Server) listen(t testing.TB) {
	t.Helper()
	for attempt := 1; ; attempt++ {
		port, err := testsrv.FreePort()
		if err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		if err := s.appendConf([][2]string{{"port", strconv.Itoa(port)}}); err != nil {
			t.Fatalf("pgtest: %v", err)
		}
		s.Port = port
		err = s.StartAgain()
		if err == nil {
			return
		}
		if attempt == 3 {
			t.Fatalf("pgtest: %v", err)
		}
		t.Logf("pgtest: start on port %d failed, retrying on another: %v", port, err)
	}
}

// Addr returns "host:port".
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Port)) }

// Stop stops the server with pg_ctl's shutdown mode: "smart" (wait for
// clients to disconnect), "fast" (disconnect them) or "immediate" (no clean
// shutdown, like a crash). It waits until the server is gone.
func (s *Server) Stop(mode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return errors.New("pgtest: server is not running")
	}
	return s.stopLocked(mode)
}

func (s *Server) stopLocked(mode string) error {
	out, err := s.run(s.pgctl, "-D", s.DataDir, "-m", mode, "-w", "-t", strconv.Itoa(int(commandTimeout.Seconds())), "stop")
	if err != nil {
		return fmt.Errorf("pg_ctl stop -m %s: %w\n%s", mode, err, out)
	}
	s.running = false
	return nil
}

// StartAgain starts a stopped server on the same port and data directory,
// and waits until it accepts TCP connections.
func (s *Server) StartAgain() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return errors.New("pgtest: server is already running")
	}
	out, err := s.run(s.pgctl, "-D", s.DataDir, "-l", s.logPath(), "-w", "-t", strconv.Itoa(int(commandTimeout.Seconds())), "start")
	if err != nil {
		return fmt.Errorf("pg_ctl start: %w\n%s\nserver log:\n%s", err, out, s.Log())
	}
	s.running = true
	if err := testsrv.WaitListening(s.Addr(), commandTimeout, nil); err != nil {
		return fmt.Errorf("server started but %w\nserver log:\n%s", err, s.Log())
	}
	return nil
}

// Ready reports whether the server accepts logins: it logs in as the
// superuser (database postgres) with a connection of its own and closes it.
// It fails while the server is down and while it is starting up or
// recovering from a crash, when the port accepts TCP connections already
// but logins are refused ("the database system is starting up").
func (s *Server) Ready(ctx context.Context) error {
	c, err := pq.NewConnector(s.dsn())
	if err != nil {
		return err
	}
	conn, err := c.Connect(ctx)
	if err != nil {
		return err
	}
	return conn.Close()
}

// readyLine is what the server logs when it starts accepting connections.
const readyLine = "database system is ready to accept connections"

// logTimeLayout is the time at the start of each log line (%m in
// log_line_prefix, in log_timezone UTC; see Start).
const logTimeLayout = "2006-01-02 15:04:05.000 MST"

// ReadyAt returns the time the server last said in its log that it accepts
// connections: when a start or a restart (crash recovery included)
// completed, to the millisecond, as the server saw it rather than as a
// client polling it would.
func (s *Server) ReadyAt() (time.Time, error) {
	b, err := os.ReadFile(s.logPath())
	if err != nil {
		return time.Time{}, err
	}
	lines := strings.Split(string(b), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if line := lines[i]; strings.Contains(line, readyLine) && len(line) >= len(logTimeLayout) {
			return time.Parse(logTimeLayout, line[:len(logTimeLayout)])
		}
	}
	return time.Time{}, fmt.Errorf("pgtest: the server log has no %q line", readyLine)
}

// dsn is the lib/pq connection string for the superuser.
func (s *Server) dsn() string {
	q := func(v string) string { return "'" + strings.NewReplacer(`\`, `\\`, "'", `\'`).Replace(v) + "'" }
	return fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=postgres sslmode=disable connect_timeout=5",
		s.Host, s.Port, q(s.Superuser), q(s.Password))
}

// Log returns the server's log so far, for failure messages.
func (s *Server) Log() string {
	b, err := os.ReadFile(s.logPath())
	if err != nil {
		return "(no server log: " + err.Error() + ")"
	}
	return string(b)
}

func (s *Server) logPath() string { return filepath.Join(s.Dir, "server.log") }

// appendConf appends settings to postgresql.conf; a later line wins over an
// earlier one. Writing the file, rather than passing -c options through
// pg_ctl's shell command line, needs no shell quoting.
func (s *Server) appendConf(settings [][2]string) error {
	var b strings.Builder
	b.WriteString("\n# pgtest\n")
	for _, kv := range settings {
		fmt.Fprintf(&b, "%s = '%s'\n", kv[0], strings.ReplaceAll(kv[1], "'", "''"))
	}
	f, err := os.OpenFile(filepath.Join(s.DataDir, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(b.String())
	return errors.Join(err, f.Close())
}

// writeDataFiles writes the WithFile files and the WithHBA pg_hba.conf
// into the data directory, owned by the server's OS user.
func (s *Server) writeDataFiles(o options) error {
	files := o.files
	if len(o.hba) > 0 {
		files = append(files, dataFile{"pg_hba.conf", []byte(strings.Join(o.hba, "\n") + "\n")})
	}
	for _, f := range files {
		path := filepath.Join(s.DataDir, f.name)
		if !strings.HasPrefix(path, s.DataDir+string(filepath.Separator)) {
			return fmt.Errorf("file %q is not inside the data directory", f.name)
		}
		if err := os.WriteFile(path, f.content, 0o600); err != nil {
			return err
		}
		if err := os.Chmod(path, 0o600); err != nil { // WriteFile keeps an existing file's mode
			return err
		}
		if err := s.chown(path); err != nil {
			return err
		}
	}
	return nil
}

// run runs a server binary as the server's OS user and returns its output.
// The output goes through a file, not a pipe: pg_ctl start leaves a server
// running, which must not hold a pipe that Run waits on.
func (s *Server) run(bin string, args ...string) (string, error) {
	return s.runEnv(nil, bin, args...)
}

// runEnv is run with extra environment variables (KEY=VALUE).
func (s *Server) runEnv(env []string, bin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), commandTimeout)
	defer cancel()
	cmd := s.command(ctx, bin, args)
	cmd.Dir = s.Dir // the server's user may not be allowed into the current directory
	cmd.Env = append(append(cleanEnv(), "LC_ALL=C"), env...)
	cmd.WaitDelay = 10 * time.Second
	out, err := os.CreateTemp("", dirPrefix+"out-")
	if err != nil {
		return "", err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	err = cmd.Run()
	b, _ := os.ReadFile(out.Name())
	return string(bytes.TrimSpace(b)), err
}

// command returns the command running bin as the server's OS user: directly
// when that is the current user, else through runuser or, without it, su.
func (s *Server) command(ctx context.Context, bin string, args []string) *exec.Cmd {
	if s.runAs == nil {
		return exec.CommandContext(ctx, bin, args...)
	}
	if p, err := exec.LookPath("runuser"); err == nil {
		return exec.CommandContext(ctx, p, append([]string{"-u", s.runAs.Username, "--", bin}, args...)...)
	}
	su, _ := exec.LookPath("su")
	return exec.CommandContext(ctx, su, s.runAs.Username, "-s", "/bin/sh", "-c", shellCommand(bin, args))
}

// canSwitchUser reports whether runuser or su is there to run the server as
// another user.
func canSwitchUser() error {
	if _, err := exec.LookPath("runuser"); err == nil {
		return nil
	}
	if _, err := exec.LookPath("su"); err != nil {
		return errors.New("neither runuser nor su found in $PATH")
	}
	return nil
}

// shellCommand quotes bin and args for sh -c.
func shellCommand(bin string, args []string) string {
	q := func(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }
	parts := []string{"exec", q(bin)}
	for _, a := range args {
		parts = append(parts, q(a))
	}
	return strings.Join(parts, " ")
}

// cleanEnv is the environment without PG* variables, which would point the
// binaries at another server or data directory.
func cleanEnv() []string {
	return slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG")
	})
}

func (s *Server) chown(path string) error {
	if s.runAs == nil {
		return nil
	}
	uid, err1 := strconv.Atoi(s.runAs.Uid)
	gid, err2 := strconv.Atoi(s.runAs.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	return os.Chown(path, uid, gid)
}

// installGlob finds Debian's and Ubuntu's PostgreSQL installations; a
// variable so that the tests can hide them.
var installGlob = "/usr/lib/postgresql/*/bin/initdb"

// reapOrphans stops and deletes the servers of test processes that died
// without running their cleanups (a panic, a -timeout, a kill): a server
// started with pg_ctl outlives the test that started it.
func reapOrphans(s *Server) {
	paths, _ := filepath.Glob(filepath.Join(os.TempDir(), dirPrefix+"*"))
	for _, path := range paths {
		fi, err := os.Lstat(path)
		if err != nil {
			continue
		}
		if b, err := os.ReadFile(filepath.Join(path, ownerFile)); err == nil {
			if pid, err := strconv.Atoi(strings.TrimSpace(string(b))); err != nil || processAlive(pid) {
				continue
			}
		} else if time.Since(fi.ModTime()) < orphanAge {
			continue
		}
		if fi.IsDir() {
			orphan := &Server{Dir: path, DataDir: filepath.Join(path, "data"), pgctl: s.pgctl, runAs: s.runAs}
			if _, err := os.Stat(filepath.Join(orphan.DataDir, "postmaster.pid")); err == nil {
				_ = orphan.stopLocked("immediate")
			}
		}
		_ = os.RemoveAll(path)
	}
}

// processAlive reports whether a process with the given PID exists.
func processAlive(pid int) bool {
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	err = p.Signal(syscall.Signal(0))
	return !errors.Is(err, os.ErrProcessDone) && !errors.Is(err, syscall.ESRCH)
}

// findBinaries returns the paths of initdb and pg_ctl.
func findBinaries() (initdb, pgctl string, err error) {
	var dirs []string
	if d := os.Getenv(BinDirEnv); d != "" {
		dirs = append(dirs, d)
	}
	found, _ := filepath.Glob(installGlob)
	slices.SortFunc(found, func(a, b string) int { return versionOf(b) - versionOf(a) })
	for _, f := range found {
		dirs = append(dirs, filepath.Dir(f))
	}
	for _, d := range dirs {
		i, p := filepath.Join(d, "initdb"), filepath.Join(d, "pg_ctl")
		if isExecutable(i) && isExecutable(p) {
			return i, p, nil
		}
	}
	i, err1 := exec.LookPath("initdb")
	p, err2 := exec.LookPath("pg_ctl")
	if err := errors.Join(err1, err2); err != nil {
		return "", "", fmt.Errorf("not in $%s, /usr/lib/postgresql/*/bin or $PATH: %w", BinDirEnv, err)
	}
	return i, p, nil
}

// versionOf returns the major version in /usr/lib/postgresql/<v>/bin/initdb.
func versionOf(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
