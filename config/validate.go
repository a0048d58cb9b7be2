package config

import (
	"net/mail"
	"os"
	"path/filepath"
	"strings"
)

// validate turns the raw values into a Config, applying defaults and
// reporting every problem it meets. The required keys are those the daemon
// cannot run without; check-config exists to vet the daemon's config, so
// Load asks for them too.
func (c *checker) validate(r *rawConfig) *Config {
	cfg := &Config{
		IMAP:    c.imap(&r.IMAP),
		SMTP:    c.smtp(&r.SMTP),
		Notices: c.notices(&r.Notices),
		Reply:   c.reply(&r.Reply),
		Store:   c.store(&r.Store),
	}
	cfg.Approval = c.approval(&r.Approval, cfg)
	cfg.AWS = c.aws(&r.AWS)
	cfg.Analyze = c.analyze(&r.Analyze)
	cfg.Remediate = c.remediate(&r.Remediate)
	cfg.Metrics = c.metrics(&r.Metrics)
	cfg.Log = c.log(&r.Log)
	return cfg
}

func (c *checker) imap(r *rawIMAP) IMAP {
	m := IMAP{
		Address:          c.required("imap.address", r.Address, `the IMAP server as host:port, such as "imap.example.com:993"`),
		Username:         c.required("imap.username", r.Username, "the login of the watched mailbox"),
		Auth:             AuthMethod(c.oneOf("imap.auth", r.Auth, string(AuthLogin), string(AuthLogin), string(AuthPlain))),
		Mailbox:          c.nonEmpty("imap.mailbox", r.Mailbox, "INBOX"),
		ProcessedMailbox: orString(r.ProcessedMailbox, ""),
		SentMailbox:      orString(r.SentMailbox, ""),
		PollInterval:     c.duration("imap.poll_interval", r.PollInterval, "60s"),
		IDLE:             orBool(r.IDLE, true),
	}
	host, ok := "", false
	if m.Address != "" {
		host, ok = c.hostPort("imap.address", m.Address, false)
	}
	m.TLS = c.tls("imap", r.TLS, host, ok)
	n := len(c.problems)
	var from string
	m.Password, from = c.password("imap", r.Password, r.PasswordFile)
	if from == "" && len(c.problems) == n && !c.isSuppressed("imap.password_file") {
		c.addf("imap.password", "required: set imap.password_file, the systemd credential imap-password (LoadCredential=), or imap.password")
	}
	return m
}

func (c *checker) smtp(r *rawSMTP) SMTP {
	s := SMTP{
		Address:  c.required("smtp.address", r.Address, `the SMTP server as host:port, such as "smtp.example.com:465"`),
		Username: orString(r.Username, ""),
		Timeout:  c.duration("smtp.timeout", r.Timeout, "30s"),
		HELO:     orString(r.HELO, ""),
	}
	host, ok := "", false
	if s.Address != "" {
		host, ok = c.hostPort("smtp.address", s.Address, false)
	}
	s.TLS = c.tls("smtp", r.TLS, host, ok)
	if from := c.required("smtp.from", r.From, `the sender of summaries and replies, such as "Abuse desk <abuse@example.com>"`); from != "" {
		s.From, _ = c.address("smtp.from", from)
	}
	if strings.ContainsAny(s.HELO, " \t\r\n") {
		c.addf("smtp.helo", "%q is not a host name", s.HELO)
	}
	n := len(c.problems)
	var from string
	s.Password, from = c.password("smtp", r.Password, r.PasswordFile)
	switch {
	case s.Username != "" && from == "" && len(c.problems) == n && !c.isSuppressed("smtp.password_file"):
		c.addf("smtp.password", "required with smtp.username: set smtp.password_file, the systemd credential smtp-password (LoadCredential=), or smtp.password")
	case s.Username == "" && (from == "smtp.password" || from == "smtp.password_file"):
		// A password nobody logs in with points at a forgotten username.
		c.addf(from, "set, but smtp.username is not")
	}
	return s
}

func (c *checker) notices(r *rawNotices) Notices {
	return Notices{
		Senders: c.addrSpecs("notices.senders", orStrings(r.Senders, "ec2-abuse@amazon.com", "trustandsafety@support.aws.com"),
			true, "the addresses AWS sends abuse notices from"),
		Accounts:                   c.accountIDs("notices.accounts", orStrings(r.Accounts)),
		RequireAuthenticatedSender: orBool(r.RequireAuthenticatedSender, true),
	}
}

// approval needs the IMAP username (the default Reply-To), the notices
// section (whose require_authenticated_sender also needs authserv_id) and
// the store path (the default secret_file lives next to it).
func (c *checker) approval(r *rawApproval, cfg *Config) Approval {
	a := Approval{
		Approvers:                  c.addrSpecs("approval.approvers", orStrings(r.Approvers), true, "the addresses whose confirm sends the reply to AWS"),
		SummaryTo:                  c.addresses("approval.summary_to", orStrings(r.SummaryTo), true, "the addresses that receive case summaries"),
		RequireAuthenticatedSender: orBool(r.RequireAuthenticatedSender, true),
		AuthservID:                 orString(r.AuthservID, ""),
		TokenTTL:                   c.duration("approval.token_ttl", r.TokenTTL, "48h"),
		SecretFile:                 orString(r.SecretFile, ""),
	}
	switch {
	case r.ReplyTo != nil:
		a.ReplyTo, _ = c.address("approval.reply_to", *r.ReplyTo)
	case cfg.IMAP.Username != "":
		// Replies must land in the watched mailbox, which is the IMAP
		// login when that is an address.
		if addr, err := mail.ParseAddress(cfg.IMAP.Username); err == nil {
			a.ReplyTo = addr
		} else {
			c.addf("approval.reply_to", "required when imap.username is not an e-mail address: the address of the watched mailbox")
		}
	}

	var need []string
	if cfg.Notices.RequireAuthenticatedSender {
		need = append(need, "notices.require_authenticated_sender")
	}
	if a.RequireAuthenticatedSender {
		need = append(need, "approval.require_authenticated_sender")
	}
	switch {
	case a.AuthservID == "" && len(need) > 0:
		verb := "is"
		if len(need) > 1 {
			verb = "are"
		}
		c.addf("approval.authserv_id", "required when %s %s true: the authserv-id that our own mail server writes in Authentication-Results",
			strings.Join(need, " and "), verb)
	case strings.ContainsAny(a.AuthservID, " \t\r\n;"):
		c.addf("approval.authserv_id", "%q is not an authserv-id (a host name such as \"mx.example.com\")", a.AuthservID)
	}

	if r.SecretFile == nil && cfg.Store.Path != "" {
		a.SecretFile = filepath.Join(filepath.Dir(cfg.Store.Path), "approval.key")
	} else if r.SecretFile != nil && *r.SecretFile == "" {
		c.addf("approval.secret_file", "must not be empty; leave the key out for the default next to store.path")
	}

	reminders := orStrings(r.Reminders, "8h", "2h")
	for i, s := range reminders {
		if d := c.durationValue(elem("approval.reminders", i), s); d > 0 {
			a.Reminders = append(a.Reminders, d)
		}
	}
	return a
}

func (c *checker) reply(r *rawReply) Reply {
	rp := Reply{Template: orString(r.Template, ""), Contact: orString(r.Contact, "")}
	if rp.Template != "" {
		// Only look: the mail package parses it, but a wrong path should
		// fail check-config, not the first reply days later.
		if fi, err := os.Stat(rp.Template); err != nil {
			c.addf("reply.template", "cannot use template: %v", err)
		} else if !fi.Mode().IsRegular() {
			c.addf("reply.template", "%q is not a regular file", rp.Template)
		}
	}
	return rp
}
