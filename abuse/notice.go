// Package abuse holds the domain types that flow through the pipeline:
// a parsed notice, its resources and targets. It imports only the standard
// library so that every other package can depend on it.
package abuse

import (
	"net/netip"
	"strconv"
	"time"
)

// Stage says where a notice stands in AWS's conversation about a case.
type Stage string

// The stages of FORMATS.md §5, checked in the order final, additional-report,
// reminder, notice.
const (
	StageNotice           Stage = "notice"
	StageReminder         Stage = "reminder"
	StageFinal            Stage = "final"
	StageAdditionalReport Stage = "additional-report"
)

// Type is the kind of abuse AWS reports.
type Type string

// The abuse types of the parse --json contract.
const (
	TypeIntrusion     Type = "intrusion-attempts"
	TypePortScan      Type = "port-scanning"
	TypeDoS           Type = "dos"
	TypeOpenProxy     Type = "open-proxy"
	TypeSpam          Type = "spam"
	TypePhishing      Type = "phishing"
	TypeContent       Type = "content"
	TypeMalware       Type = "malware"
	TypeCopyright     Type = "copyright"
	TypeCryptoMining  Type = "crypto-mining"
	TypeVulnerability Type = "vulnerability"
	TypeOther         Type = "other"
)

// Resource is one AWS resource that a notice implicates.
type Resource struct {
	InstanceID string `json:"instance_id"`
	// PublicIP is the address AWS printed after the instance ID, or "".
	// It is never taken from the reporter's text.
	PublicIP string `json:"public_ip"`
	Region   string `json:"region"`
}

// Target is a third-party host that our instance contacted.
type Target struct {
	IP netip.Addr `json:"ip"`
	// Port is the destination port, or 0 when the report does not say.
	Port uint16 `json:"port"`
	// Protocol is "tcp" or "udp" when the report names it, else "".
	Protocol string `json:"protocol"`
}

// String writes the target as people read it: "203.0.113.10 port 23/tcp",
// "203.0.113.10 port 443", or the bare address.
func (t Target) String() string {
	s := t.IP.String()
	if t.Port != 0 {
		s += " port " + strconv.Itoa(int(t.Port))
	}
	if t.Protocol != "" {
		s += "/" + t.Protocol
	}
	return s
}

// Notice is what the parser extracts from one AWS abuse mail. The JSON
// names are the parse --json contract of DESIGN.md; fields tagged "-" are
// for later stages and not part of that contract.
type Notice struct {
	Provider         string     `json:"provider"`
	Stage            Stage      `json:"stage"`
	CaseID           string     `json:"case_id"`
	AccountID        string     `json:"account_id"`
	Type             Type       `json:"abuse_type"`
	ReportedActivity string     `json:"reported_activity"`
	Regions          []string   `json:"regions"`
	Resources        []Resource `json:"resources"`
	AbuseTime        *time.Time `json:"abuse_time"`
	Targets          []Target   `json:"targets"`
	TargetHosts      []string   `json:"target_hosts"`
	AWSActions       []string   `json:"aws_actions"`
	Sender           string     `json:"sender"`
	MessageID        string     `json:"message_id"`
	Subject          string     `json:"subject"`
	Date             *time.Time `json:"date"`
	ReplyBy          *time.Time `json:"reply_by"`
	// Forwarded is true when a person forwarded the notice (inline or as an
	// attached message) and the fields above describe the notice inside.
	Forwarded bool `json:"forwarded,omitempty"`

	// ReplyTo is the bare Reply-To address of the outer mail, or "".
	ReplyTo string `json:"-"`
	// References holds the outer mail's References and In-Reply-To IDs, with <>.
	References []string `json:"-"`
	// Evidence is the reporter's text after AWS's delimiter: untrusted.
	Evidence string `json:"-"`
}

// ReplyWindow is how long AWS gives to answer a notice.
const ReplyWindow = 24 * time.Hour
