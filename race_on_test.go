//go:build race

package main

// raceEnabled tells tests that measure the built binary under load that this test binary
// runs with the race detector, which slows the load they generate several times over.
const raceEnabled = true
