// Package config loads abuse-responder's TOML configuration into a
// validated, typed Config.
//
// The file is decoded into raw structs whose every key may be missing, then
// checked key by key into typed values (time.Duration, netip.Prefix,
// *mail.Address, Secret). Every problem in the file is collected and returned
// together in one *Error, each with its key path and, where the file has
// one, its line: an admin running check-config sees the whole list at once
// (DESIGN.md, "Config (TOML)" and "Command line"). There is no package
// state; a Config is a plain value that cmd maps onto each package's options.
package config

import (
	"fmt"
	"log/slog"
	"net/mail"
	"net/netip"
	"os"
	"time"
)

// Config is a validated configuration. Load fills every field, with the
// default for each key the file leaves out.
type Config struct {
	IMAP      IMAP
	SMTP      SMTP
	Notices   Notices
	Approval  Approval
	Reply     Reply
	AWS       AWS
	Analyze   Analyze
	Remediate Remediate
	Store     Store
	Metrics   Metrics
	Log       Log
}

// TLSMode says how a mail connection is secured.
type TLSMode string

// The TLS modes. TLSNone is accepted only for loopback addresses, since it
// would send the password in clear text.
const (
	TLSImplicit TLSMode = "implicit"
	TLSStartTLS TLSMode = "starttls"
	TLSNone     TLSMode = "none"
)

// AuthMethod is the IMAP authentication method.
type AuthMethod string

// The IMAP authentication methods: the LOGIN command, or SASL PLAIN.
const (
	AuthLogin AuthMethod = "login"
	AuthPlain AuthMethod = "plain"
)

// IMAP is the [imap] section: the mailbox the daemon watches for notices
// and approval replies.
type IMAP struct {
	Address          string // host:port
	TLS              TLSMode
	Username         string
	Password         Secret
	Auth             AuthMethod
	Mailbox          string        // watched for notices and replies
	ProcessedMailbox string        // handled mail moves here; "" marks it \Seen instead
	SentMailbox      string        // a copy of each reply sent is appended here; "" for none
	PollInterval     time.Duration // between checks when IDLE is off or unsupported
	IDLE             bool
}

// SMTP is the [smtp] section: how summaries and replies are sent.
type SMTP struct {
	Address  string // host:port
	TLS      TLSMode
	Username string // "" sends without authenticating
	Password Secret
	From     *mail.Address
	Timeout  time.Duration
	HELO     string // "" lets the client choose
}

// Notices is the [notices] section: which mail counts as an AWS notice
// that may lead to a block.
type Notices struct {
	Senders                    []string // addr-specs, as written in the file
	Accounts                   []string // 12-digit AWS account IDs
	RequireAuthenticatedSender bool
}

// Approval is the [approval] section: who confirms a reply, and how the
// confirmation is authenticated.
type Approval struct {
	Approvers                  []string // addr-specs allowed to confirm or reject
	SummaryTo                  []*mail.Address
	ReplyTo                    *mail.Address // defaults to the IMAP username
	RequireAuthenticatedSender bool
	AuthservID                 string // authserv-id of our own Authentication-Results
	TokenTTL                   time.Duration
	SecretFile                 string // HMAC key; created on first start when absent
	Reminders                  []time.Duration
}

// Reply is the [reply] section: what the reply to AWS says.
type Reply struct {
	Template string // path of a text/template that replaces the built-in one; "" for none
	Contact  string // free text (name, phone) put in the reply
}

// AWS is the [aws] section. With no accounts, the analysis runs on the
// host alone.
type AWS struct {
	Regions     []string
	EndpointURL string // "" for AWS itself; else every client, STS included, goes here
	Accounts    []AWSAccount
}

// AWSAccount is one [[aws.accounts]] entry.
type AWSAccount struct {
	ID         string // 12 digits
	RoleARN    string // "" uses the ambient credentials
	ExternalID string
}

// Analyze is the [analyze] section: where host evidence is looked for.
type Analyze struct {
	AccessLogs   []string // filepath.Match globs
	ModsecLogs   []string // filepath.Match globs
	WebRoots     []string
	FlowLogGroup string // CloudWatch Logs group of VPC flow logs; "" finds it with DescribeFlowLogs
	WindowMargin time.Duration
	// HostEvidence is "auto" (collect here unless the instance metadata
	// says this machine is another instance, then through SSM when SSM
	// manages the implicated one), "local", "ssm" or "off".
	HostEvidence string
	// RemoteBinary is this program's path on the instances, run there
	// through SSM Run Command to collect host evidence.
	RemoteBinary string
}

// Mode chooses where the human stands in a case (DESIGN.md, "Case life
// cycle").
type Mode string

// The remediation modes.
const (
	ModeBlockThenConfirm Mode = "block-then-confirm"
	ModeConfirmThenBlock Mode = "confirm-then-block"
	ModeReportOnly       Mode = "report-only"
)

// Action is a kind of block the remediate package can apply.
type Action string

// The actions.
const (
	ActionNACL          Action = "nacl"
	ActionSecurityGroup Action = "security-group"
	ActionQuarantine    Action = "quarantine"
	ActionNftables      Action = "nftables"
)

// Remediate is the [remediate] section: what may be blocked, and how.
type Remediate struct {
	Mode            Mode
	DryRun          bool
	Actions         []Action
	Allowlist       []netip.Prefix // masked; a bare address is a /32 or /128
	ProtectTag      string         // tag key of instances that are never changed
	NACLRuleBand    [2]int         // first and last rule number we may use, inclusive
	BlockTTL        time.Duration
	QuarantineGroup string // security group ID; set when Actions has quarantine
	// NftablesOn is where the "nftables" action blocks: "host" (this
	// machine) or "instance" (the implicated instance, through SSM).
	NftablesOn string
	// Snapshots takes forensic EBS snapshots of an instance's volumes
	// before it is quarantined; unblock keeps them.
	Snapshots bool
	// VerifyFromInstance adds to the check of a NACL or security-group
	// block of one TCP port a connect from the implicated instance to
	// the target, through SSM (`probe --json -` there).
	VerifyFromInstance bool
}

// Store is the [store] section.
type Store struct {
	Path string // the SQLite database
}

// Metrics is the [metrics] section.
type Metrics struct {
	Listen string // host:port of the Prometheus endpoint; "" disables it
}

// LogFormat is the format of the log output.
type LogFormat string

// The log formats, as slog.TextHandler and slog.JSONHandler write them.
const (
	LogText LogFormat = "text"
	LogJSON LogFormat = "json"
)

// Log is the log section of the file: how much to log, and in which format.
type Log struct {
	Level  slog.Level
	Format LogFormat
}

// Options carries what Load takes from the environment, so that tests can
// set it without touching the process environment.
type Options struct {
	// CredentialsDir is systemd's $CREDENTIALS_DIRECTORY: passwords are
	// read from its files imap-password and smtp-password (LoadCredential=
	// in the unit) when no password_file is set. "" looks nowhere.
	CredentialsDir string
}

// Load reads and validates the config file at path, with the systemd
// credentials directory from $CREDENTIALS_DIRECTORY. A file that cannot be
// read gives a plain error; a file with problems gives an *Error that
// lists them all.
func Load(path string) (*Config, error) {
	return LoadWith(path, Options{CredentialsDir: os.Getenv("CREDENTIALS_DIRECTORY")})
}

// LoadWith is Load with the environment given in opts.
func LoadWith(path string, opts Options) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return LoadBytes(path, data, opts)
}

// LoadBytes validates the TOML document data as if read from the file
// name, which only labels the problems. On any problem it returns a nil
// Config and an *Error.
func LoadBytes(name string, data []byte, opts Options) (*Config, error) {
	idx, syntaxErr := buildIndex(data)
	c := &checker{idx: idx, opts: opts}
	raw, ok := c.decode(data, syntaxErr)
	if syntaxErr != nil && len(c.problems) == 0 {
		c.report(syntaxProblem(data, idx, syntaxErr))
	}
	var cfg *Config
	if ok {
		cfg = c.validate(&raw)
	}
	if len(c.problems) > 0 {
		sortProblems(c.problems)
		return nil, &Error{File: name, Problems: c.problems}
	}
	return cfg, nil
}

// Defaults returns the defaults of the sections that the host-side
// commands (analyze, collect) read, for a host that has no config file:
// no AWS accounts, the default log and web-root paths.
func Defaults() (AWS, Analyze) {
	c := &checker{}
	return c.aws(&rawAWS{}), c.analyze(&rawAnalyze{})
}
