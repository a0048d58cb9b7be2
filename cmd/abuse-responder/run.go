package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/abuse-responder/abuse-responder/daemon"
)

func cmdRun(e *env, args []string) int {
	fs := newFlagSet(e, "run", "[--config FILE]",
		"Run the daemon: watch the mailbox, handle notices, send summaries and replies.\n"+
			"Exit 2 on an invalid config (systemd then does not restart it), 1 on a runtime failure.")
	path := fs.String("config", defaultConfig, "config file")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	cfg, err := loadConfig(e, *path)
	if err != nil {
		return exitUsage
	}
	log := newLogger(e.stderr, cfg.Log)
	p, err := wire(e.ctx, cfg, log)
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitRuntime
	}
	defer p.Close()

	notifier := daemon.NewNotifier(e.getenv)
	var once sync.Once
	p.watcher.OnConnect = func() {
		once.Do(func() {
			log.Info("ready: config, store and IMAP login are up")
			notifier.Notify("READY=1")
		})
	}
	p.watcher.OnReconnect = func(error) { p.metrics.IMAPReconnects.Inc() }

	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	start := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && !errors.Is(err, context.Canceled) {
				errs <- fmt.Errorf("%s: %w", name, err)
				cancel()
			}
		}()
	}
	start("daemon", p.daemon.Run)
	start("imap", p.watcher.Run)
	if cfg.Metrics.Listen != "" {
		start("metrics", func(ctx context.Context) error { return serveMetrics(ctx, cfg.Metrics.Listen, p) })
	}
	if iv := daemon.WatchdogInterval(e.getenv); iv > 0 {
		start("watchdog", func(ctx context.Context) error {
			t := time.NewTicker(iv)
			defer t.Stop()
			for {
				select {
				case <-ctx.Done():
					return nil
				case <-t.C:
					notifier.Notify("WATCHDOG=1")
				}
			}
		})
	}
	<-ctx.Done()
	notifier.Notify("STOPPING=1")
	log.Info("stopping")
	wg.Wait()
	select {
	case err := <-errs:
		log.Error("stopped on error", "err", err)
		return exitRuntime
	default:
		return exitOK
	}
}

// serveMetrics serves /metrics until ctx ends.
func serveMetrics(ctx context.Context, addr string, p *parts) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics listen: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(p.metrics.Registry, promhttp.HandlerOpts{}))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		<-ctx.Done()
		shut, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		srv.Shutdown(shut)
	}()
	p.log.Info("metrics listening", "addr", ln.Addr().String())
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
