// Command mailloop benchmarks the mail loop end to end on a real Dovecot
// 2.3: the latency from a notice landing in INBOX to its summary reaching
// the SMTP server, and the rate at which a backlog is worked off, against
// Dovecot's raw fetch rate. It starts its own Dovecot (temp dir, free
// 127.0.0.1 port), an in-process SMTP listener and the daemon with its
// watcher in process, as cmd/abuse-responder/demo.go wires them, and stops
// everything by itself. See bench/README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"math"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/emersion/go-imap/v2"
)

type options struct {
	notice         string
	latencyN       int
	probeN         int
	gap            time.Duration
	backlogN       int
	rawRuns        int
	tick           time.Duration
	backlogTick    time.Duration
	sent           string
	storeDir       string
	workDir        string
	cpuProfile     string
	timeout        time.Duration
	backlogTimeout time.Duration
	skipLatency    bool
	skipBacklog    bool
	verbose        bool
	keep           bool
}

func main() {
	var o options
	flag.StringVar(&o.notice, "notice", "daemon/testdata/notice.eml", "the notice every bench mail is made from")
	flag.IntVar(&o.latencyN, "latency-n", 100, "notices in the latency run, one at a time")
	flag.IntVar(&o.probeN, "probe-n", 20, "bare Dovecot IDLE probes (APPEND → EXISTS, no daemon) before the latency run")
	flag.DurationVar(&o.gap, "gap", 200*time.Millisecond, "pause after a summary arrives before the next notice (the daemon is back in IDLE)")
	flag.IntVar(&o.backlogN, "backlog-n", 10000, "notices in the backlog run (at most 10000: case IDs are 1305117xxxx-1)")
	flag.IntVar(&o.rawRuns, "raw-runs", 3, "raw UID FETCH runs over the backlog; the median is reported")
	flag.DurationVar(&o.tick, "tick", 100*time.Millisecond, "the daemon's Tick in the latency run")
	flag.DurationVar(&o.backlogTick, "backlog-tick", 5*time.Second, "the daemon's Tick in the backlog run (5s is daemon.New's default, the one `run` uses)")
	flag.StringVar(&o.sent, "sent", "Sent", `the daemon's SentMailbox, as in the demo ("" = no copy to Sent)`)
	flag.StringVar(&o.storeDir, "store-dir", "", "directory for the SQLite stores (default: in the work dir)")
	flag.StringVar(&o.workDir, "work-dir", "", "parent of the temp dir for Dovecot and the stores (default $TMPDIR)")
	flag.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of the backlog run to this file")
	flag.DurationVar(&o.timeout, "timeout", 45*time.Minute, "bound on the whole run")
	flag.DurationVar(&o.backlogTimeout, "backlog-timeout", 30*time.Minute, "bound on the daemon's backlog run")
	flag.BoolVar(&o.skipLatency, "skip-latency", false, "skip the latency run")
	flag.BoolVar(&o.skipBacklog, "skip-backlog", false, "skip the backlog run")
	flag.BoolVar(&o.verbose, "v", false, "print the daemon's log")
	flag.BoolVar(&o.keep, "keep", false, "keep the temp dir (Dovecot's log, maildirs, stores)")
	flag.Parse()
	if o.backlogN < 1 || o.backlogN > 10000 || o.latencyN < 1 || o.latencyN > 9999 || o.rawRuns < 1 {
		fmt.Fprintln(os.Stderr, "mailloop: -latency-n must be 1..9999, -backlog-n 1..10000, -raw-runs at least 1")
		os.Exit(2)
	}
	os.Exit(run(o))
}

func progress(format string, a ...any) {
	fmt.Fprintf(os.Stderr, "%s  "+format+"\n", append([]any{time.Now().Format("15:04:05.000")}, a...)...)
}

type results struct {
	machine []string

	latency   []time.Duration
	probe     []time.Duration
	appendRTT []time.Duration
	queueMean time.Duration // daemon metric: stored → summary queued

	backlogN        int
	dropTime        time.Duration
	syncTime        time.Duration
	rawRates        []float64
	rawBytes        int64
	backlogStored   time.Duration
	backlogMoved    time.Duration // INBOX empty: every notice moved to Processed
	backlogFirst    time.Duration
	backlogDone     time.Duration
	backlogGot      int
	backlogComplete bool
	states          map[string]int
	cpuSelf         time.Duration
	cpuDovecot      time.Duration
	sysBusy, sysIO  float64
	hwmBefore       int64 // kB, before the backlog run (then reset)
	hwmBacklog      int64 // kB, peak during the backlog run alone
	hwmEnd          int64 // kB, VmHWM at the end as /proc/self/status says it
	warnings        int64
	smtpTotal       int64
	smtpUnmatched   int64
}

func run(o options) int {
	ctx, cancel := context.WithTimeout(context.Background(), o.timeout)
	defer cancel()
	ctx, stopSig := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stopSig()

	tmpl, err := loadTemplate(o.notice)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mailloop: %v\n", err)
		return 1
	}
	dir, err := os.MkdirTemp(o.workDir, "abuse-responder-bench-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "mailloop: %v\n", err)
		return 1
	}
	if o.keep {
		progress("work dir %s (kept)", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	storeDir := o.storeDir
	if storeDir == "" {
		storeDir = filepath.Join(dir, "store")
	} else if storeDir, err = os.MkdirTemp(storeDir, "abuse-responder-bench-store-"); err != nil {
		fmt.Fprintf(os.Stderr, "mailloop: %v\n", err)
		return 1
	} else if !o.keep {
		defer os.RemoveAll(storeDir)
	}

	dc, err := startDovecot(dir)
	if err != nil {
		fmt.Fprintf(os.Stderr, "mailloop: %v\n", err)
		return 1
	}
	defer dc.stop()
	progress("dovecot on %s (maildir %s), stores in %s", dc.addr(), dc.maildir, storeDir)

	log, warnings := newLogger(o.verbose)
	r := &results{machine: machine(storeDir)}
	if !o.skipLatency {
		if err := runLatency(ctx, o, dc, tmpl, filepath.Join(storeDir, "latency.db"), log, r); err != nil {
			fmt.Fprintf(os.Stderr, "mailloop: latency run: %v%s\n", err, dc.logTail())
			return 1
		}
	}
	if !o.skipBacklog {
		if err := runBacklog(ctx, o, dc, tmpl, filepath.Join(storeDir, "backlog.db"), log, r); err != nil {
			fmt.Fprintf(os.Stderr, "mailloop: backlog run: %v%s\n", err, dc.logTail())
			return 1
		}
	}
	r.warnings = warnings.Load()
	r.hwmEnd, _ = procStatus("VmHWM")
	printResults(os.Stdout, o, r)
	if !r.backlogComplete && !o.skipBacklog {
		return 1
	}
	return 0
}

// runLatency delivers latencyN notices one at a time by IMAP APPEND and
// times each from just before the APPEND to the SMTP listener's receipt
// of that case's summary.
func runLatency(ctx context.Context, o options, dc *dovecot, tmpl *noticeTemplate, dbPath string, log *slog.Logger, r *results) error {
	if o.probeN > 0 {
		var err error
		if r.probe, err = idleProbe(ctx, dc.addr(), o.probeN, o.gap); err != nil {
			return fmt.Errorf("idle probe: %w", err)
		}
		progress("latency: %d bare Dovecot IDLE probes done (median %s)", len(r.probe), sortedPct(r.probe, .5).Round(time.Millisecond))
	}
	coll, err := startCollector(o.latencyN + 1)
	if err != nil {
		return err
	}
	defer coll.close()
	l, err := startLoop(ctx, loopConfig{imapAddr: dc.addr(), smtpAddr: coll.srv.Addr, dbPath: dbPath,
		sentMailbox: o.sent, tick: o.tick, log: log})
	if err != nil {
		return err
	}
	defer l.stop()
	c, err := dialIMAP(dc.addr())
	if err != nil {
		return err
	}
	defer c.Close()

	// One warm-up notice, not counted: the watcher has connected, selected
	// and entered IDLE, and Sent exists, before the first timed one.
	warm := caseID(9999)
	if err := appendMsg(c, "INBOX", tmpl.notice("warmup", warm, true)); err != nil {
		return fmt.Errorf("append the warm-up notice: %w", err)
	}
	if _, err := coll.waitCase(ctx, warm, 60*time.Second); err != nil {
		return err
	}
	progress("latency: warm-up summary received; %d notices one at a time, %s apart", o.latencyN, o.gap)
	for i := range o.latencyN {
		if err := sleepCtx(ctx, o.gap); err != nil {
			return err
		}
		id := caseID(i)
		raw := tmpl.notice("latency", id, true)
		t0 := time.Now()
		if err := appendMsg(c, "INBOX", raw); err != nil {
			return fmt.Errorf("append notice %s: %w", id, err)
		}
		r.appendRTT = append(r.appendRTT, time.Since(t0))
		got, err := coll.waitCase(ctx, id, 30*time.Second)
		if err != nil {
			return err
		}
		r.latency = append(r.latency, got.Sub(t0))
		if (i+1)%25 == 0 {
			progress("latency: %d/%d, last %s", i+1, o.latencyN, got.Sub(t0).Round(time.Millisecond))
		}
	}
	mean, _ := l.histMean("abuse_responder_notice_to_summary_seconds")
	r.queueMean = time.Duration(mean * float64(time.Second))
	r.smtpTotal += coll.total.Load()
	r.smtpUnmatched += coll.unmatched.Load()
	states, err := l.caseStates(ctx)
	if err != nil {
		return err
	}
	progress("latency: done; cases by state %v", states)
	return l.waitSent(ctx, o.latencyN+1)
}

// runBacklog fills INBOX with backlogN notices while no daemon runs,
// measures Dovecot's raw fetch rate over them, then starts the daemon and
// measures how fast it turns them into sent summaries.
func runBacklog(ctx context.Context, o options, dc *dovecot, tmpl *noticeTemplate, dbPath string, log *slog.Logger, r *results) error {
	n := o.backlogN
	r.backlogN = n
	c, err := dialIMAP(dc.addr())
	if err != nil {
		return err
	}
	defer c.Close()
	if before, err := mailboxCount(c, "INBOX"); err != nil {
		return err
	} else if before != 0 {
		return fmt.Errorf("INBOX holds %d messages before the backlog; want 0", before)
	}

	// Dovecot is idle and no daemon runs: write the backlog into new/.
	t0 := time.Now()
	if err := dc.dropInMaildir(func(i int) []byte { return tmpl.notice("backlog", caseID(i), false) }, n); err != nil {
		return fmt.Errorf("write the maildir: %w", err)
	}
	r.dropTime = time.Since(t0)
	// SELECT makes Dovecot sync the maildir: new/ to cur/, UIDs, index.
	t0 = time.Now()
	var sel *imap.SelectData
	err = guarded(c, 5*time.Minute, func() error {
		var err error
		sel, err = c.Select("INBOX", nil).Wait()
		return err
	})
	if err != nil {
		return fmt.Errorf("select INBOX: %w", err)
	}
	r.syncTime = time.Since(t0)
	if int(sel.NumMessages) != n {
		return fmt.Errorf("INBOX holds %d messages after the drop; want %d", sel.NumMessages, n)
	}
	progress("backlog: %d notices written to new/ in %s; Dovecot synced them in %s", n, r.dropTime.Round(time.Millisecond), r.syncTime.Round(time.Millisecond))

	for i := range o.rawRuns {
		msgs, bytes, el, err := rawFetch(c)
		if err != nil {
			return fmt.Errorf("raw fetch: %w", err)
		}
		if msgs != n {
			return fmt.Errorf("raw fetch returned %d messages; want %d", msgs, n)
		}
		rate := float64(msgs) / el.Seconds()
		r.rawRates = append(r.rawRates, rate)
		r.rawBytes = bytes
		progress("raw fetch %d/%d: %d msgs, %.1f MB in %s: %.0f msgs/s", i+1, o.rawRuns, msgs, float64(bytes)/1e6, el.Round(time.Millisecond), rate)
	}
	guarded(c, 10*time.Second, func() error { return c.Logout().Wait() })
	c.Close()

	// The daemon's run. Peak RSS is reset so that VmHWM covers it alone.
	r.hwmBefore, _ = procStatus("VmHWM")
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		progress("backlog: cannot reset VmHWM (%v); the peak covers the whole process", err)
	}
	coll, err := startCollector(n)
	if err != nil {
		return err
	}
	defer coll.close()
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
	selfBefore, dcBefore, sysBefore := cpuSelf(), dc.cpuTicks(), readProcStat()
	start := time.Now()
	l, err := startLoop(ctx, loopConfig{imapAddr: dc.addr(), smtpAddr: coll.srv.Addr, dbPath: dbPath,
		sentMailbox: o.sent, tick: o.backlogTick, log: log})
	if err != nil {
		return err
	}
	stopped := false
	defer func() {
		if !stopped {
			l.stop()
		}
	}()
	progress("backlog: daemon started on %d waiting notices", n)
	// Intake ends when every notice is stored and moved out of INBOX. A
	// connection of its own polls INBOX's count with STATUS until it is 0.
	moved := watchInboxEmpty(ctx, dc.addr(), start)

	deadline := time.NewTimer(o.backlogTimeout)
	defer deadline.Stop()
	poll := time.NewTicker(25 * time.Millisecond)
	defer poll.Stop()
	report := time.NewTicker(10 * time.Second)
	defer report.Stop()
wait:
	for {
		select {
		case <-coll.full:
			r.backlogComplete = true
			break wait
		case <-deadline.C:
			progress("backlog: gave up after %s", o.backlogTimeout)
			break wait
		case <-ctx.Done():
			return ctx.Err()
		case d := <-moved:
			r.backlogMoved = d
			moved = nil
			progress("backlog: INBOX empty after %s", d.Round(time.Millisecond))
		case <-poll.C:
			if r.backlogStored == 0 && l.counter("abuse_responder_messages_total") >= float64(n) {
				r.backlogStored = time.Since(start)
				progress("backlog: all %d stored after %s", n, r.backlogStored.Round(time.Millisecond))
			}
			if r.backlogFirst == 0 && coll.count() > 0 {
				r.backlogFirst = time.Since(start)
			}
		case <-report.C:
			progress("backlog: %s: %.0f stored, %d summaries", time.Since(start).Round(time.Second),
				l.counter("abuse_responder_messages_total"), coll.count())
		}
	}
	if moved != nil {
		select {
		case r.backlogMoved = <-moved:
		case <-time.After(time.Second):
		}
	}
	end := time.Now()
	if r.backlogComplete {
		end = coll.lastArrival()
	}
	r.backlogDone = end.Sub(start)
	r.backlogGot = coll.count()
	if r.backlogStored == 0 && l.counter("abuse_responder_messages_total") >= float64(n) {
		r.backlogStored = time.Since(start)
	}
	if r.backlogFirst == 0 && r.backlogGot > 0 {
		r.backlogFirst = time.Since(start)
	}
	r.cpuSelf = cpuSelf() - selfBefore
	r.cpuDovecot = time.Duration(dc.cpuTicks()-dcBefore) * time.Second / 100
	r.sysBusy, r.sysIO = readProcStat().since(sysBefore)
	r.hwmBacklog, _ = procStatus("VmHWM")
	if o.cpuProfile != "" {
		pprof.StopCPUProfile()
	}
	if r.states, err = l.caseStates(ctx); err != nil {
		return err
	}
	r.smtpTotal += coll.total.Load()
	r.smtpUnmatched += coll.unmatched.Load()
	if r.backlogComplete {
		if err := l.waitSent(ctx, n); err != nil {
			return err
		}
	}
	stopped = true
	if err := l.stop(); err != nil {
		return err
	}
	progress("backlog: %d summaries in %s; cases by state %v", r.backlogGot, r.backlogDone.Round(time.Millisecond), r.states)
	return nil
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// procStatus reads one "kB" field of /proc/self/status.
func procStatus(key string) (int64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			var kb int64
			_, err := fmt.Sscanf(strings.TrimSpace(v), "%d kB", &kb)
			return kb, err
		}
	}
	return 0, errors.New(key + " not in /proc/self/status")
}

func cpuSelf() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// procStat is the machine-wide "cpu" line of /proc/stat.
type procStat struct{ total, idle, iowait int64 }

func readProcStat() procStat {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return procStat{}
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var s procStat
	for i, v := range f[1:] {
		var x int64
		fmt.Sscan(v, &x)
		if i < 8 { // user nice system idle iowait irq softirq steal
			s.total += x
		}
		switch i {
		case 3:
			s.idle = x
		case 4:
			s.iowait = x
		}
	}
	return s
}

// since returns the share of all cores that was busy, and in iowait.
func (s procStat) since(before procStat) (busy, iowait float64) {
	dt := float64(s.total - before.total)
	if dt <= 0 {
		return 0, 0
	}
	idle := float64(s.idle-before.idle) + float64(s.iowait-before.iowait)
	return 1 - idle/dt, float64(s.iowait-before.iowait) / dt
}

func machine(storeDir string) []string {
	model := "unknown CPU"
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				model = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	kernel, _ := os.ReadFile("/proc/sys/kernel/osrelease")
	dv, _ := exec.Command("dovecot", "--version").Output()
	fs := "?"
	var st syscall.Statfs_t
	if err := syscall.Statfs(storeDir, &st); err == nil || syscall.Statfs(filepath.Dir(storeDir), &st) == nil {
		switch st.Type {
		case 0xEF53:
			fs = "ext4"
		case 0x01021994:
			fs = "tmpfs"
		case 0x58465342:
			fs = "xfs"
		case 0x794c7630:
			fs = "overlayfs"
		default:
			fs = fmt.Sprintf("fs magic %#x", st.Type)
		}
	}
	return []string{
		fmt.Sprintf("%s, %d cores, Linux %s", model, runtime.NumCPU(), strings.TrimSpace(string(kernel))),
		fmt.Sprintf("%s, Dovecot %s", runtime.Version(), strings.TrimSpace(string(dv))),
		fmt.Sprintf("stores on %s", fs),
	}
}

func sortedPct(d []time.Duration, p float64) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return pct(s, p)
}

// pct returns the nearest-rank percentile p (0..1) of sorted d.
func pct(d []time.Duration, p float64) time.Duration {
	i := int(math.Ceil(p*float64(len(d)))) - 1
	return d[max(0, min(i, len(d)-1))]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d)/float64(time.Millisecond)) }

func printResults(w *os.File, o options, r *results) {
	p := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
	p("")
	p("Machine: %s; %s; %s.", r.machine[0], r.machine[1], r.machine[2])
	p("Daemon: report-only, IDLE on, poll 60s, SentMailbox %q, Tick %s (latency run) / %s (backlog run); notices from %s.", o.sent, o.tick, o.backlogTick, o.notice)
	p("")
	p("| measure | value |")
	p("|---|---|")
	if len(r.latency) > 0 {
		lat := slices.Clone(r.latency)
		slices.Sort(lat)
		app := slices.Clone(r.appendRTT)
		slices.Sort(app)
		var sum time.Duration
		for _, d := range lat {
			sum += d
		}
		p("| latency, notice APPENDed → summary at SMTP, n=%d: p50 | %s |", len(lat), ms(pct(lat, .50)))
		p("| latency p99 | %s |", ms(pct(lat, .99)))
		p("| latency max | %s |", ms(lat[len(lat)-1]))
		p("| latency min / mean | %s / %s |", ms(lat[0]), ms(sum/time.Duration(len(lat))))
		p("| of which IMAP APPEND round trip, p50 | %s |", ms(pct(app, .50)))
		if len(r.probe) > 0 {
			p("| bare Dovecot IDLE, APPEND → EXISTS (no daemon), n=%d: p50 / max | %s / %s |", len(r.probe), ms(sortedPct(r.probe, .5)), ms(sortedPct(r.probe, 1)))
		}
		p("| of which stored → summary queued (daemon metric), mean | %s |", ms(r.queueMean))
	}
	if r.backlogN > 0 {
		rates := slices.Clone(r.rawRates)
		slices.Sort(rates)
		raw := rates[len(rates)/2]
		got := r.backlogGot
		rate := float64(got) / r.backlogDone.Seconds()
		done := "all"
		if !r.backlogComplete {
			done = fmt.Sprintf("ONLY %d of", got)
		}
		rs := make([]string, len(r.rawRates))
		for i, x := range r.rawRates {
			rs[i] = fmt.Sprintf("%.0f", x)
		}
		p("| **raw `UID FETCH 1:* BODY.PEEK[]`**, median of %d (%s) | **%.0f msgs/s** (%.1f MB/s) |", len(rates), strings.Join(rs, ", "), raw, raw*float64(r.rawBytes)/float64(r.backlogN)/1e6)
		if ingest := max(r.backlogStored, r.backlogMoved); r.backlogStored > 0 && r.backlogMoved > 0 {
			irate := float64(r.backlogN) / ingest.Seconds()
			p("| backlog intake: all %d stored / INBOX empty (moved to Processed) after | %.2f s / %.2f s |", r.backlogN, r.backlogStored.Seconds(), r.backlogMoved.Seconds())
			p("| **ingest rate** (fetched, committed and moved) | **%.0f notices/s**: %.3g of raw (goal ≥ 0.5) |", irate, irate/raw)
		} else {
			p("| backlog intake: stored after / INBOX empty after | %.1f s / %.1f s (INCOMPLETE) |", r.backlogStored.Seconds(), r.backlogMoved.Seconds())
		}
		p("| backlog: %s %d summaries at the SMTP listener after / first after | %.1f s / %.2f s |", done, r.backlogN, r.backlogDone.Seconds(), r.backlogFirst.Seconds())
		p("| **end-to-end rate** (summaries at SMTP) | **%.1f notices/s**: %.3g of raw (raw is %.0f× faster) |", rate, rate/raw, raw/rate)
		p("| backlog: maildir write / Dovecot sync of new/ | %.2f s / %.2f s |", r.dropTime.Seconds(), r.syncTime.Seconds())
		p("| backlog: CPU of this process / of Dovecot | %.1f s / %.1f s (%.0f%% / %.0f%% of one core) |", r.cpuSelf.Seconds(), r.cpuDovecot.Seconds(),
			100*r.cpuSelf.Seconds()/r.backlogDone.Seconds(), 100*r.cpuDovecot.Seconds()/r.backlogDone.Seconds())
		p("| backlog: machine CPU busy / iowait (all cores) | %.0f%% / %.0f%% |", 100*r.sysBusy, 100*r.sysIO)
		p("| **peak RSS (VmHWM at the end)** | **%.1f MB** |", float64(r.hwmEnd)/1024)
		p("| peak RSS during the backlog run alone (VmHWM reset before) / before it | %.1f MB / %.1f MB |", float64(r.hwmBacklog)/1024, float64(r.hwmBefore)/1024)
		p("| cases by state after the backlog | %s |", formatStates(r.states))
	}
	p("| daemon warnings+errors logged / SMTP mails without a case ID | %d / %d |", r.warnings, r.smtpUnmatched)
}

func formatStates(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s %d", k, m[k]))
	}
	return strings.Join(parts, ", ")
}
