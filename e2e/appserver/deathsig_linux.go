package appserver

import (
	"os/exec"
	"syscall"
)

// setDeathSignal makes the kernel kill the child if this process dies first, so no app
// is left running after an interrupted measurement.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
