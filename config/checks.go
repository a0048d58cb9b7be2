package config

import (
	"net"
	"net/mail"
	"net/netip"
	"strconv"
	"strings"
	"time"
)

// The checks below turn one raw value into a typed one. Each reports its
// own problem on key and returns a usable zero-ish value on failure, so that
// validation carries on and finds the next problem too.

// required returns *p, reporting a problem when the key is missing or "".
// what says what the key is for, because "required" alone does not help
// someone writing their first config.
func (c *checker) required(key string, p *string, what string) string {
	if p == nil || *p == "" {
		c.addf(key, "required: %s", what)
		return ""
	}
	return *p
}

// nonEmpty returns *p or def, refusing an explicit "" for a key whose
// default cannot be turned off.
func (c *checker) nonEmpty(key string, p *string, def string) string {
	if p != nil && *p == "" {
		c.addf(key, "must not be empty (default %q)", def)
		return def
	}
	return orString(p, def)
}

// oneOf returns *p (def when missing), which must be one of allowed.
func (c *checker) oneOf(key string, p *string, def string, allowed ...string) string {
	v := orString(p, def)
	for _, a := range allowed {
		if v == a {
			return v
		}
	}
	quoted := make([]string, len(allowed))
	for i, a := range allowed {
		quoted[i] = strconv.Quote(a)
	}
	c.addf(key, "%q is not one of %s", v, strings.Join(quoted, ", "))
	return def
}

// duration parses *p (def when missing) as a positive Go duration.
func (c *checker) duration(key string, p *string, def string) time.Duration {
	return c.durationValue(key, orString(p, def))
}

func (c *checker) durationValue(key, s string) time.Duration {
	d, err := time.ParseDuration(s)
	if err != nil {
		c.addf(key, `invalid duration %q: use Go syntax such as "90s", "5m", "2h"`, s)
		return 0
	}
	if d <= 0 {
		c.addf(key, "duration %q must be greater than zero", s)
		return 0
	}
	return d
}

// hostPort checks that s is host:port with a numeric port and returns the
// host. A listen address may leave the host out (all interfaces) and use
// port 0 (any free port, for tests); a server address may not.
func (c *checker) hostPort(key, s string, listen bool) (host string, ok bool) {
	example := "mail.example.com:993"
	if listen {
		example = "127.0.0.1:9464"
	}
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		c.addf(key, "want host:port such as %q, not %q", example, s)
		return "", false
	}
	if host == "" && !listen {
		c.addf(key, "want host:port such as %q, not %q: the host is missing", example, s)
		return "", false
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 && !listen {
		c.addf(key, "port %q of %q is not a number from 1 to 65535", port, s)
		return "", false
	}
	return host, true
}

// isLoopback reports whether host is certain to stay on this machine.
// Names other than localhost are not trusted to: DNS could move them.
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") || strings.EqualFold(host, "localhost.") {
		return true
	}
	a, err := netip.ParseAddr(host)
	return err == nil && a.Unmap().IsLoopback()
}

// tls returns the section's TLS mode. Without TLS the password crosses the
// network in clear text, so "none" is refused unless the server, address,
// is on loopback (a local relay, a test server).
func (c *checker) tls(section string, p *string, host string, hostOK bool) TLSMode {
	key := section + ".tls"
	mode := TLSMode(c.oneOf(key, p, string(TLSImplicit), string(TLSImplicit), string(TLSStartTLS), string(TLSNone)))
	if mode == TLSNone && hostOK && !isLoopback(host) {
		c.addf(key, `"none" sends the password in clear text; allowed only for loopback addresses, not %q`, host)
	}
	return mode
}

// address parses one e-mail address, with or without a display name.
func (c *checker) address(key, s string) (*mail.Address, bool) {
	a, err := mail.ParseAddress(s)
	if err != nil {
		c.addf(key, "%q is not an e-mail address: %s", s, strings.TrimPrefix(err.Error(), "mail: "))
		return nil, false
	}
	return a, true
}

// addresses parses a list of e-mail addresses, which must not be empty
// when required.
func (c *checker) addresses(key string, list []string, required bool, what string) []*mail.Address {
	if required && len(list) == 0 {
		c.addf(key, "required: %s", what)
	}
	out := make([]*mail.Address, 0, len(list))
	for i, s := range list {
		if a, ok := c.address(elem(key, i), s); ok {
			out = append(out, a)
		}
	}
	return out
}

// addrSpecs is addresses reduced to the bare addr-spec, for lists that
// are matched against a From header rather than written to one.
func (c *checker) addrSpecs(key string, list []string, required bool, what string) []string {
	as := c.addresses(key, list, required, what)
	out := make([]string, len(as))
	for i, a := range as {
		out[i] = a.Address
	}
	return out
}

// isDigits reports whether s is exactly n ASCII digits, as AWS account
// IDs are.
func isDigits(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// accountIDs checks a list of 12-digit AWS account IDs.
func (c *checker) accountIDs(key string, list []string) []string {
	for i, s := range list {
		if !isDigits(s, 12) {
			c.addf(elem(key, i), "%q is not an AWS account ID (12 digits)", s)
		}
	}
	return list
}
