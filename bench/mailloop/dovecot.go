package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/abuse-responder/abuse-responder/internal/embedded"
)

// dovecot is internal/embedded's Dovecot with what the benchmark adds:
// a bulk drop into the Maildir and CPU accounting of its process group.
type dovecot struct {
	*embedded.Dovecot
	maildir string
}

const (
	benchUser     = "abuse@bench.example"
	benchPassword = "bench-secret"
)

// startDovecot runs Dovecot with its config, state and Maildir under dir.
func startDovecot(dir string) (*dovecot, error) {
	d, err := embedded.StartDovecot(dir, benchUser, benchPassword, "Processed", "Sent")
	if err != nil {
		return nil, err
	}
	return &dovecot{Dovecot: d, maildir: filepath.Join(dir, "mail", benchUser, "Maildir")}, nil
}

func (d *dovecot) addr() string    { return d.Addr }
func (d *dovecot) stop()           { d.Stop() }
func (d *dovecot) logTail() string { return d.LogTail() }

// dropInMaildir writes msgs straight into INBOX's Maildir new/, as a local
// delivery agent would leave them. Dovecot picks them up at its next sync
// of INBOX (a SELECT or STATUS).
func (d *dovecot) dropInMaildir(msgs func(i int) []byte, n int) error {
	for i := range n {
		if err := d.DropInMaildir(msgs(i)); err != nil {
			return err
		}
	}
	return nil
}

// cpuTicks sums user and system time (with reaped children) over every
// process in Dovecot's process group, in clock ticks. Processes that
// exited were reaped by the master, so their time is in its cutime/cstime.
func (d *dovecot) cpuTicks() int64 {
	pgid := d.PID()
	if pgid == 0 {
		return 0
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	var total int64
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// Fields after the command name, which is in parentheses.
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		// f[0]=state f[1]=ppid f[2]=pgrp ... f[11]=utime f[12]=stime f[13]=cutime f[14]=cstime
		if len(f) < 15 {
			continue
		}
		if pg, _ := strconv.Atoi(f[2]); pg != pgid {
			continue
		}
		for _, k := range f[11:15] {
			v, _ := strconv.ParseInt(k, 10, 64)
			total += v
		}
	}
	return total
}
