package main

import (
	"encoding/json"
	"fmt"
	"io"

	"github.com/abuse-responder/abuse-responder/config"
	"github.com/abuse-responder/abuse-responder/internal/awsconf"
	"github.com/abuse-responder/abuse-responder/remediate"
	"github.com/abuse-responder/abuse-responder/remediate/probe"
)

// cmdProbe is the instance's half of remediate.verify_from_instance: the
// daemon (remediate/probe) sends `probe --json -` through SSM with one
// JSON request on stdin, and reads the results as one JSON line. It only
// connects and closes: no byte is sent to the target.
func cmdProbe(e *env, args []string) int {
	fs := newFlagSet(e, "probe", "[--json] -",
		"Connect over TCP from this host to each target of one JSON request on stdin, e.g.\n"+
			"  {\"targets\":[{\"ip\":\"203.0.113.5\",\"port\":22,\"protocol\":\"tcp\"}],\"timeout\":\"3s\"}\n"+
			fmt.Sprintf("(1 to %d targets, tcp only, timeout at most %s), and close each connection at once:\n", probe.MaxTargets, probe.MaxTimeout)+
			"nothing is sent. Prints whether each connect succeeded, how it failed and how long it took;\n"+
			"with --json as one line {\"results\":[…]}. The daemon runs it through SSM to prove a block from\n"+
			"the instance. A request that is not exactly that exits 1.")
	asJSON := fs.Bool("json", false, "print the results as one JSON line")
	if code, ok := parseOneArg(fs, args); !ok {
		return code
	}
	if fs.Arg(0) != "-" {
		fs.Usage()
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintf(e.stderr, "probe: %v\n", err)
		return exitRuntime
	}
	// One byte more than allowed, so that an oversize request is seen
	// as such rather than cut into valid-looking JSON.
	data, err := io.ReadAll(io.LimitReader(e.stdin, probe.MaxRequestBytes+1))
	if err != nil {
		return fail(fmt.Errorf("read stdin: %w", err))
	}
	p, err := probe.Parse(data)
	if err != nil {
		return fail(err)
	}
	ans := probe.Connect(e.ctx, p)
	if !*asJSON {
		for _, r := range ans.Results {
			fmt.Fprintln(e.stdout, r)
		}
		return exitOK
	}
	line, err := json.Marshal(ans)
	if err != nil {
		return fail(fmt.Errorf("encode answer: %w", err))
	}
	fmt.Fprintf(e.stdout, "%s\n", line)
	return exitOK
}

// withProbe wraps the EC2 backend in the connect test from the instance
// when remediate.verify_from_instance asks for it.
func withProbe(cfg *config.Config, accts *awsconf.Accounts, b remediate.Backend) (remediate.Backend, error) {
	if !cfg.Remediate.VerifyFromInstance {
		return b, nil
	}
	v, err := probe.Wrap(b, probe.Options{AWS: accts, Binary: cfg.Analyze.RemoteBinary})
	if err != nil {
		return nil, fmt.Errorf("remediate.verify_from_instance: %w", err)
	}
	return v, nil
}
