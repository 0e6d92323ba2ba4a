package pgtest

import (
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestPostgresServerStopStartAgain checks the lifecycle the restart tests
// rely on: the server listens after Start, stops listening after Stop, listens
// again on the same port after StartAgain, and its directory is removed when
// the test ends.
func TestPostgresServerStopStartAgain(t *testing.T) {
	var dir string
	t.Run("lifecycle", func(t *testing.T) {
		srv := Start(t)
		dir = srv.Dir
		if srv.Host != "127.0.0.1" || srv.Port == 0 || srv.Superuser == "" || srv.Password == "" {
			t.Fatalf("incomplete server description: host %q port %d superuser %q password set %v",
				srv.Host, srv.Port, srv.Superuser, srv.Password != "")
		}
		if _, err := os.Stat(filepath.Join(srv.Dir, "pwfile")); !os.IsNotExist(err) {
			t.Errorf("the password file is still on disk after initdb (stat: %v)", err)
		}
		conf, err := os.ReadFile(filepath.Join(srv.DataDir, "pg_hba.conf"))
		if err != nil {
			t.Fatal(err)
		}
		rules := 0
		for _, line := range strings.Split(string(conf), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || strings.HasPrefix(f[0], "#") {
				continue
			}
			rules++
			if f[len(f)-1] != "scram-sha-256" {
				t.Errorf("pg_hba.conf line does not use scram-sha-256: %q", line)
			}
		}
		if rules == 0 {
			t.Error("pg_hba.conf has no rules")
		}

		mustDial(t, srv.Addr())
		if err := srv.Ready(t.Context()); err != nil {
			t.Fatalf("Ready after Start: %v", err)
		}
		port := srv.Port
		if err := srv.Stop("fast"); err != nil {
			t.Fatal(err)
		}
		if c, err := net.DialTimeout("tcp", srv.Addr(), 2*time.Second); err == nil {
			c.Close()
			t.Fatalf("%s still accepts connections after Stop", srv.Addr())
		}
		if err := srv.Ready(t.Context()); err == nil {
			t.Error("Ready on a stopped server: want an error, got nil")
		}
		firstReady, err := srv.ReadyAt()
		if err != nil || time.Since(firstReady) < 0 || time.Since(firstReady) > time.Hour {
			t.Errorf("ReadyAt after the first start: %v, %v; want a time a moment ago", firstReady, err)
		}
		beforeStart := time.Now().Truncate(time.Millisecond)
		if err := srv.Stop("fast"); err == nil {
			t.Error("Stop on a stopped server: want an error, got nil")
		}
		if err := srv.StartAgain(); err != nil {
			t.Fatal(err)
		}
		if srv.Port != port {
			t.Errorf("port changed across StartAgain: %d, then %d", port, srv.Port)
		}
		mustDial(t, srv.Addr())
		if err := srv.Ready(t.Context()); err != nil {
			t.Errorf("Ready after StartAgain: %v", err)
		}
		if ready, err := srv.ReadyAt(); err != nil || ready.Before(beforeStart) || time.Since(ready) < 0 {
			t.Errorf("ReadyAt after StartAgain = %v, %v; want a time between %v and now", ready, err, beforeStart)
		}
		if err := srv.StartAgain(); err == nil {
			t.Error("StartAgain on a running server: want an error, got nil")
		}
	})
	if dir == "" {
		return // skipped
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("server directory %s still exists after the test (stat: %v)", dir, err)
	}
}

// TestPostgresServerFilesAndHBA checks that WithFile puts a file into the
// data directory, private to the server's user, and that WithHBA replaces
// pg_hba.conf with the given lines, which the server starts with. (The TLS
// test of package dbm shows the server applying both.)
func TestPostgresServerFilesAndHBA(t *testing.T) {
	hba := []string{"hostssl all all 127.0.0.1/32 cert", "local all all trust"}
	srv := Start(t, WithFile("dbm-note.txt", []byte("hello")), WithHBA(hba...))
	path := filepath.Join(srv.DataDir, "dbm-note.txt")
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("%s has mode %04o, want 0600", path, fi.Mode().Perm())
	}
	if srv.runAs != nil {
		if uid := strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Uid)); uid != srv.runAs.Uid {
			t.Errorf("%s is owned by uid %s, want the server's user (uid %s)", path, uid, srv.runAs.Uid)
		}
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != "hello" {
		t.Errorf("%s holds %q (%v), want %q", path, b, err, "hello")
	}
	conf, err := os.ReadFile(filepath.Join(srv.DataDir, "pg_hba.conf"))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(conf), strings.Join(hba, "\n")+"\n"; got != want {
		t.Errorf("pg_hba.conf = %q, want %q", got, want)
	}
	mustDial(t, srv.Addr())
}

// TestPostgresServerDurable checks that Durable turns synchronous_commit
// on, so that a commit survives a crash (Stop("immediate")), and that the
// server is ready again after crash recovery.
func TestPostgresServerDurable(t *testing.T) {
	srv := Start(t, Durable())
	db, err := sql.Open("postgres", srv.dsn())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := t.Context()
	var sc string
	if err := db.QueryRowContext(ctx, "SHOW synchronous_commit").Scan(&sc); err != nil {
		t.Fatal(err)
	}
	if sc != "on" {
		t.Errorf("synchronous_commit = %q with Durable, want on", sc)
	}
	if _, err := db.ExecContext(ctx, "CREATE TABLE kept AS SELECT 42 AS v"); err != nil {
		t.Fatal(err)
	}
	if err := srv.Stop("immediate"); err != nil {
		t.Fatal(err)
	}
	if err := srv.StartAgain(); err != nil {
		t.Fatal(err)
	}
	if err := srv.Ready(ctx); err != nil {
		t.Fatal(err)
	}
	var v int
	if err := db.QueryRowContext(ctx, "SELECT v FROM kept").Scan(&v); err != nil || v != 42 {
		t.Errorf("after a crash: v = %d, %v; want the committed 42\nserver log:\n%s", v, err, srv.Log())
	}
}

// TestPostgresServerReapsOrphans checks that the server of a test process
// that died without cleaning up is stopped and deleted by the next Start.
func TestPostgresServerReapsOrphans(t *testing.T) {
	srv := Start(t)
	// Pretend that the process that started srv died: give it the PID of a
	// process that has exited.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatalf("cannot run true to get a dead PID: %v", err)
	}
	if err := os.WriteFile(filepath.Join(srv.Dir, ownerFile), []byte(strconv.Itoa(dead.Process.Pid)), 0o644); err != nil {
		t.Fatal(err)
	}
	reapOrphans(srv)
	if _, err := os.Stat(srv.Dir); !os.IsNotExist(err) {
		t.Errorf("orphan directory %s still exists (stat: %v)", srv.Dir, err)
	}
	if c, err := net.DialTimeout("tcp", srv.Addr(), 2*time.Second); err == nil {
		c.Close()
		t.Errorf("the orphan server at %s still accepts connections", srv.Addr())
	}
	srv.running = false // stopped by the reaper, not by Stop

	// A live owner's server is left alone.
	live := Start(t)
	reapOrphans(live)
	mustDial(t, live.Addr())
}

// TestPostgresServerMissing checks that a missing installation goes to the
// caller's OnMissing function with a reason, and that Start then stops the
// test (here a fake one, so that this test itself neither skips nor fails).
func TestPostgresServerMissing(t *testing.T) {
	t.Setenv(BinDirEnv, t.TempDir())
	t.Setenv("PATH", t.TempDir())
	defer func(g string) { installGlob = g }(installGlob)
	installGlob = filepath.Join(t.TempDir(), "*", "bin", "initdb")

	fake := &stoppingTB{TB: t}
	var what string
	done := make(chan struct{})
	go func() {
		defer close(done)
		Start(fake, OnMissing(func(_ testing.TB, w string, err error) { what = w + ": " + err.Error() }))
		t.Error("Start returned without binaries")
	}()
	<-done
	if !strings.Contains(what, "initdb") {
		t.Errorf("OnMissing reason %q does not name initdb", what)
	}
	if !fake.skipped {
		t.Error("Start did not skip after OnMissing returned")
	}
}

// stoppingTB stands in for the test inside Start: Skipf ends the calling
// goroutine the way testing does, without touching the real test.
type stoppingTB struct {
	testing.TB
	skipped bool
}

func (f *stoppingTB) Helper()              {}
func (f *stoppingTB) Cleanup(func())       {}
func (f *stoppingTB) Skipf(string, ...any) { f.skipped = true; runtime.Goexit() }

func mustDial(t *testing.T, addr string) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("server at %s does not accept connections: %v", addr, err)
	}
	c.Close()
}

// TestCAIssue checks the certificates NewCA and Issue make: a server
// certificate verifies for its hosts (and not others) as a server, a client
// certificate as a client with the given CN, and neither verifies against
// another CA.
func TestCAIssue(t *testing.T) {
	ca, other := NewCA(t, "test CA"), NewCA(t, "other CA")
	parse := func(certPEM, keyPEM []byte) *x509.Certificate {
		t.Helper()
		pair, err := tls.X509KeyPair(certPEM, keyPEM)
		if err != nil {
			t.Fatalf("the key does not match the certificate: %v", err)
		}
		c, err := x509.ParseCertificate(pair.Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	pool := func(c *CA) *x509.CertPool {
		p := x509.NewCertPool()
		if !p.AppendCertsFromPEM(c.PEM) {
			t.Fatal("CA PEM does not parse")
		}
		return p
	}
	server := parse(ca.Issue(t, "127.0.0.1", "127.0.0.1", "localhost"))
	for _, host := range []string{"127.0.0.1", "localhost"} {
		if _, err := server.Verify(x509.VerifyOptions{Roots: pool(ca), DNSName: host}); err != nil {
			t.Errorf("server certificate for %s: %v", host, err)
		}
	}
	if _, err := server.Verify(x509.VerifyOptions{Roots: pool(ca), DNSName: "example.com"}); err == nil {
		t.Error("server certificate verifies for example.com")
	}
	client := parse(ca.Issue(t, "app"))
	clientUse := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if _, err := client.Verify(x509.VerifyOptions{Roots: pool(ca), KeyUsages: clientUse}); err != nil || client.Subject.CommonName != "app" {
		t.Errorf("client certificate CN %q: %v", client.Subject.CommonName, err)
	}
	if _, err := client.Verify(x509.VerifyOptions{Roots: pool(other), KeyUsages: clientUse}); err == nil {
		t.Error("client certificate verifies against another CA")
	}
}
