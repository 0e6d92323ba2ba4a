package mariadbtest

import (
	"os/exec"
	"syscall"
)

// dieWithParent makes cmd be killed when the test process dies without its
// cleanups (a panic, a -timeout).
func dieWithParent(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
