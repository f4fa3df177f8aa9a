// Command loadgen measures the sample on loopback and prints a Markdown table: requests
// per second and p50/p99 latency for a bare Fiber handler (the ceiling), the emulator's
// track and challenge+verify, the app's /account with a session and the whole sign-in
// flow over HTTP, each also as a ratio to the ceiling measured in the same run; then the
// time from exec to the first 200 and the app's peak RSS under load.
//
//	go run ./e2e/loadgen                      # from the repository root
//	go run ./e2e/loadgen -duration 2s -concurrency 8
//
// Everything runs on 127.0.0.1 (the HTTP client refuses any other address), every
// scenario is bounded in time and in operations, and every child process and temporary
// folder is removed at the end. The figures are for information, never a pass/fail gate.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"
)

type options struct {
	duration    time.Duration
	warmup      time.Duration
	concurrency int
	maxOps      int
	starts      int
	bin         string
	root        string
	appLogLevel string
	only        string
	signInRate  float64
	cpuProfile  string
	postgres    string
}

func main() {
	var o options
	flag.DurationVar(&o.duration, "duration", 5*time.Second, "measured time per load scenario")
	flag.DurationVar(&o.warmup, "warmup", 500*time.Millisecond, "unmeasured warm-up before each load scenario")
	flag.IntVar(&o.concurrency, "concurrency", 16, "concurrent clients (and keep-alive connections) per scenario")
	flag.IntVar(&o.maxOps, "max-ops", 2_000_000, "upper bound on measured operations per scenario")
	flag.IntVar(&o.starts, "starts", 5, "process starts for \"start to first 200\" (the median is reported)")
	flag.StringVar(&o.bin, "bin", "", "a prebuilt binary of the app (default: go build it into a temporary folder)")
	flag.StringVar(&o.root, "root", "", "the repository root to build (default: found from the working directory)")
	flag.StringVar(&o.appLogLevel, "app-log-level", "INFO", "LOG_LEVEL of the child app (INFO is the program's default; its output goes to /dev/null)")
	flag.StringVar(&o.only, "only", "", "comma-separated scenario keys to run: ceiling,floor,track,challenge,account,signin,start (default all; the ceiling always runs)")
	flag.Float64Var(&o.signInRate, "signin-rate", 0, "flows per second for the open-loop sign-in (default: half the closed-loop sign-in throughput)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the emulator scenarios (this process: the emulator and its clients) to this file")
	flag.StringVar(&o.postgres, "postgres", "", "a PostgreSQL URL (e.g. TEST_DATABASE_URL from store/pgtest.sh): also run the app's /account and sign-in flow with its store there, beside SQLite")
	flag.Parse()
	if o.duration <= 0 || o.warmup < 0 || o.concurrency < 1 || o.maxOps < 1 || o.starts < 1 || o.signInRate < 0 {
		fmt.Fprintln(os.Stderr, "loadgen: -duration, -concurrency, -max-ops and -starts must be positive, -signin-rate not negative")
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// A hard bound on the whole run, whatever happens.
	budget := 8*(o.duration+o.warmup)*2 + time.Duration(o.starts)*15*time.Second + 5*time.Minute
	ctx, cancel := context.WithTimeout(ctx, budget)
	defer cancel()

	if err := run(ctx, o, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "loadgen:", err)
		os.Exit(1)
	}
}

func (o options) wants(key string) bool {
	if o.only == "" || key == "ceiling" {
		return true
	}
	for _, k := range strings.Split(o.only, ",") {
		if strings.TrimSpace(k) == key {
			return true
		}
	}
	return false
}

func run(ctx context.Context, o options, out io.Writer) error {
	tmp, err := os.MkdirTemp("", "loadgen-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)

	printMachine(out, o)

	var results []result
	progress := func(r result) {
		fmt.Fprintf(os.Stderr, "loadgen: %-26s %10.0f %s  p50 %s  p99 %s  (%d ops, %d errors)\n",
			r.name, r.rate(), r.unit, fmtDur(r.p(50)), fmtDur(r.p(99)), len(r.lat), r.errs)
		results = append(results, r)
	}

	// 1. The ceiling: a bare Fiber handler in this process (again at the end, to show drift).
	ceiling, err := runCeiling(ctx, o, nameCeiling)
	if err != nil {
		return fmt.Errorf("ceiling: %w", err)
	}
	progress(ceiling)

	// 2, 3. The emulator in this process, with a temporary SQLite file.
	if o.wants("floor") || o.wants("track") || o.wants("challenge") {
		if err := runEmulatorScenarios(ctx, o, filepath.Join(tmp, "emulator.db"), progress); err != nil {
			return err
		}
	}

	// 4, 5, 6, 7. The real binary as a child process.
	var starts []time.Duration
	var rss rssReading
	needApp := o.wants("floor") || o.wants("account") || o.wants("signin") || o.wants("start")
	if needApp {
		bin := o.bin
		if bin == "" {
			if bin, err = buildApp(ctx, o.root, tmp); err != nil {
				return err
			}
		}
		if o.wants("floor") || o.wants("account") || o.wants("signin") {
			if rss, err = runAppScenarios(ctx, o, bin, filepath.Join(tmp, "app-data"), progress); err != nil {
				return err
			}
		}
		if o.postgres != "" && (o.wants("account") || o.wants("signin")) {
			if err := runPostgresScenarios(ctx, o, bin, filepath.Join(tmp, "app-data-postgres"), progress); err != nil {
				return err
			}
		}
		if o.wants("start") {
			for i := 0; i < o.starts; i++ {
				child, err := startChild(ctx, bin, filepath.Join(tmp, fmt.Sprintf("start-%d", i)), o.appLogLevel)
				if err != nil {
					return fmt.Errorf("start %d: %w", i+1, err)
				}
				child.Stop()
				starts = append(starts, child.StartedIn)
			}
			fmt.Fprintf(os.Stderr, "loadgen: start to first 200: %v\n", starts)
		}
	}
	ceiling2, err := runCeiling(ctx, o, nameCeiling2)
	if err != nil {
		return fmt.Errorf("ceiling: %w", err)
	}
	progress(ceiling2)
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("stopped before the end: %w", err)
	}
	printReport(out, o, (ceiling.rate()+ceiling2.rate())/2, results, starts, rss)
	return nil
}

// runEmulatorScenarios starts the emulator in this process on dbPath and runs the
// wanted emulator scenarios against it.
func runEmulatorScenarios(ctx context.Context, o options, dbPath string, progress func(result)) error {
	emu, err := startEmulator(dbPath)
	if err != nil {
		return err
	}
	defer emu.close()
	if o.cpuProfile != "" {
		f, err := os.Create(o.cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	if o.wants("floor") {
		r := runGetOK(ctx, o, nameEmuFloor, emu.url+"/healthz")
		r.note = "GET /healthz: the emulator's net/http server and middleware, no work behind it"
		progress(r)
	}
	if o.wants("track") {
		r, err := runTrack(ctx, o, emu)
		if err != nil {
			return fmt.Errorf("emulator track: %w", err)
		}
		progress(r)
	}
	if o.wants("challenge") {
		r, err := runChallengeVerify(ctx, o, emu)
		if err != nil {
			return fmt.Errorf("emulator challenge+verify: %w", err)
		}
		progress(r)
	}
	return nil
}

// runAppScenarios starts the binary on dataDir, runs the wanted app scenarios against
// it and returns its memory after them.
func runAppScenarios(ctx context.Context, o options, bin, dataDir string, progress func(result)) (rssReading, error) {
	child, err := startChild(ctx, bin, dataDir, o.appLogLevel)
	if err != nil {
		return rssReading{}, err
	}
	defer child.Stop()
	if o.wants("floor") {
		r := runGetOK(ctx, o, nameAppFloor, child.AppURL+"/healthz")
		r.note = "GET /healthz: the app's Fiber server behind its outer middleware (panic recovery, request id, access log, security headers), no session, no store"
		progress(r)
	}
	if o.wants("account") {
		r, err := runAccount(ctx, o, child)
		if err != nil {
			return rssReading{}, fmt.Errorf("app /account: %w", err)
		}
		progress(r)
	}
	if o.wants("signin") {
		r, err := runSignIn(ctx, o, child, nameSignIn)
		if err != nil {
			return rssReading{}, fmt.Errorf("sign-in flow: %w", err)
		}
		progress(r)
		rate := o.signInRate
		if rate == 0 {
			rate = r.rate() / 2
		}
		if rate > 0 {
			progress(runSignInOpenLoop(ctx, o, child, rate))
		}
		if o.concurrency > 1 {
			// The same flow without queueing behind other clients: its latency alone.
			one := o
			one.concurrency = 1
			r, err := runSignIn(ctx, one, child, nameSignIn1)
			if err != nil {
				return rssReading{}, fmt.Errorf("sign-in flow, 1 client: %w", err)
			}
			progress(r)
		}
	}
	rss, err := readRSS(child.Pid())
	if err != nil {
		return rssReading{}, fmt.Errorf("peak RSS: %w", err)
	}
	return rss, nil
}

// runPostgresScenarios runs /account and the closed-loop sign-in against a child whose
// store is PostgreSQL, named as the SQLite ones with " (PostgreSQL)".
func runPostgresScenarios(ctx context.Context, o options, bin, dataDir string, progress func(result)) error {
	child, err := startChild(ctx, bin, dataDir, o.appLogLevel,
		"DATABASE_URL="+o.postgres, "SESSION_SECRET=loadgen-session-secret-for-postgres-runs")
	if err != nil {
		return fmt.Errorf("the app on PostgreSQL: %w", err)
	}
	defer child.Stop()
	if o.wants("account") {
		r, err := runAccount(ctx, o, child)
		if err != nil {
			return fmt.Errorf("app /account on PostgreSQL: %w", err)
		}
		r.name += postgresSuffix
		progress(r)
	}
	if o.wants("signin") {
		r, err := runSignIn(ctx, o, child, nameSignIn+postgresSuffix)
		if err != nil {
			return fmt.Errorf("sign-in flow on PostgreSQL: %w", err)
		}
		progress(r)
	}
	return nil
}

// postgresSuffix names a scenario run with the app's store in PostgreSQL.
const postgresSuffix = " (PostgreSQL)"

// result is one load scenario's measurements.
type result struct {
	name    string
	unit    string // "req/s" or "flows/s"
	lat     []time.Duration
	elapsed time.Duration
	errs    int
	firstEr error
	note    string
	offered float64 // open loop: the operations per second started
}

func (r result) rate() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(len(r.lat)) / r.elapsed.Seconds()
}

// p is the q-th percentile of the sorted latencies (nearest rank).
func (r result) p(q int) time.Duration {
	n := len(r.lat)
	if n == 0 {
		return 0
	}
	i := (n*q + 99) / 100
	if i < 1 {
		i = 1
	}
	if i > n {
		i = n
	}
	return r.lat[i-1]
}

func fmtDur(d time.Duration) string {
	return fmt.Sprintf("%.2f ms", float64(d)/float64(time.Millisecond))
}

func cpuModel() string {
	b, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func printMachine(out io.Writer, o options) {
	fmt.Fprintf(out, "Machine: %s, %d CPUs (GOMAXPROCS %d), %s/%s, %s\n\n",
		cpuModel(), runtime.NumCPU(), runtime.GOMAXPROCS(0), runtime.GOOS, runtime.GOARCH, runtime.Version())
	fmt.Fprintf(out, "Settings: %s measured per load scenario after %s warm-up, %d concurrent keep-alive clients, HTTP/1.1 on 127.0.0.1; "+
		"the load generator, the ceiling and the emulator share this process, the app is a child process (LOG_LEVEL=%s).\n\n",
		o.duration, o.warmup, o.concurrency, o.appLogLevel)
}

// printReport prints the table; ratios are to ceiling, the mean of the two ceiling runs.
func printReport(out io.Writer, o options, ceiling float64, results []result, starts []time.Duration, rss rssReading) {
	fmt.Fprintln(out, "| scenario | requests/s | p50 | p99 | ratio to ceiling | notes |")
	fmt.Fprintln(out, "|---|---:|---:|---:|---:|---|")
	for _, r := range results {
		ratio := fmt.Sprintf("%.2f", r.rate()/ceiling)
		note := r.note
		if r.errs > 0 {
			note += fmt.Sprintf("; **%d errors** (first: %v)", r.errs, r.firstEr)
		}
		fmt.Fprintf(out, "| %s | %s %s | %s | %s | %s | %s |\n",
			r.name, groupThousands(r.rate()), r.unit, fmtDur(r.p(50)), fmtDur(r.p(99)), ratio, note)
	}
	var startMedian time.Duration
	if len(starts) > 0 {
		sorted := append([]time.Duration(nil), starts...)
		slices.Sort(sorted)
		startMedian = sorted[len(sorted)/2]
		fmt.Fprintf(out, "| start to first 200 | — | %s (median) | %s (max) | — | exec of the binary to the first 200 from /healthz; %d starts, each with a fresh DATA_DIR |\n",
			fmtDur(startMedian), fmtDur(sorted[len(sorted)-1]), len(starts))
	}
	if rss.hwm > 0 {
		fmt.Fprintf(out, "| peak RSS under load | — | — | — | — | %.1f MiB (VmHWM of the app process, embedded emulator included, after the /account and sign-in loads; VmRSS then %.1f MiB) |\n",
			mib(rss.hwm), mib(rss.rss))
	}

	fmt.Fprintf(out, "\nRatios are operations per second over the ceiling (the mean of its two runs, %s req/s); a flow counts once although it makes 3 or 4 requests.\n", groupThousands(ceiling))

	// The sample's performance goals, for information.
	fmt.Fprintln(out)
	fmt.Fprintln(out, "| goal (on 2 cores) | measured | met |")
	fmt.Fprintln(out, "|---|---:|---|")
	find := func(name string) (result, bool) {
		for _, r := range results {
			if r.name == name {
				return r, true
			}
		}
		return result{}, false
	}
	met := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "no"
	}
	// Each server's floor (its /healthz) bounds what any of its routes can reach.
	floor := func(name string) string {
		if r, ok := find(name); ok {
			return fmt.Sprintf(" (its /healthz floor: %.0f%%)", 100*r.rate()/ceiling)
		}
		return ""
	}
	if r, ok := find(nameTrack); ok {
		ratio := r.rate() / ceiling
		fmt.Fprintf(out, "| emulator track ≥ 40%% of the ceiling | %.0f%%%s | %s |\n", 100*ratio, floor(nameEmuFloor), met(ratio >= 0.40))
	}
	if r, ok := find(nameAccount); ok {
		ratio := r.rate() / ceiling
		fmt.Fprintf(out, "| app /account ≥ 50%% of the ceiling | %.0f%%%s | %s |\n", 100*ratio, floor(nameAppFloor), met(ratio >= 0.50))
	}
	for _, name := range []string{nameSignIn, nameSignInOL, nameSignIn1} {
		if r, ok := find(name); ok {
			load := fmt.Sprintf("%d clients, closed loop", o.concurrency)
			switch name {
			case nameSignIn1:
				load = "1 client"
			case nameSignInOL:
				load = fmt.Sprintf("open loop at %.0f flows/s", r.offered)
			}
			fmt.Fprintf(out, "| sign-in flow p99 < 20 ms (%s) | %s | %s |\n", load, fmtDur(r.p(99)), met(r.p(99) < 20*time.Millisecond && r.errs == 0))
		}
	}
	if len(starts) > 0 {
		fmt.Fprintf(out, "| start to first 200 < 200 ms | %s | %s |\n", fmtDur(startMedian), met(startMedian < 200*time.Millisecond))
	}
	if rss.hwm > 0 {
		fmt.Fprintf(out, "| peak RSS < 100 MB | %.1f MiB | %s |\n", mib(rss.hwm), met(rss.hwm < 100_000_000))
	}
	if runtime.NumCPU() != 2 {
		fmt.Fprintf(out, "\nThe goals are stated for 2 cores; this machine has %d.\n", runtime.NumCPU())
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

func groupThousands(f float64) string {
	s := fmt.Sprintf("%.0f", f)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}
