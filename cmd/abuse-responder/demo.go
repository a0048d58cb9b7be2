package main

import (
	"bytes"
	"context"
	"crypto/rand"
	_ "embed"
	"fmt"
	"io"
	"log/slog"
	netmail "net/mail"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	gomail "github.com/emersion/go-message/mail"

	"github.com/abuse-responder/abuse-responder/daemon"
	"github.com/abuse-responder/abuse-responder/internal/ec2emu"
	"github.com/abuse-responder/abuse-responder/internal/embedded"
	"github.com/abuse-responder/abuse-responder/mail"
	"github.com/abuse-responder/abuse-responder/mail/approval"
	"github.com/abuse-responder/abuse-responder/store"
)

// demoNotice is a port-scanning notice in AWS's current template, with
// documentation addresses only.
//
//go:embed demodata/notice.eml
var demoNotice []byte

const (
	demoMX       = "mx.demo.example"
	demoMailbox  = "abuse@demo.example"
	demoApprover = "alice@demo.example"
)

// cmdDemo runs the whole loop in one process on embedded servers:
// go-imap's in-memory IMAP server, an SMTP listener that prints what it
// receives, an in-process EC2 emulator (demoaws.go), a built-in notice,
// and a simulated approver who replies "confirm". The daemon, watcher,
// store, mail code, analysis and NACL remediation are the real ones.
func cmdDemo(e *env, args []string) int {
	fs := newFlagSet(e, "demo", "[--verbose]",
		"Run the whole loop on embedded servers and an in-process EC2 emulator with a built-in AWS notice:\n"+
			"no accounts needed. It prints the network ACL before and after the block, the summary the admins\n"+
			"get, the reply AWS gets, the blocks, and the ACL restored by an unblock, then exits.")
	verbose := fs.Bool("verbose", false, "print the daemon's log")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if err := runDemo(e, *verbose); err != nil {
		fmt.Fprintf(e.stderr, "demo: %v\n", err)
		return exitRuntime
	}
	return exitOK
}

func runDemo(e *env, verbose bool) error {
	ctx, cancel := context.WithTimeout(e.ctx, 30*time.Second)
	defer cancel()
	say := func(format string, a ...any) { fmt.Fprintf(e.stdout, format+"\n", a...) }

	imapSrv, err := embedded.StartIMAP(demoMailbox, "demo-password", "Processed", "Sent")
	if err != nil {
		return fmt.Errorf("start the IMAP server: %w", err)
	}
	defer imapSrv.Close()
	smtpSrv, err := embedded.StartSMTP()
	if err != nil {
		return fmt.Errorf("start the SMTP listener: %w", err)
	}
	defer smtpSrv.Close()
	// Deferred before the daemon starts, so closed after it stopped: the
	// daemon's AWS clients read the environment this restores.
	aws, err := startDemoAWS()
	if err != nil {
		return err
	}
	defer aws.Close()
	aclBefore := aws.ACL()
	dir, err := os.MkdirTemp("", "abuse-responder-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	st, err := store.Open(ctx, filepath.Join(dir, "state.db"))
	if err != nil {
		return err
	}
	defer st.Close()

	an, err := demoAnalyzer(filepath.Join(dir, "host"), aws.URL())
	if err != nil {
		return fmt.Errorf("build the demo host: %w", err)
	}
	logOut := io.Discard
	if verbose {
		logOut = e.stderr
	}
	log := slog.New(slog.NewTextHandler(logOut, nil))
	// The remediation stage is wired as `run` wires it from a config file
	// (wire.go): the same engine, store records and EC2 backend.
	cfg := aws.config()
	rem, err := newRemediation(ctx, cfg, st, log.With("component", "remediate"))
	if err != nil {
		return fmt.Errorf("remediation: %w", err)
	}
	defer rem.Close()
	key := make([]byte, 32)
	rand.Read(key)
	imapCfg := mail.IMAPConfig{Address: imapSrv.Addr, TLS: "none", Username: demoMailbox, Password: "demo-password",
		Auth: "login", Mailbox: "INBOX", ProcessedMailbox: "Processed", PollInterval: time.Second, IDLE: true}
	from := &netmail.Address{Name: "Abuse desk", Address: demoMailbox}
	d, err := daemon.New(daemon.Config{
		Mode: daemon.Mode(cfg.Remediate.Mode), Blocker: rem,
		Senders:  []string{"trustandsafety@support.aws.com", "ec2-abuse@amazon.com"},
		Accounts: []string{demoAccount}, RequireAuthenticatedNotice: true, AuthservID: demoMX,
		Approval: approval.Policy{Approvers: []string{demoApprover}, AuthservID: demoMX, RequireAuth: true,
			OwnAddresses: []string{demoMailbox}},
		From: from, SummaryTo: []*netmail.Address{{Name: "Ops", Address: "ops@demo.example"}}, ReplyTo: from,
		Hostname: "demo.example", TokenTTL: time.Hour, Reminders: []time.Duration{8 * time.Hour, 2 * time.Hour},
		Contact: "Demo Ops, +1 555 0100", SentMailbox: "Sent", IMAP: imapCfg, Tick: 200 * time.Millisecond,
	}, st, mail.NewSender(mail.SMTPConfig{Address: smtpSrv.Addr, TLS: "none", Timeout: 10 * time.Second}),
		approval.NewSigner(key), an, nil, log)
	if err != nil {
		return err
	}
	w := mail.NewBatchWatcher(imapCfg, st, d.DeliverBatch, log)
	runCtx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan struct{}, 2)
	go func() { d.Run(runCtx); done <- struct{}{} }()
	go func() { w.Run(runCtx); done <- struct{}{} }()
	// The daemon is stopped before the unblock step, so that nothing of
	// its own runs while the blocks are lifted by hand.
	stopDaemon := sync.OnceFunc(func() { stop(); <-done; <-done })
	defer stopDaemon()

	say("== abuse-responder demo: embedded IMAP server %s, SMTP listener %s", imapSrv.Addr, smtpSrv.Addr)
	say("   mode %s, actions %v, network ACL rules %d-%d", cfg.Remediate.Mode, cfg.Remediate.Actions,
		demoRuleBand[0], demoRuleBand[1])
	say("   EC2, CloudWatch Logs and STS: an IN-PROCESS EMULATOR at %s (internal/ec2emu), seeded with", aws.URL())
	say("   the notice's instance %s in account %s, %s; no AWS account is touched", demoInstance, demoAccount, demoRegion)
	say("   host evidence is read from a demo tree in %s, not from this machine", filepath.Join(dir, "host"))
	say("\n== 0. The emulator's network ACL %s of %s before the notice (egress rules):\n", demoACL, demoSubnet)
	printACL(e.stdout, aclBefore)

	say("\n== 1. AWS's notice arrives in the watched mailbox (built-in sample; our MX's Authentication-Results is simulated)")
	if err := imapSrv.Deliver(withAuthResults(redate(demoNotice), "dmarc=pass header.from=support.aws.com")); err != nil {
		return fmt.Errorf("deliver the notice: %w", err)
	}
	summary, err := smtpSrv.Wait(ctx)
	if err != nil {
		return fmt.Errorf("waiting for the summary: %w", err)
	}
	say("\n== 2. The daemon analysed the notice, blocked and verified, then the admins get this summary (SMTP to %s):\n",
		strings.Join(summary.To, ", "))
	printMail(e.stdout, summary.Raw)
	say("\n== 2b. The emulator's network ACL %s after the block (egress rules):\n", demoACL)
	printACL(e.stdout, aws.ACL())

	msgID := headerOf(summary.Raw, "Message-Id")
	say("\n== 3. SIMULATED APPROVER %s replies \"confirm\" to %s", demoApprover, msgID)
	if err := imapSrv.Deliver(approverReply(msgID)); err != nil {
		return fmt.Errorf("deliver the approval: %w", err)
	}
	var reply embedded.Mail
	for !slices.Contains(reply.To, "trustandsafety@support.aws.com") {
		if reply, err = smtpSrv.Wait(ctx); err != nil {
			return fmt.Errorf("waiting for the reply to AWS: %w", err)
		}
	}
	say("\n== 4. AWS gets this reply (SMTP to %s), threaded on the notice:\n", strings.Join(reply.To, ", "))
	printMail(e.stdout, reply.Raw)

	// Wait for the case loop to close the case, then show its record.
	for ctx.Err() == nil {
		var state string
		st.View(ctx, func(tx *store.Tx) error {
			c, _, err := tx.Case(demoCaseID)
			state = string(c.State)
			return err
		})
		if state == "closed" {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	say("\n== 5. The case record (abuse-responder cases show %s):\n", demoCaseID)
	if err := showCase(e, st, demoCaseID, false); err != nil {
		return err
	}
	stopDaemon()

	say("\n== 6. The blocks in place (abuse-responder blocks):\n")
	blocks, err := rem.engine.Active(ctx)
	if err != nil {
		return fmt.Errorf("list the blocks: %w", err)
	}
	printBlocks(e.stdout, blocks)

	// The case is closed and the instance cleaned; lifting the block is an
	// admin's decision (or the expiry's, once flow logs show the abuse
	// stopped). The demo lifts it to show the ACL restored.
	say("\n== 7. An admin lifts the block (abuse-responder unblock %s):\n", demoCaseID)
	res, err := rem.engine.Unblock(ctx, demoCaseID)
	for _, l := range res.Lines() {
		say("%s", l)
	}
	if err != nil {
		return fmt.Errorf("unblock: %w", err)
	}
	if err := res.Err(); err != nil {
		return fmt.Errorf("unblock: %w", err)
	}
	aclAfter := aws.ACL()
	say("\n   The emulator's network ACL %s after the unblock (egress rules):\n", demoACL)
	printACL(e.stdout, aclAfter)
	if sameACL(aclAfter, aclBefore) {
		say("\n   The ACL is back to its state before the block.")
	} else {
		say("\n   THE ACL DIFFERS FROM ITS STATE BEFORE THE BLOCK.")
	}

	say("\n== The analysis read the demo host tree (%s: a web root with one infected script, an access log)", filepath.Join(dir, "host"))
	say("   and the emulated account: the instance, its ENI, network ACL and security group, and its VPC flow log.")
	say("   Every EC2 call went to the in-process emulator at %s; no AWS account was touched.", aws.URL())
	return nil
}

// sameACL reports whether two ACLs hold the same entries, in any order.
func sameACL(a, b []ec2emu.ACLEntry) bool {
	key := func(x, y ec2emu.ACLEntry) int {
		return strings.Compare(fmt.Sprintf("%v %05d %+v", x.Egress, x.RuleNumber, x), fmt.Sprintf("%v %05d %+v", y.Egress, y.RuleNumber, y))
	}
	a, b = slices.Clone(a), slices.Clone(b)
	slices.SortFunc(a, key)
	slices.SortFunc(b, key)
	return slices.Equal(a, b)
}

// redate gives the built-in notice today's date, so that its 24-hour
// reply deadline lies ahead as it would for a fresh notice.
func redate(raw []byte) []byte {
	lines := strings.SplitAfter(string(raw), "\n")
	for i, l := range lines {
		if strings.HasPrefix(l, "Date: ") {
			lines[i] = "Date: " + time.Now().UTC().Format(time.RFC1123Z) + "\n"
			break
		}
	}
	return []byte(strings.Join(lines, ""))
}

// printMail shows the headers a person looks at and the decoded body.
func printMail(w io.Writer, raw []byte) {
	m, err := gomail.CreateReader(bytes.NewReader(raw))
	if err != nil {
		w.Write(raw)
		return
	}
	for _, k := range []string{"From", "To", "Subject", "Message-Id", "In-Reply-To", "References", "Auto-Submitted"} {
		if v := m.Header.Get(k); v != "" {
			fmt.Fprintf(w, "%s: %s\n", k, v)
		}
	}
	fmt.Fprintln(w)
	for {
		p, err := m.NextPart()
		if err != nil {
			return
		}
		if _, ok := p.Header.(*gomail.InlineHeader); ok {
			io.Copy(w, p.Body)
		}
	}
}

// withAuthResults prepends the header our own MX would add.
func withAuthResults(raw []byte, result string) []byte {
	return append([]byte("Authentication-Results: "+demoMX+"; "+result+"\r\n"), raw...)
}

func headerOf(raw []byte, key string) string {
	m, err := netmail.ReadMessage(bytes.NewReader(raw))
	if err != nil {
		return ""
	}
	return m.Header.Get(key)
}

// approverReply is what Alice's mail client sends when she answers the
// summary: "confirm", a note, and the quoted summary below.
func approverReply(summaryID string) []byte {
	return withAuthResults([]byte(strings.Join([]string{
		"From: Alice <" + demoApprover + ">",
		"To: " + demoMailbox,
		"Subject: Re: [abuse-responder] Case 13051177201-1",
		"Date: " + time.Now().UTC().Format(time.RFC1123Z),
		"Message-ID: <approval-1@demo.example>",
		"In-Reply-To: " + summaryID,
		"References: " + summaryID,
		"Content-Type: text/plain; charset=utf-8",
		"",
		"confirm",
		"We found a compromised WordPress plugin that ran the scans; it is removed",
		"and the instance was rebuilt from a clean image.",
		"",
		"On Tue, Alice wrote:",
		"> (the summary, quoted)",
		"",
	}, "\r\n")), "dkim=pass header.d=demo.example; dmarc=pass header.from=demo.example")
}
