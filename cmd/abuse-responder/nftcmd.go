package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/abuse-responder/abuse-responder/config"
	"github.com/abuse-responder/abuse-responder/internal/awsconf"
	"github.com/abuse-responder/abuse-responder/remediate/nft"
	"github.com/abuse-responder/abuse-responder/remediate/nftssm"
)

// nftLocalOptions are the host backend's options for `nft`: the
// defaults, proving a block with a real connect. A test points them at a
// network namespace of its own and a lock file in its temporary
// directory; nothing on the command line or stdin can change them.
var nftLocalOptions = nft.Options{VerifyConnect: true}

// cmdNft is the instance's half of nftables through SSM: the daemon
// (remediate/nftssm) sends `nft apply|verify|undo -` with one JSON
// request on stdin, and reads the host backend's Change or Check as one
// line of JSON on stdout.
func cmdNft(e *env, args []string) int {
	fs := newFlagSet(e, "nft", "apply|verify|undo -",
		"Apply, verify or undo one nftables block on this host, in table inet "+nft.DefaultTable+", as the daemon\n"+
			"asks through SSM Run Command. Reads one JSON request on stdin: {\"action\":…,\"dry_run\":false} for\n"+
			"apply and verify, {\"change\":…} for undo. Prints the Change (apply) or the Check (verify) as one\n"+
			"JSON line. A request that is not exactly that, or names a target that is never blocked, exits 1.")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	op := fs.Arg(0)
	if fs.NArg() != 2 || fs.Arg(1) != "-" || (op != nftssm.OpApply && op != nftssm.OpVerify && op != nftssm.OpUndo) {
		fs.Usage()
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintf(e.stderr, "nft %s: %v\n", op, err)
		return exitRuntime
	}
	// One byte more than allowed, so that an oversize request is seen
	// as such rather than cut into valid-looking JSON.
	data, err := io.ReadAll(io.LimitReader(e.stdin, nftssm.MaxRequestBytes+1))
	if err != nil {
		return fail(fmt.Errorf("read stdin: %w", err))
	}
	req, err := nftssm.ParseRequest(op, data)
	if err != nil {
		return fail(err)
	}
	b, err := nft.New(nftLocalOptions)
	if err != nil {
		return fail(err)
	}
	defer b.Close()
	var out any
	switch op {
	case nftssm.OpApply:
		out, err = b.Apply(e.ctx, *req.Action, req.DryRun)
	case nftssm.OpVerify:
		out, err = b.Verify(e.ctx, *req.Action)
	case nftssm.OpUndo:
		out, err = struct{}{}, b.Undo(e.ctx, *req.Change)
	}
	if err != nil {
		return fail(err)
	}
	line, err := json.Marshal(out)
	if err != nil {
		return fail(fmt.Errorf("encode answer: %w", err))
	}
	fmt.Fprintf(e.stdout, "%s\n", line)
	return exitOK
}

// newNftSSM is the nftables backend that blocks on the implicated
// instance through SSM, in every configured account and region.
func newNftSSM(cfg *config.Config, accts *awsconf.Accounts) (*nftssm.Backend, error) {
	if len(cfg.AWS.Accounts) == 0 {
		return nil, errors.New(`remediate.nftables_on = "instance" needs [[aws.accounts]]`)
	}
	return nftssm.New(nftssm.Options{AWS: accts, Regions: cfg.AWS.Regions, Binary: cfg.Analyze.RemoteBinary})
}
