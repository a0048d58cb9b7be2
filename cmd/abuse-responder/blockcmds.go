package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/analyze"
	"github.com/abuse-responder/abuse-responder/config"
	"github.com/abuse-responder/abuse-responder/store"
)

func cmdPlan(e *env, args []string) int {
	fs := newFlagSet(e, "plan", "[--json] [--config FILE] FILE.eml|CASE",
		"Print what would be blocked for a notice: the targets kept and refused, and the exact API calls\n"+
			"and nft rules. It changes nothing.")
	path := fs.String("config", defaultConfig, "config file")
	asJSON := fs.Bool("json", false, "print the plan as JSON")
	if code, ok := parseOneArg(fs, args); !ok {
		return code
	}
	return withRemediation(e, *path, "plan", func(cfg *config.Config, st *store.Store, r *remediation) error {
		c, an, err := caseFor(e, cfg, st, fs.Arg(0), false)
		if err != nil {
			return err
		}
		p, err := r.Plan(e.ctx, c, an)
		if err != nil {
			return err
		}
		if *asJSON {
			return writeJSON(e, p)
		}
		for _, l := range p.Text() {
			fmt.Fprintln(e.stdout, l)
		}
		return nil
	})
}

func cmdApply(e *env, args []string) int {
	fs := newFlagSet(e, "apply", "[--config FILE] FILE.eml|CASE",
		"Plan, apply and verify the block for a notice by hand, recorded in the store like the daemon's,\n"+
			"under the notice's case ID, so that `unblock CASE` undoes it. Run again, it changes nothing;\n"+
			"run after the blocks were lost (a reboot flushed nftables), it puts them back.")
	path := fs.String("config", defaultConfig, "config file")
	if code, ok := parseOneArg(fs, args); !ok {
		return code
	}
	return withRemediation(e, *path, "apply", func(cfg *config.Config, st *store.Store, r *remediation) error {
		c, an, err := caseFor(e, cfg, st, fs.Arg(0), !cfg.Remediate.DryRun)
		if err != nil {
			return err
		}
		p, err := r.Plan(e.ctx, c, an)
		if err != nil {
			return err
		}
		for _, ref := range p.Refused {
			fmt.Fprintf(e.stdout, "not blocked: %s: %s\n", ref.What, ref.Reason)
		}
		if len(p.Actions) == 0 {
			fmt.Fprintln(e.stdout, "nothing to apply")
			return nil
		}
		res, err := r.Apply(e.ctx, p)
		for _, l := range res.Lines() {
			fmt.Fprintln(e.stdout, l)
		}
		if err != nil {
			return err
		}
		return res.Err()
	})
}

func cmdUnblock(e *env, args []string) int {
	fs := newFlagSet(e, "unblock", "[--config FILE] CASE",
		"Undo every block applied for a case: remove what was added, restore what was replaced.")
	path := fs.String("config", defaultConfig, "config file")
	if code, ok := parseOneArg(fs, args); !ok {
		return code
	}
	return withRemediation(e, *path, "unblock", func(cfg *config.Config, st *store.Store, r *remediation) error {
		res, err := r.engine.Unblock(e.ctx, fs.Arg(0))
		for _, l := range res.Lines() {
			fmt.Fprintln(e.stdout, l)
		}
		if err == nil && len(res.Actions) == 0 {
			fmt.Fprintf(e.stdout, "no active block for case %s\n", fs.Arg(0))
		}
		printKeptSnapshots(e, st, fs.Arg(0))
		if err != nil {
			return err
		}
		return res.Err()
	})
}

func cmdBlocks(e *env, args []string) int {
	fs := newFlagSet(e, "blocks", "[--json] [--config FILE]", "List the blocks in place, with their case, state and expiry.")
	path := fs.String("config", defaultConfig, "config file")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	return withRemediation(e, *path, "blocks", func(cfg *config.Config, st *store.Store, r *remediation) error {
		blocks, err := r.engine.Active(e.ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			out := make([]map[string]any, 0, len(blocks))
			for _, b := range blocks {
				out = append(out, map[string]any{"key": b.Key, "case_id": b.CaseID, "kind": b.Kind, "state": b.State,
					"action": json.RawMessage(b.Action), "check": b.Check, "applied_at": timeOrNil(b.AppliedAt),
					"expires_at": timeOrNil(b.ExpiresAt)})
			}
			return writeJSON(e, out)
		}
		printBlocks(e.stdout, blocks)
		return nil
	})
}

func timeOrNil(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UTC().Format(time.RFC3339)
}

// withRemediation loads the config, opens the store and wires the
// backends for one command; exit 2 on a config problem, 1 on a failure.
func withRemediation(e *env, path, name string, do func(*config.Config, *store.Store, *remediation) error) int {
	cfg, err := loadConfig(e, path)
	if err != nil {
		return exitUsage
	}
	st, err := store.Open(e.ctx, cfg.Store.Path)
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
		return exitRuntime
	}
	defer st.Close()
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r, err := newRemediation(e.ctx, cfg, st, log)
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
		return exitRuntime
	}
	defer r.Close()
	if err := do(cfg, st, r); err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
		return exitRuntime
	}
	return exitOK
}

// caseFor returns the case of arg (a stored case ID, or a notice file
// analysed now) with its analysis. With record, a notice file's case and
// analysis are stored, as the blocks table needs its case.
func caseFor(e *env, cfg *config.Config, st *store.Store, arg string, record bool) (store.Case, *analyze.Analysis, error) {
	if _, err := os.Stat(arg); err != nil {
		return storedCase(e.ctx, st, arg)
	}
	n, err := noticeOf(e, cfg, arg)
	if err != nil {
		return store.Case{}, nil, err
	}
	an := analyze.New(analyzeConfig(cfg), nil).Analyze(e.ctx, n)
	c := store.Case{ID: n.CaseID, State: abuse.StateAnalyzed, AccountID: n.AccountID, Type: n.Type,
		Activity: n.ReportedActivity, Notice: n, NoticeMessageID: n.MessageID}
	if n.ReplyBy != nil {
		c.ReplyBy = *n.ReplyBy
	}
	if !record {
		return c, &an, nil
	}
	err = st.Update(e.ctx, func(tx *store.Tx) error {
		if _, ok, err := tx.Case(c.ID); err != nil || ok {
			return err // a case the daemon or an earlier apply stored is kept as it is
		}
		if err := tx.CreateCase(c, "recorded by the apply command"); err != nil {
			return err
		}
		doc, err := json.Marshal(an)
		if err != nil {
			return err
		}
		return tx.AddAnalysis(store.Analysis{CaseID: c.ID, Verdict: string(an.Verdict), Doc: doc})
	})
	return c, &an, err
}

func storedCase(ctx context.Context, st *store.Store, id string) (store.Case, *analyze.Analysis, error) {
	var (
		c  store.Case
		an *analyze.Analysis
	)
	err := st.View(ctx, func(tx *store.Tx) error {
		var ok bool
		var err error
		c, ok, err = tx.Case(id)
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%s: no such file or case", id)
		}
		rec, ok, err := tx.LatestAnalysis(id)
		if err != nil || !ok {
			return err
		}
		var a analyze.Analysis
		if err := json.Unmarshal(rec.Doc, &a); err != nil {
			return fmt.Errorf("decode the analysis of %s: %w", id, err)
		}
		an = &a
		return nil
	})
	return c, an, err
}

// printKeptSnapshots names the forensic snapshots of a case: unblock
// keeps them, and the admin should know they exist (and cost).
func printKeptSnapshots(e *env, st *store.Store, caseID string) {
	var ids []string
	st.View(e.ctx, func(tx *store.Tx) error {
		blocks, err := tx.Blocks(store.BlockFilter{CaseID: caseID})
		for _, b := range blocks {
			ids = append(ids, snapshotIDs(b.After)...)
		}
		return err
	})
	if len(ids) > 0 {
		fmt.Fprintf(e.stdout, "kept the forensic snapshots %s (evidence: delete them by hand when the case is over)\n", strings.Join(ids, ", "))
	}
}
