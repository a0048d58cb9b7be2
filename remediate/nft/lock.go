package nft

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"
)

// lock serialises the read-then-write of Apply and Undo: within the
// process with a one-slot channel, between processes with flock(2) on a
// file. Without it, an Undo that finds the table empty could delete it
// just after another process added an element.
type lock struct {
	path string
	sem  chan struct{}
}

func newLock(path string) *lock {
	return &lock{path: path, sem: make(chan struct{}, 1)}
}

// pollEvery is how often a held file lock is tried again. flock(2) has
// no timeout, so a blocking call could not honour ctx.
const pollEvery = 10 * time.Millisecond

// acquire takes the lock, waiting until ctx is done. It returns the
// function that releases it.
func (l *lock) acquire(ctx context.Context) (func(), error) {
	select {
	case l.sem <- struct{}{}:
	case <-ctx.Done():
		return nil, fmt.Errorf("nft: wait for the lock: %w", ctx.Err())
	}
	f, err := l.open()
	if err != nil {
		<-l.sem
		return nil, err
	}
	release := func() {
		_ = f.Close() // closing drops the flock
		<-l.sem
	}
	t := time.NewTicker(pollEvery)
	defer t.Stop()
	for {
		err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			return release, nil
		}
		if !errors.Is(err, unix.EWOULDBLOCK) && !errors.Is(err, unix.EINTR) {
			release()
			return nil, fmt.Errorf("nft: lock %s: %w", l.path, err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			release()
			return nil, fmt.Errorf("nft: wait for the lock %s: %w", l.path, ctx.Err())
		}
	}
}

// open opens the lock file, creating it and its directory.
func (l *lock) open() (*os.File, error) {
	if err := os.MkdirAll(filepath.Dir(l.path), 0o755); err != nil {
		return nil, fmt.Errorf("nft: lock directory: %w", err)
	}
	f, err := os.OpenFile(l.path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("nft: open lock file: %w", err)
	}
	return f, nil
}
