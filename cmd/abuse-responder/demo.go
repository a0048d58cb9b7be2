package main

import (
	_ "embed"
	"fmt"

	"github.com/abuse-responder/abuse-responder/mail/notice"
)

// demoNotice is a port-scanning notice in AWS's current template, with
// documentation addresses only.
//
//go:embed demodata/notice.eml
var demoNotice []byte

// cmdDemo runs the pipeline on embedded data, with no accounts. Today that
// pipeline is the parser and validation; each later stage joins the demo
// as it is built, and the demo says what it does not do yet.
func cmdDemo(e *env, args []string) int {
	fs := newFlagSet(e, "demo", "",
		"Run the pipeline on a built-in AWS notice, with no accounts or servers needed.")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	res, err := notice.Parse(demoNotice)
	if err != nil {
		fmt.Fprintf(e.stderr, "demo: parse the built-in notice: %v\n", err)
		return exitRuntime
	}
	fmt.Fprintln(e.stdout, "== 1. A notice arrives (built-in sample). The parser reads:")
	out := notice.NewOutput("built-in notice", res)
	if err := out.WriteText(e.stdout); err != nil {
		return exitRuntime
	}
	fmt.Fprintln(e.stdout, "\n== 2. Validation")
	if len(out.Problems) == 0 {
		fmt.Fprintln(e.stdout, "  no problems: a case would open under", res.Notice.CaseID)
	}
	for _, p := range out.Problems {
		fmt.Fprintf(e.stdout, "  %s: %s\n", p.Field, p.Message)
	}
	fmt.Fprintln(e.stdout, "\n== Not built yet: watching IMAP, the summary to the admins, the approver's")
	fmt.Fprintln(e.stdout, "   \"confirm\", the reply to AWS, analysis and blocking. The demo grows with them.")
	return exitOK
}
