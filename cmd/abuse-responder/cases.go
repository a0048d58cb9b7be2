package main

import (
	"encoding/json"
	"fmt"
	"os/user"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/abuse-responder/abuse-responder/remediate"
	"github.com/abuse-responder/abuse-responder/store"
)

func cmdCases(e *env, args []string) int {
	fs := newFlagSet(e, "cases", "[--config FILE] [--json] list | show CASE",
		"List the cases in the store, or show one with its notices, transitions, side effects and mail.")
	path := fs.String("config", defaultConfig, "config file")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 || (fs.Arg(0) == "show" && fs.NArg() != 2) || (fs.Arg(0) != "list" && fs.Arg(0) != "show") {
		fs.Usage()
		return exitUsage
	}
	cfg, err := loadConfig(e, *path)
	if err != nil {
		return exitUsage
	}
	st, err := store.Open(e.ctx, cfg.Store.Path)
	if err != nil {
		fmt.Fprintf(e.stderr, "cases: %v\n", err)
		return exitRuntime
	}
	defer st.Close()
	if fs.Arg(0) == "list" {
		err = listCases(e, st, *asJSON)
	} else {
		err = showCase(e, st, fs.Arg(1), *asJSON)
	}
	if err != nil {
		fmt.Fprintf(e.stderr, "cases: %v\n", err)
		return exitRuntime
	}
	return exitOK
}

func listCases(e *env, st *store.Store, asJSON bool) error {
	return st.View(e.ctx, func(tx *store.Tx) error {
		cases, err := tx.Cases(store.CaseFilter{})
		if err != nil {
			return err
		}
		if asJSON {
			enc := json.NewEncoder(e.stdout)
			for _, c := range cases {
				if err := enc.Encode(caseJSON(c)); err != nil {
					return err
				}
			}
			return nil
		}
		w := tabwriter.NewWriter(e.stdout, 2, 4, 2, ' ', 0)
		fmt.Fprintln(w, "CASE\tSTATE\tACCOUNT\tTYPE\tREPLY BY\tURGENT")
		for _, c := range cases {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%v\n", c.ID, c.State, c.AccountID, c.Type, fmtTimeOr(c.ReplyBy, "-"), c.Urgent)
		}
		return w.Flush()
	})
}

func caseJSON(c store.Case) map[string]any {
	return map[string]any{"case_id": c.ID, "state": c.State, "account_id": c.AccountID, "abuse_type": c.Type,
		"reported_activity": c.Activity, "reply_by": fmtTimeOr(c.ReplyBy, ""), "urgent": c.Urgent,
		"approver": c.Approver, "created_at": fmtTimeOr(c.CreatedAt, ""), "updated_at": fmtTimeOr(c.UpdatedAt, "")}
}

func fmtTimeOr(t time.Time, none string) string {
	if t.IsZero() {
		return none
	}
	return t.UTC().Format(time.RFC3339)
}

func showCase(e *env, st *store.Store, id string, asJSON bool) error {
	return st.View(e.ctx, func(tx *store.Tx) error {
		c, ok, err := tx.Case(id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("no case %s", id)
		}
		trans, err := tx.Transitions(id)
		if err != nil {
			return err
		}
		notices, err := tx.Notices(id)
		if err != nil {
			return err
		}
		effects, err := tx.Effects(id)
		if err != nil {
			return err
		}
		out, err := tx.Outbox(id)
		if err != nil {
			return err
		}
		blocks, err := tx.Blocks(store.BlockFilter{CaseID: id})
		if err != nil {
			return err
		}
		if asJSON {
			v := caseJSON(c)
			v["notice"] = c.Notice
			v["transitions"] = trans
			v["effects"] = effects
			var mails []map[string]any
			for _, m := range out {
				mails = append(mails, map[string]any{"key": m.Key, "kind": m.Kind, "message_id": m.MessageID,
					"to": m.To, "status": m.Status, "attempts": m.Attempts, "last_error": m.LastError, "sent_at": fmtTimeOr(m.SentAt, "")})
			}
			v["mail"] = mails
			var bs []map[string]any
			for _, b := range blocks {
				bs = append(bs, map[string]any{"key": b.Key, "kind": b.Kind, "state": b.State, "check": b.Check,
					"applied_at": timeOrNil(b.AppliedAt), "expires_at": timeOrNil(b.ExpiresAt), "removed_at": timeOrNil(b.RemovedAt)})
			}
			v["blocks"] = bs
			v["notices"] = len(notices)
			return json.NewEncoder(e.stdout).Encode(v)
		}
		p := func(format string, a ...any) { fmt.Fprintf(e.stdout, format+"\n", a...) }
		p("case %s: %s", c.ID, c.State)
		p("  account %s, %s (%s), reply by %s, urgent %v", c.AccountID, c.Type, c.Activity, fmtTimeOr(c.ReplyBy, "-"), c.Urgent)
		if c.Approver != "" {
			p("  decided by %s; note: %q", c.Approver, c.AdminNote)
		}
		p("notices:")
		for _, n := range notices {
			p("  %s  %s  message %d  %s", fmtTimeOr(n.At, "-"), n.Stage, n.MessageID, n.Notice.MessageID)
		}
		p("transitions:")
		for _, t := range trans {
			p("  %s  %s → %s  %s", fmtTimeOr(t.At, "-"), orDash(string(t.From)), t.To, t.Reason)
		}
		p("side effects:")
		for _, ef := range effects {
			p("  %s  %s  %s", fmtTimeOr(ef.At, "-"), ef.Key, effectText(ef))
		}
		p("blocks:")
		for _, b := range blocks {
			p("  %s  %-9s %s  %s", fmtTimeOr(b.AppliedAt, "-"), b.State, b.Key, b.Check)
			if ids := snapshotIDs(b.After); len(ids) > 0 {
				p("      forensic snapshots (kept by unblock): %s", strings.Join(ids, ", "))
			}
		}
		p("mail:")
		for _, m := range out {
			p("  %s  %s  %s to %s, attempts %d %s", m.Key, m.Status, m.MessageID, strings.Join(m.To, ","), m.Attempts, m.LastError)
		}
		return nil
	})
}

// snapshotIDs finds the forensic snapshots a block's recorded state names,
// wherever the backend put them in its JSON.
func snapshotIDs(state []byte) []string {
	var v any
	if len(state) == 0 || json.Unmarshal(state, &v) != nil {
		return nil
	}
	var ids []string
	var walk func(any)
	walk = func(v any) {
		switch v := v.(type) {
		case map[string]any:
			if id, ok := v["snapshot_id"].(string); ok {
				ids = append(ids, id)
			}
			for _, x := range v {
				walk(x)
			}
		case []any:
			for _, x := range v {
				walk(x)
			}
		}
	}
	walk(v)
	slices.Sort(ids)
	return slices.Compact(ids)
}

// effectText shortens the JSON records (a plan, a block result) to what a
// person reads in the history; `cases show --json` and `blocks` have the
// whole record.
func effectText(ef store.Effect) string {
	switch ef.Kind {
	case "plan":
		var p remediate.Plan
		if json.Unmarshal([]byte(ef.Detail), &p) == nil {
			return fmt.Sprintf("plan %s: %d actions, %d refused", p.Hash, len(p.Actions), len(p.Refused))
		}
	case "blocks":
		var r remediate.Result
		if json.Unmarshal([]byte(ef.Detail), &r) == nil {
			return fmt.Sprintf("block result: %d actions, verified %v", len(r.Actions), r.Verified())
		}
	}
	return ef.Detail
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// cmdDecide is approve and reject: the same rules as a reply by mail
// (the case waits for approval; a decision is used once), recorded as
// coming from the shell and the local user.
func cmdDecide(name, verb string) func(*env, []string) int {
	return func(e *env, args []string) int {
		fs := newFlagSet(e, name, "[--config FILE] [--note TEXT] CASE",
			"Record a "+verb+" for a case from the shell, as an approver's reply would.")
		path := fs.String("config", defaultConfig, "config file")
		note := fs.String("note", "", "the admins' note for the reply to AWS")
		if code, ok := parseFlags(fs, args); !ok {
			return code
		}
		if fs.NArg() != 1 {
			fs.Usage()
			return exitUsage
		}
		cfg, err := loadConfig(e, *path)
		if err != nil {
			return exitUsage
		}
		p, err := wire(e.ctx, cfg, newLogger(e.stderr, cfg.Log))
		if err != nil {
			fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
			return exitRuntime
		}
		defer p.Close()
		who := "shell"
		if u, err := user.Current(); err == nil {
			who = "shell:" + u.Username
		}
		if err := p.daemon.Decide(e.ctx, fs.Arg(0), verb, who, *note); err != nil {
			fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
			return exitRuntime
		}
		fmt.Fprintf(e.stdout, "case %s: %s recorded; the running daemon sends what follows\n", fs.Arg(0), verb)
		return exitOK
	}
}
