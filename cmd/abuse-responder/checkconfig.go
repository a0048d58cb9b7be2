package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/abuse-responder/abuse-responder/config"
)

// defaultConfig is where the packaged unit and the README put the file.
const defaultConfig = "/etc/abuse-responder/config.toml"

func cmdCheckConfig(e *env, args []string) int {
	fs := newFlagSet(e, "check-config", "[--config FILE]",
		"Validate the config file and list every problem at once, as FILE:LINE: key: problem.\n"+
			"Exit 0 when the file is valid, 2 when it is not (or cannot be read).")
	path := fs.String("config", defaultConfig, "config file")
	if code, ok := parseFlags(fs, args); !ok {
		return code
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(e.stderr, "check-config: unexpected argument %q\n", fs.Arg(0))
		return exitUsage
	}
	if _, err := loadConfig(e, *path); err != nil {
		return exitUsage
	}
	fmt.Fprintf(e.stdout, "%s: ok\n", *path)
	return exitOK
}

// loadConfig loads and validates path, printing every problem on stderr.
// The caller exits 2 on error: an invalid config must not be restarted
// in a loop by systemd.
func loadConfig(e *env, path string) (*config.Config, error) {
	cfg, err := config.LoadWith(path, config.Options{CredentialsDir: e.getenv("CREDENTIALS_DIRECTORY")})
	if err != nil {
		var ce *config.Error
		if errors.As(err, &ce) {
			fmt.Fprintln(e.stderr, strings.TrimRight(ce.Error(), "\n"))
			if n := len(ce.Problems); n > 1 {
				fmt.Fprintf(e.stderr, "%d problems in %s\n", n, path)
			}
		} else {
			fmt.Fprintf(e.stderr, "check-config: %v\n", err)
		}
		return nil, err
	}
	return cfg, nil
}
