// Package mariadbtest starts throwaway MariaDB servers for integration
// tests that the shared test server cannot cover, such as TLS with a
// certificate authority made for the test:
//
//	ca := pgtest.NewCA(t, "test CA")
//	cert, key := ca.Issue(t, "server", "127.0.0.1")
//	srv := mariadbtest.Start(t, mariadbtest.WithTLS(ca.PEM, cert, key))
//	cfg := dbm.Config{Driver: "mysql", Host: srv.Host, Port: srv.Port, User: "root"}
//
// A server is a fresh data directory made by mariadb-install-db in a
// temporary directory, listening on a free 127.0.0.1 port without grant
// tables (any user logs in, with any password or none), stopped and deleted
// when the test ends. When the tests run as root the server runs as the OS
// user "mysql".
//
// When the binaries are missing, Start skips the test with the reason, or
// fails it when DBM_REQUIRE_INTEGRATION=1, so CI cannot pass by skipping.
package mariadbtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/dbmanager-go/dbmanager/dbm/internal/testsrv"
)

// startTimeout bounds mariadb-install-db and the server's start; generous,
// for slow shared machines.
const startTimeout = 2 * time.Minute

// Server is a running throwaway MariaDB server.
type Server struct {
	Host string // always "127.0.0.1"
	Port int
	Dir  string // the temporary directory holding the data and the error log

	cmd  *exec.Cmd
	done chan error
}

// Option configures [Start].
type Option func(*options)

type options struct {
	caPEM, certPEM, keyPEM []byte
}

// WithTLS makes the server offer TLS with the given certificate and key
// (PEM), and trust client certificates signed by the CA (PEM).
func WithTLS(caPEM, certPEM, keyPEM []byte) Option {
	return func(o *options) { o.caPEM, o.certPEM, o.keyPEM = caPEM, certPEM, keyPEM }
}

// Start creates and starts a server and registers t.Cleanup to stop it and
// delete its directory. It returns once the server accepts TCP connections.
func Start(t testing.TB, opts ...Option) *Server {
	t.Helper()
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	install, err1 := exec.LookPath("mariadb-install-db")
	server, err2 := lookServer()
	if err := errors.Join(err1, err2); err != nil {
		testsrv.SkipOrFail(t, "MariaDB server binaries (mariadb-install-db, mariadbd)", err)
	}
	var runAs *user.User
	var err error
	if os.Geteuid() == 0 {
		if runAs, err = user.Lookup("mysql"); err != nil {
			testsrv.SkipOrFail(t, `OS user "mysql" (to run mariadbd as root)`, err)
		}
	}
	dir, err := os.MkdirTemp("", "dbm-mariadbtest-")
	if err != nil {
		t.Fatalf("mariadbtest: %v", err)
	}
	s := &Server{Host: "127.0.0.1", Dir: dir}
	t.Cleanup(func() {
		if err := s.stop(); err != nil {
			t.Errorf("mariadbtest: %v", err)
		}
		_ = os.RemoveAll(dir)
	})
	args := []string{"--no-defaults", "--datadir=" + filepath.Join(dir, "data"), "--bind-address=127.0.0.1",
		"--socket=" + filepath.Join(dir, "sock"), "--pid-file=" + filepath.Join(dir, "pid"),
		"--log-error=" + filepath.Join(dir, "error.log"), "--skip-grant-tables",
		"--innodb-buffer-pool-size=16M", "--skip-log-bin"}
	if o.certPEM != nil {
		for name, pem := range map[string][]byte{"ca.pem": o.caPEM, "server.pem": o.certPEM, "server-key.pem": o.keyPEM} {
			if err := os.WriteFile(filepath.Join(dir, name), pem, 0o600); err != nil {
				t.Fatalf("mariadbtest: %v", err)
			}
		}
		args = append(args, "--ssl-ca="+filepath.Join(dir, "ca.pem"), "--ssl-cert="+filepath.Join(dir, "server.pem"),
			"--ssl-key="+filepath.Join(dir, "server-key.pem"))
	}
	if runAs != nil {
		args = append(args, "--user=mysql")
		if err := chownTree(dir, runAs); err != nil {
			t.Fatalf("mariadbtest: %v", err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	installArgs := []string{"--no-defaults", "--datadir=" + filepath.Join(dir, "data"), "--skip-test-db", "--auth-root-authentication-method=normal"}
	if runAs != nil {
		installArgs = append(installArgs, "--user=mysql")
	}
	if out, err := exec.CommandContext(ctx, install, installArgs...).CombinedOutput(); err != nil {
		t.Fatalf("mariadbtest: mariadb-install-db: %v\n%s", err, out)
	}
	for attempt := 1; ; attempt++ {
		if s.Port, err = testsrv.FreePort(); err != nil {
			t.Fatalf("mariadbtest: %v", err)
		}
		if err = s.start(server, append(args, "--port="+strconv.Itoa(s.Port))); err == nil {
			return s
		}
		if attempt == 3 {
			t.Fatalf("mariadbtest: %v", err)
		}
		t.Logf("mariadbtest: start on port %d failed, retrying on another: %v", s.Port, err)
	}
}

// start runs mariadbd in the foreground (owned by the test process) and
// waits until its port accepts TCP connections.
func (s *Server) start(bin string, args []string) error {
	cmd := exec.Command(bin, args...)
	cmd.Dir = s.Dir
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		return err
	}
	s.cmd, s.done = cmd, make(chan error, 1)
	go func() { s.done <- cmd.Wait() }()
	err := testsrv.WaitListening(net.JoinHostPort(s.Host, strconv.Itoa(s.Port)), startTimeout, s.done)
	switch {
	case err == nil:
		return nil
	case testsrv.IsExited(err):
		s.cmd = nil
	default:
		_ = s.stop()
	}
	return fmt.Errorf("mariadbd: %w\n%s", err, s.Log())
}

// stop ends the server (SIGTERM: a clean shutdown), or kills it if it has
// not exited within the start timeout.
func (s *Server) stop() error {
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	defer func() { s.cmd = nil }()
	select {
	case <-s.done:
		return nil
	case <-time.After(startTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
		return errors.New("mariadbd did not exit on SIGTERM; killed")
	}
}

// Log returns the server's error log so far, for failure messages.
func (s *Server) Log() string {
	b, err := os.ReadFile(filepath.Join(s.Dir, "error.log"))
	if err != nil {
		return "(no error log: " + err.Error() + ")"
	}
	return string(b)
}

func lookServer() (string, error) {
	if p, err := exec.LookPath("mariadbd"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/mariadbd"); err == nil {
		return "/usr/sbin/mariadbd", nil
	}
	return "", errors.New("mariadbd not in $PATH or /usr/sbin")
}

func chownTree(dir string, u *user.User) error {
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err := errors.Join(err1, err2); err != nil {
		return err
	}
	return filepath.Walk(dir, func(path string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chown(path, uid, gid)
	})
}
