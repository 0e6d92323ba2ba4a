package pgtest

import (
	"os"
	"os/exec"
	"os/user"
	"strconv"
	"syscall"
)

// runAsUser makes cmd run as u (nil: as the current user), and be killed
// when the test process dies without its cleanups (a panic, a -timeout), so
// that no PgBouncer outlives the test that started it.
func runAsUser(cmd *exec.Cmd, u *user.User) error {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if u == nil {
		return nil
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return err
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return err
	}
	cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	return nil
}

// terminate asks PgBouncer for an immediate shutdown.
func terminate(p *os.Process) error { return p.Signal(syscall.SIGTERM) }
