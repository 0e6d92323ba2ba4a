//go:build !linux

package pgtest

import (
	"errors"
	"os"
	"os/exec"
	"os/user"
)

// runAsUser runs cmd as the current user; running it as another one is
// only done on Linux.
func runAsUser(_ *exec.Cmd, u *user.User) error {
	if u != nil {
		return errors.New("pgtest: running PgBouncer as another user is only supported on Linux")
	}
	return nil
}

// terminate ends PgBouncer.
func terminate(p *os.Process) error { return p.Kill() }
