package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/abuse-responder/abuse-responder/mail/notice"
)

func cmdParse(env *env, args []string) int {
	fs := newFlagSet(env, "parse", "[--json] FILE.eml...",
		"Print what the parser sees in each mail: the notice fields, or why it is not a notice.\n"+
			"With --json, one object per line as in DESIGN.md. Exit 1 when a file cannot be read or parsed.")
	asJSON := fs.Bool("json", false, "print one JSON object per line")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() == 0 {
		fmt.Fprintln(env.stderr, "parse: no FILE given")
		fs.Usage()
		return exitUsage
	}
	code := exitOK
	enc := json.NewEncoder(env.stdout)
	enc.SetEscapeHTML(false)
	for _, path := range fs.Args() {
		raw, err := readBounded(path, int64(notice.DefaultLimits.MaxBytes))
		var res notice.Result
		if err == nil {
			res, err = notice.Parse(raw)
		}
		if err != nil {
			fmt.Fprintf(env.stderr, "parse %s: %v\n", path, err)
			code = exitRuntime
			continue
		}
		out := notice.NewOutput(filepath.Base(path), res)
		if *asJSON {
			err = enc.Encode(out)
		} else {
			err = out.WriteText(env.stdout)
		}
		if err != nil {
			fmt.Fprintf(env.stderr, "parse: write output: %v\n", err)
			return exitRuntime
		}
	}
	return code
}

// readBounded reads at most limit bytes of path, and fails instead of
// reading further: a 50 MB mail is refused without holding 50 MB.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: over %d bytes", notice.ErrTooLarge, limit)
	}
	return b, nil
}
