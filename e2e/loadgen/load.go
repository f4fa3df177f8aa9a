package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// newTransport is a keep-alive HTTP/1.1 transport sized for conc clients, which dials
// loopback addresses only and never uses a proxy.
func newTransport(conc int) *http.Transport {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy: nil,
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			host, port, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			if host == "localhost" { // the app's address (passkeys need a name); it listens on 127.0.0.1
				host = "127.0.0.1"
				addr = net.JoinHostPort(host, port)
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return nil, fmt.Errorf("loadgen only talks to loopback addresses, not %s", addr)
			}
			return dialer.DialContext(ctx, network, addr)
		},
		MaxIdleConns:        4 * conc,
		MaxIdleConnsPerHost: conc,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// op is one measured operation of one client; it returns an error when the answer was
// not the expected one.
type op func(ctx context.Context) error

// runLoad runs conc clients, each calling the op made for it by newOp in a loop: first for
// the warm-up (not recorded), then for o.duration (recorded), or until o.maxOps
// operations were recorded. An operation started in the measured window is recorded
// with its latency; the rate is operations over the time until the last one ended.
func runLoad(ctx context.Context, o options, name, unit string, newOp func(client int) op) result {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	start := time.Now().Add(o.warmup)
	end := start.Add(o.duration)
	var (
		mu       sync.Mutex
		lat      = make([]time.Duration, 0, 1<<16)
		errs     int
		firstErr error
		recorded atomic.Int64
		lastEnd  atomic.Int64 // unix nanos
		wg       sync.WaitGroup
	)
	for c := 0; c < o.concurrency; c++ {
		wg.Add(1)
		do := newOp(c)
		go func() {
			defer wg.Done()
			local := make([]time.Duration, 0, 4096)
			localErrs := 0
			var localFirst error
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(end) || recorded.Load() >= int64(o.maxOps) {
					break
				}
				err := do(ctx)
				t1 := time.Now()
				if t0.Before(start) {
					continue // warm-up
				}
				if err != nil {
					if ctx.Err() != nil {
						break
					}
					localErrs++
					if localFirst == nil {
						localFirst = err
					}
					time.Sleep(time.Millisecond) // never spin on a failing server
					continue
				}
				local = append(local, t1.Sub(t0))
				recorded.Add(1)
				for {
					prev := lastEnd.Load()
					if t1.UnixNano() <= prev || lastEnd.CompareAndSwap(prev, t1.UnixNano()) {
						break
					}
				}
			}
			mu.Lock()
			lat = append(lat, local...)
			errs += localErrs
			if firstErr == nil {
				firstErr = localFirst
			}
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	elapsed := time.Duration(lastEnd.Load() - start.UnixNano())
	if elapsed <= 0 {
		elapsed = o.duration
	}
	return result{name: name, unit: unit, lat: lat, elapsed: elapsed, errs: errs, firstEr: firstErr}
}

// runOpenLoop starts do at a fixed rate, whatever the answers: an open-loop load, as
// independent visitors make it. A slow answer does not delay the next start, and each
// latency is counted from the operation's scheduled start, so time spent waiting in
// the generator counts too (no coordinated omission). Operations scheduled in the
// warm-up are not recorded; at most maxInFlight run at once, and a start that finds
// them all busy is recorded as an error (the server could not keep up).
func runOpenLoop(ctx context.Context, o options, name, unit string, rate float64, maxInFlight int, do op) result {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	interval := time.Duration(float64(time.Second) / rate)
	start := time.Now().Add(o.warmup)
	end := start.Add(o.duration)
	first := start.Add(-o.warmup)
	var (
		mu       sync.Mutex
		lat      = make([]time.Duration, 0, int(rate*o.duration.Seconds())+1)
		errs     int
		firstErr error
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		errs++
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	slots := make(chan struct{}, maxInFlight)
	for i := 0; ; i++ {
		at := first.Add(time.Duration(i) * interval)
		if !at.Before(end) || ctx.Err() != nil {
			break
		}
		if d := time.Until(at); d > 0 {
			time.Sleep(d)
		}
		measured := !at.Before(start)
		select {
		case slots <- struct{}{}:
		default:
			if measured {
				fail(fmt.Errorf("%d operations already in flight", maxInFlight))
			}
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			err := do(ctx)
			took := time.Since(at)
			if !measured {
				return
			}
			if err != nil {
				fail(err)
				return
			}
			mu.Lock()
			lat = append(lat, took)
			mu.Unlock()
		}()
	}
	wg.Wait()
	slices.Sort(lat)
	return result{name: name, unit: unit, lat: lat, elapsed: o.duration, errs: errs, firstEr: firstErr, offered: rate}
}
