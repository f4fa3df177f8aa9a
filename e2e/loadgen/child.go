package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"example.com/passwordless/e2e/appserver"
)

// buildApp compiles the app (like `make build`) into dir; root "" is found from the
// working directory.
func buildApp(ctx context.Context, root, dir string) (string, error) {
	if root == "" {
		var err error
		if root, err = appserver.FindRoot(); err != nil {
			return "", fmt.Errorf("%w: run loadgen from inside the repository, or pass -root or -bin", err)
		}
	}
	return appserver.Build(ctx, root, dir)
}

// startChild starts the binary on dataDir with its log discarded (the access log costs
// the app what it costs it in production) and returns once it serves; StartedIn is the
// time from exec to the first 200. env adds settings.
func startChild(ctx context.Context, bin, dataDir, logLevel string, env ...string) (*appserver.Process, error) {
	var stderr bytes.Buffer
	p, err := appserver.Start(ctx, bin, appserver.Options{
		DataDir: dataDir,
		Stderr:  &stderr,
		Env:     append([]string{"SEND_LIMIT_PER_IP=1000000000", "LOG_LEVEL=" + logLevel}, env...),
	})
	if err != nil {
		return nil, fmt.Errorf("%w\n%s", err, stderr.String()) // the process is gone: stderr is complete
	}
	return p, nil
}

// rssReading is the memory of a process from /proc/<pid>/status, in bytes.
type rssReading struct{ hwm, rss int64 }

func readRSS(pid int) (rssReading, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return rssReading{}, err
	}
	defer f.Close()
	var r rssReading
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		fields := strings.Fields(v) // "12345 kB"
		if len(fields) != 2 || fields[1] != "kB" {
			continue
		}
		n, err := strconv.ParseInt(fields[0], 10, 64)
		if err != nil {
			continue
		}
		switch k {
		case "VmHWM":
			r.hwm = n * 1024
		case "VmRSS":
			r.rss = n * 1024
		}
	}
	if r.hwm == 0 {
		return r, fmt.Errorf("no VmHWM in /proc/%d/status", pid)
	}
	return r, sc.Err()
}
