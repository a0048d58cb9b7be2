// Command logscan generates test data for, and measures, the host evidence
// scan of analyze/host. bench/logscan.sh runs it and compares with grep.
//
//	logscan -gen-log FILE -size 1073741824     # a combined-format access log
//	logscan -gen-root DIR -files 100000         # a WordPress-like web root
//	logscan -scan FILE [-webroot DIR] [-window] # Collect with AccessLogs (and the root for flagged scripts)
//	logscan -scan-root DIR                      # Collect with WebRoots only
//
// Each mode prints one line of key=value pairs for the script to read.
package main

import (
	"context"
	"flag"
	"fmt"
	"net/netip"
	"os"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/abuse-responder/abuse-responder/analyze/host"
)

const target = "203.0.113.44"

// The generated log spans this day; the abuse window is 20:00–22:00 UTC.
var (
	day     = time.Date(2026, 4, 20, 0, 0, 0, 0, time.UTC)
	winFrom = time.Date(2026, 4, 20, 20, 0, 0, 0, time.UTC)
	winTo   = time.Date(2026, 4, 20, 22, 0, 0, 0, time.UTC)
)

func main() {
	os.Exit(run())
}

func run() int {
	genLogPath := flag.String("gen-log", "", "write a generated access log to `FILE`")
	size := flag.Int64("size", 1<<30, "size of the generated log in bytes")
	nSpecial := flag.Int("special", 24, "lines with the target, and requests to the flagged script, each")
	genRootDir := flag.String("gen-root", "", "write a generated web root into `DIR`")
	files := flag.Int("files", 100_000, "files in the generated web root")
	scan := flag.String("scan", "", "scan the access log `FILE` with host.Collect")
	webroot := flag.String("webroot", "", "web root whose flagged scripts the -scan looks for")
	window := flag.Bool("window", false, "with -scan: the abuse window 20:00–22:00 instead of the whole day")
	scanRoot := flag.String("scan-root", "", "scan the web root `DIR` with host.Collect")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the run to `FILE`")
	flag.Parse()

	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "logscan:", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintln(os.Stderr, "logscan:", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}

	ctx := context.Background()
	switch {
	case *genLogPath != "":
		c, err := genLog(*genLogPath, *size, day, winFrom, winTo, target, *nSpecial)
		if err != nil {
			fmt.Fprintln(os.Stderr, "logscan:", err)
			return 1
		}
		fmt.Printf("target_lines=%d target_in_window=%d script_lines=%d script_in_window=%d\n", c.target, c.targetIn, c.script, c.scriptIn)
	case *genRootDir != "":
		n, err := genRoot(*genRootDir, *files)
		if err != nil {
			fmt.Fprintln(os.Stderr, "logscan:", err)
			return 1
		}
		fmt.Printf("files=%d infected=%d\n", *files, n)
	case *scan != "":
		o := quiet(host.Options{AccessLogs: []string{*scan}, From: day, To: day.Add(24*time.Hour - time.Second)})
		if *window {
			o.From, o.To = winFrom, winTo
		}
		if *webroot != "" {
			o.WebRoots = []string{*webroot}
		}
		fi, err := os.Stat(*scan)
		if err != nil {
			fmt.Fprintln(os.Stderr, "logscan:", err)
			return 1
		}
		start := time.Now()
		res, err := host.Collect(ctx, o)
		secs := time.Since(start).Seconds()
		if err != nil {
			fmt.Fprintln(os.Stderr, "logscan:", err)
			return 1
		}
		tl, sl := 0, 0
		for _, f := range res.Findings {
			switch {
			case f.Kind == host.KindRequest && strings.Contains(f.Reason, "containing target"):
				tl += f.Count
			case f.Kind == host.KindRequest && strings.Contains(f.Reason, "flagged script"):
				sl += f.Count
			}
		}
		fmt.Printf("target_lines=%d script_lines=%d seconds=%.3f mb_per_s=%.0f peak_rss_mb=%.1f problems=%d\n",
			tl, sl, secs, float64(fi.Size())/1e6/secs, peakRSS(), len(res.Problems))
		for _, p := range res.Problems {
			fmt.Fprintln(os.Stderr, "problem:", p)
		}
	case *scanRoot != "":
		o := quiet(host.Options{WebRoots: []string{*scanRoot}, From: winFrom, To: winTo})
		start := time.Now()
		res, err := host.Collect(ctx, o)
		secs := time.Since(start).Seconds()
		if err != nil {
			fmt.Fprintln(os.Stderr, "logscan:", err)
			return 1
		}
		scripts := 0
		for _, f := range res.Findings {
			if f.Kind == host.KindScript {
				scripts++
			}
		}
		fmt.Printf("scripts=%d findings=%d seconds=%.3f peak_rss_mb=%.1f problems=%d\n", scripts, len(res.Findings), secs, peakRSS(), len(res.Problems))
	default:
		flag.Usage()
		return 2
	}
	return 0
}

// quiet sets the target and turns off the parts of Collect that do not
// depend on the data under test (cron, timers), so the figures measure
// logs and web roots; /proc is still read, as collect always does.
func quiet(o host.Options) host.Options {
	o.Targets = []netip.Addr{netip.MustParseAddr(target)}
	o.CronPaths = []string{}
	o.UnitDirs = []string{}
	return o
}

// peakRSS returns the process's peak resident set size in MB (getrusage's
// maxrss is in KiB on Linux).
func peakRSS() float64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return -1
	}
	return float64(ru.Maxrss) * 1024 / 1e6
}
