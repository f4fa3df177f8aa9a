//go:build !linux

package appserver

import "os/exec"

// setDeathSignal is a no-op where the kernel has no parent-death signal; stop() still
// ends the child on every normal exit.
func setDeathSignal(*exec.Cmd) {}
