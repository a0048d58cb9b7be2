package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"strings"

	"github.com/abuse-responder/abuse-responder/abuse"
	"github.com/abuse-responder/abuse-responder/analyze"
	"github.com/abuse-responder/abuse-responder/config"
	"github.com/abuse-responder/abuse-responder/mail/notice"
	"github.com/abuse-responder/abuse-responder/store"
)

func cmdAnalyze(e *env, args []string) int {
	return hostCommand(e, args, "analyze",
		"Analyse a notice: resolve its resources in EC2, read the report's log lines, the VPC flow logs\n"+
			"and this host's logs, web roots, sockets, processes and crontabs (read only), and give a\n"+
			"verdict and the likely cause. Without a config file it runs on the defaults, without AWS.",
		func(e *env, an *analyze.Analyzer, n abuse.Notice, asJSON bool) error {
			a := an.Analyze(e.ctx, n)
			if asJSON {
				return writeJSON(e, a)
			}
			for _, l := range a.SummaryLines() {
				fmt.Fprintln(e.stdout, l)
			}
			return nil
		})
}

// collectDoc is collect's --help text.
const collectDoc = "Collect host evidence for a notice on this machine, read only: requests in the web and\n" +
	"ModSecurity logs, scripts in the web roots, sockets to the targets, miner and scanner\n" +
	"processes, crontabs and timers. Prints {\"findings\":[…]} with --json.\n" +
	"With --query -, it reads the case's window and targets as one JSON object from stdin instead\n" +
	"of a notice: {\"case_id\",\"from\",\"to\",\"targets\":[{\"ip\",\"port\",\"protocol\"}],\"target_hosts\"}.\n" +
	"That is what analyze runs on the implicated instance through SSM (host_evidence = \"ssm\")."

func cmdCollect(e *env, args []string) int {
	fs := newFlagSet(e, "collect", "[--json] [--config FILE] FILE.eml|CASE  |  --json [--config FILE] --query -", collectDoc)
	path := fs.String("config", defaultConfig, "config file; when the default is missing, the built-in defaults apply")
	asJSON := fs.Bool("json", false, "print JSON")
	query := fs.String("query", "", "\"-\": read a JSON query from stdin instead of a notice")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if *query != "" && *query != "-" {
		fmt.Fprintf(e.stderr, "collect: --query takes only \"-\" (stdin), not %q\n", *query)
		return exitUsage
	}
	if (*query == "" && fs.NArg() != 1) || (*query != "" && fs.NArg() != 0) {
		fs.Usage()
		return exitUsage
	}
	cfg, err := hostConfig(e, *path, explicitFlag(args, "config"))
	if err != nil {
		return exitUsage
	}
	an := analyze.New(analyzeConfig(cfg), slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
	if *query != "" {
		q, err := readQuery(e)
		if err != nil {
			fmt.Fprintf(e.stderr, "collect: --query: %v\n", err)
			return exitRuntime
		}
		// Compact: through SSM the output must fit 24,000 characters.
		if err := json.NewEncoder(e.stdout).Encode(an.CollectQuery(e.ctx, q)); err != nil {
			fmt.Fprintf(e.stderr, "collect: %v\n", err)
			return exitRuntime
		}
		return exitOK
	}
	n, err := noticeOf(e, cfg, fs.Arg(0))
	if err != nil {
		fmt.Fprintf(e.stderr, "collect: %v\n", err)
		return exitRuntime
	}
	h := an.CollectHost(e.ctx, n)
	if *asJSON {
		if err := writeJSON(e, h); err != nil {
			fmt.Fprintf(e.stderr, "collect: %v\n", err)
			return exitRuntime
		}
		return exitOK
	}
	for _, f := range h.Findings {
		where := f.Path
		if f.Line > 0 {
			where = fmt.Sprintf("%s:%d", f.Path, f.Line)
		}
		fmt.Fprintf(e.stdout, "%-8s %s: %s\n", f.Kind, where, f.Reason)
	}
	for _, p := range h.Problems {
		fmt.Fprintf(e.stdout, "problem  %s\n", p)
	}
	if len(h.Findings) == 0 {
		fmt.Fprintln(e.stdout, "no findings")
	}
	return exitOK
}

// readQuery reads one query from stdin, no more than the largest a query
// may be, and decodes it strictly: it is report data, if already checked
// by the sender.
func readQuery(e *env) (analyze.HostQuery, error) {
	if e.stdin == nil {
		return analyze.HostQuery{}, fmt.Errorf("no stdin")
	}
	data, err := io.ReadAll(io.LimitReader(e.stdin, analyze.MaxHostQueryBytes+1))
	if err != nil {
		return analyze.HostQuery{}, fmt.Errorf("read stdin: %w", err)
	}
	return analyze.ParseHostQuery(data)
}

// hostCommand runs a command on a notice: the flags, the config
// (optional: these commands run on hosts that may have none), and the
// notice, from a mail file or a stored case. Only analyze uses it now;
// collect has its own flags for --query.
func hostCommand(e *env, args []string, name, doc string,
	do func(*env, *analyze.Analyzer, abuse.Notice, bool) error) int {
	fs := newFlagSet(e, name, "[--json] [--config FILE] FILE.eml|CASE", doc)
	path := fs.String("config", defaultConfig, "config file; when the default is missing, the built-in defaults apply")
	asJSON := fs.Bool("json", false, "print JSON")
	if code, ok := parseOneArg(fs, args); !ok {
		return code
	}
	cfg, err := hostConfig(e, *path, explicitFlag(args, "config"))
	if err != nil {
		return exitUsage
	}
	n, err := noticeOf(e, cfg, fs.Arg(0))
	if err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
		return exitRuntime
	}
	log := slog.New(slog.NewTextHandler(e.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	if err := do(e, analyze.New(analyzeConfig(cfg), log), n, *asJSON); err != nil {
		fmt.Fprintf(e.stderr, "%s: %v\n", name, err)
		return exitRuntime
	}
	return exitOK
}

// hostConfig loads the config; a missing default file means the defaults,
// while a missing file named with --config is an error.
func hostConfig(e *env, path string, explicit bool) (*config.Config, error) {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && !explicit {
		aws, an := config.Defaults()
		return &config.Config{AWS: aws, Analyze: an}, nil
	}
	return loadConfig(e, path)
}

func explicitFlag(args []string, name string) bool {
	for _, a := range args {
		if a == "--"+name || a == "-"+name || strings.HasPrefix(a, "--"+name+"=") || strings.HasPrefix(a, "-"+name+"=") {
			return true
		}
	}
	return false
}

// noticeOf reads arg as a mail file, or else as a case ID in the store.
func noticeOf(e *env, cfg *config.Config, arg string) (abuse.Notice, error) {
	if _, err := os.Stat(arg); err == nil {
		raw, err := readBounded(arg, int64(notice.DefaultLimits.MaxBytes))
		if err != nil {
			return abuse.Notice{}, err
		}
		res, err := notice.Parse(raw)
		if err != nil {
			return abuse.Notice{}, fmt.Errorf("%s: %w", arg, err)
		}
		if !res.IsNotice {
			return abuse.Notice{}, fmt.Errorf("%s is not an abuse notice: %s", arg, res.Reason)
		}
		return *res.Notice, nil
	}
	if cfg.Store.Path == "" {
		return abuse.Notice{}, fmt.Errorf("%s: no such file, and no [store] to look the case up in", arg)
	}
	st, err := store.Open(e.ctx, cfg.Store.Path)
	if err != nil {
		return abuse.Notice{}, err
	}
	defer st.Close()
	c, _, err := storedCase(e.ctx, st, arg)
	return c.Notice, err
}

// analyzeConfig maps the config file onto the analyzer's options.
func analyzeConfig(cfg *config.Config) analyze.Config {
	c := analyze.Config{
		Regions: cfg.AWS.Regions, EndpointURL: cfg.AWS.EndpointURL,
		FlowLogGroup: cfg.Analyze.FlowLogGroup, WindowMargin: cfg.Analyze.WindowMargin,
		HostMode:   analyze.HostMode(cfg.Analyze.HostEvidence),
		AccessLogs: cfg.Analyze.AccessLogs, ModsecLogs: cfg.Analyze.ModsecLogs, WebRoots: cfg.Analyze.WebRoots,
		RemoteBinary: cfg.Analyze.RemoteBinary,
	}
	for _, a := range cfg.AWS.Accounts {
		c.Accounts = append(c.Accounts, analyze.Account{ID: a.ID, RoleARN: a.RoleARN, ExternalID: a.ExternalID})
	}
	return c
}

func writeJSON(e *env, v any) error {
	enc := json.NewEncoder(e.stdout)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}
