package config

import (
	"log/slog"
	"net/netip"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
)

var (
	// regionRE matches AWS region names: us-east-1, us-gov-west-1,
	// us-isob-east-1. A typo here would make every EC2 lookup miss.
	regionRE = regexp.MustCompile(`^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$`)
	// securityGroupRE matches a security group ID, short or long form.
	securityGroupRE = regexp.MustCompile(`^sg-([0-9a-f]{8}|[0-9a-f]{17})$`)
)

func (c *checker) aws(r *rawAWS) AWS {
	a := AWS{
		Regions:     orStrings(r.Regions),
		EndpointURL: orString(r.EndpointURL, ""),
	}
	for i, s := range a.Regions {
		if !regionRE.MatchString(s) {
			c.addf(elem("aws.regions", i), "%q is not an AWS region name such as \"eu-central-1\"", s)
		}
	}
	if a.EndpointURL != "" {
		u, err := url.Parse(a.EndpointURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.addf("aws.endpoint_url", "%q is not an http or https URL such as \"http://127.0.0.1:5000\"", a.EndpointURL)
		}
	}
	seen := map[string]bool{}
	for i, ra := range r.Accounts {
		key := elem("aws.accounts", i)
		acct := AWSAccount{
			ID:         c.required(key+".id", ra.ID, "the 12-digit AWS account ID"),
			RoleARN:    orString(ra.RoleARN, ""),
			ExternalID: orString(ra.ExternalID, ""),
		}
		switch {
		case acct.ID == "":
		case !isDigits(acct.ID, 12):
			c.addf(key+".id", "%q is not an AWS account ID (12 digits)", acct.ID)
		case seen[acct.ID]:
			c.addf(key+".id", "account %s is listed twice", acct.ID)
		}
		seen[acct.ID] = true
		if acct.RoleARN != "" && (!strings.HasPrefix(acct.RoleARN, "arn:aws") || !strings.Contains(acct.RoleARN, ":iam::")) {
			c.addf(key+".role_arn", "%q is not an IAM role ARN such as \"arn:aws:iam::111122223333:role/abuse-responder\"", acct.RoleARN)
		}
		a.Accounts = append(a.Accounts, acct)
	}
	return a
}

// remoteBinaryRE is what cloud.RunCollect accepts as the remote binary.
var remoteBinaryRE = regexp.MustCompile(`^/[A-Za-z0-9._/-]+$`)

func (c *checker) analyze(r *rawAnalyze) Analyze {
	a := Analyze{
		AccessLogs:   c.globs("analyze.access_logs", orStrings(r.AccessLogs, "/var/log/apache2/*access*.log", "/var/log/nginx/*access*.log")),
		ModsecLogs:   c.globs("analyze.modsec_logs", orStrings(r.ModsecLogs, "/var/log/apache2/modsec_audit.log")),
		WebRoots:     orStrings(r.WebRoots, "/var/www"),
		FlowLogGroup: orString(r.FlowLogGroup, ""),
		WindowMargin: c.duration("analyze.window_margin", r.WindowMargin, "1h"),
		HostEvidence: c.oneOf("analyze.host_evidence", r.HostEvidence, "auto", "auto", "local", "ssm", "off"),
		RemoteBinary: orString(r.RemoteBinary, "/usr/local/bin/abuse-responder"),
	}
	// The path is the one unencoded word of the shell command sent
	// through SSM, so it must be plain.
	if !remoteBinaryRE.MatchString(a.RemoteBinary) {
		c.addf("analyze.remote_binary", "%q is not an absolute path of letters, digits and . _ / - only", a.RemoteBinary)
	}
	for i, s := range a.WebRoots {
		if s == "" {
			c.addf(elem("analyze.web_roots", i), "must not be empty")
		}
	}
	return a
}

// globs checks filepath.Match patterns now, since Match reports a bad
// pattern only when it is used, and then for every file.
func (c *checker) globs(key string, list []string) []string {
	for i, s := range list {
		if s == "" {
			c.addf(elem(key, i), "must not be empty")
		} else if _, err := filepath.Match(s, ""); err != nil {
			c.addf(elem(key, i), "bad glob %q: %v", s, err)
		}
	}
	return list
}

func (c *checker) remediate(r *rawRemediate) Remediate {
	m := Remediate{
		Mode: Mode(c.oneOf("remediate.mode", r.Mode, string(ModeBlockThenConfirm),
			string(ModeBlockThenConfirm), string(ModeConfirmThenBlock), string(ModeReportOnly))),
		DryRun:          orBool(r.DryRun, false),
		ProtectTag:      c.nonEmpty("remediate.protect_tag", r.ProtectTag, "abuse-responder:protect"),
		BlockTTL:        c.duration("remediate.block_ttl", r.BlockTTL, "168h"),
		QuarantineGroup: orString(r.QuarantineGroup, ""),
		NftablesOn:      c.oneOf("remediate.nftables_on", r.NftablesOn, "host", "host", "instance"),
		Snapshots:       orBool(r.Snapshots, false),
		NACLRuleBand:    c.ruleBand(r.NACLRuleBand),
		Allowlist:       c.allowlist("remediate.allowlist", orStrings(r.Allowlist)),
	}
	// Set apart so the literal above keeps its alignment.
	m.VerifyFromInstance = orBool(r.VerifyFromInst, false)
	actions := orStrings(r.Actions, string(ActionNACL))
	for i, s := range actions {
		key := elem("remediate.actions", i)
		a := Action(s)
		switch {
		case !slices.Contains([]Action{ActionNACL, ActionSecurityGroup, ActionQuarantine, ActionNftables}, a):
			c.addf(key, `%q is not one of "nacl", "security-group", "quarantine", "nftables"`, s)
		case slices.Contains(m.Actions, a):
			c.addf(key, "%q is listed twice", s)
		default:
			m.Actions = append(m.Actions, a)
		}
	}
	if len(actions) == 0 && m.Mode != ModeReportOnly {
		c.addf("remediate.actions", "must name at least one action unless remediate.mode is %q", ModeReportOnly)
	}
	switch {
	case m.QuarantineGroup != "" && !securityGroupRE.MatchString(m.QuarantineGroup):
		c.addf("remediate.quarantine_group", "%q is not a security group ID such as \"sg-0123456789abcdef0\"", m.QuarantineGroup)
	case m.QuarantineGroup == "" && slices.Contains(m.Actions, ActionQuarantine):
		c.addf("remediate.quarantine_group", "required when remediate.actions has %q: the security group that isolates an instance", ActionQuarantine)
	}
	return m
}

// ruleBand checks nacl_rule_band: the inclusive range of NACL rule numbers
// we may use. AWS allows 1 to 32766; both ends must be ours to use.
func (c *checker) ruleBand(p *[]int64) [2]int {
	const key = "remediate.nacl_rule_band"
	if p == nil {
		return [2]int{40, 89}
	}
	b := *p
	if len(b) != 2 {
		c.addf(key, "want two rule numbers [first, last], not %d", len(b))
		return [2]int{}
	}
	if b[0] < 1 || b[0] > b[1] || b[1] > 32766 {
		c.addf(key, "[%d, %d] is not a range of NACL rule numbers: want 1 <= first <= last <= 32766", b[0], b[1])
		return [2]int{}
	}
	return [2]int{int(b[0]), int(b[1])}
}

// allowlist parses addresses and CIDR prefixes that are never blocked. A
// prefix with host bits set is refused rather than masked, since
// "10.0.0.1/8" may be a typo for a /32 as easily as for 10.0.0.0/8, and the
// allowlist is a safety net that must mean what the admin meant.
func (c *checker) allowlist(key string, list []string) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(list))
	for i, s := range list {
		k := elem(key, i)
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil || a.Zone() != "" {
				c.addf(k, "%q is not an IP address or CIDR prefix", s)
				continue
			}
			a = a.Unmap()
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			c.addf(k, "%q is not an IP address or CIDR prefix", s)
			continue
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			// An IPv4-mapped prefix would never contain an IPv4 address.
			p = netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96)
		}
		if m := p.Masked(); m != p {
			c.addf(k, "host bits set; did you mean %s?", m)
			continue
		}
		out = append(out, p)
	}
	return out
}

func (c *checker) store(r *rawStore) Store {
	return Store{Path: c.nonEmpty("store.path", r.Path, "/var/lib/abuse-responder/state.db")}
}

func (c *checker) metrics(r *rawMetrics) Metrics {
	m := Metrics{Listen: orString(r.Listen, "127.0.0.1:9464")}
	if m.Listen != "" {
		c.hostPort("metrics.listen", m.Listen, true)
	}
	return m
}

func (c *checker) log(r *rawLog) Log {
	l := Log{Format: LogFormat(c.oneOf("log.format", r.Format, string(LogText), string(LogText), string(LogJSON)))}
	switch c.oneOf("log.level", r.Level, "info", "debug", "info", "warn", "error") {
	case "debug":
		l.Level = slog.LevelDebug
	case "warn":
		l.Level = slog.LevelWarn
	case "error":
		l.Level = slog.LevelError
	default:
		l.Level = slog.LevelInfo
	}
	return l
}
