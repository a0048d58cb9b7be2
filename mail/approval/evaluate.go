// Package approval decides whether an inbound mail is an approver's answer
// to one of our summaries. It is pure: the daemon reads the mail, calls
// Evaluate, and then checks what only it knows (that the token is for the
// case's current plan, and that the case was not answered already).
package approval

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"time"

	"github.com/emersion/go-message"
	// The charset package registers decoders for ISO-8859-x, windows-125x
	// and the rest, which mail clients still use for replies.
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"
)

// Why a mail is not an approval. ErrNotApproval means the mail does not
// reply to any summary of ours and may be something else (a notice).
// ErrMachineMail (with ErrOwnMail, ErrAutoReply or ErrDeliveryReport) means
// a machine wrote it: the daemon should drop it rather than parse it as a
// notice, or a bounce of a summary could open a new case and loop. The rest
// refuse a reply that looks like an approval.
var (
	ErrNotApproval     = errors.New("not a reply to an approval request")
	ErrMachineMail     = errors.New("machine-generated mail")
	ErrOwnMail         = errors.New("our own mail")
	ErrAutoReply       = errors.New("automatic reply")
	ErrDeliveryReport  = errors.New("delivery report")
	ErrUnknownApprover = errors.New("sender is not an approver")
	ErrUnauthenticated = errors.New("sender not authenticated")
	ErrAmbiguous       = errors.New("reply refers to summaries of several cases")
	ErrNoVerb          = errors.New("first line of the reply is neither confirm nor reject")
)

// Limits on what Evaluate reads, so that a hostile mail costs little.
const (
	maxMessageBytes = 10 << 20
	maxBodyBytes    = 1 << 20
	maxParts        = 50
	maxIDs          = 200
)

// Policy is what Evaluate checks a mail against, from the [approval]
// config section.
type Policy struct {
	Approvers    []string // bare addresses allowed to confirm or reject
	AuthservID   string   // authserv-id of our own mail server's Authentication-Results
	RequireAuth  bool     // require Authenticated for the approver's mail
	OwnAddresses []string // our From and Reply-To: mail from them is never an approval
}

// Decision is an approval or rejection that passed every check Evaluate
// can make.
type Decision struct {
	CaseID, PlanHash string
	Verb             string // VerbConfirm or VerbReject
	Note             string // the approver's lines after the verb, for the reply to AWS
	Approver         string // bare lower-case From address
	MessageID        string // of the approval mail, with <>; "" when it has none
}

// Evaluate checks one inbound mail as an approval at time now. It returns
// a Decision, an error wrapping ErrNotApproval or ErrMachineMail, or an
// error saying exactly why a reply that looks like an approval is refused.
func Evaluate(raw []byte, p Policy, s *Signer, now time.Time) (Decision, error) {
	if len(raw) > maxMessageBytes {
		return Decision{}, fmt.Errorf("message of %d bytes is too large for an approval", len(raw))
	}
	mr, err := mail.CreateReader(bytes.NewReader(raw))
	if err != nil && !message.IsUnknownCharset(err) {
		return Decision{}, fmt.Errorf("read message: %w", err)
	}
	h := mr.Header
	from, fromErr := h.AddressList("From")
	for _, a := range from {
		if contains(p.OwnAddresses, a.Address) {
			return Decision{}, fmt.Errorf("%w: %w: From %s", ErrMachineMail, ErrOwnMail, strings.ToLower(a.Address))
		}
	}
	if err := machineMail(h, from); err != nil {
		return Decision{}, err
	}

	tokens := tokensIn(h)
	if len(tokens) == 0 {
		return Decision{}, ErrNotApproval
	}
	if fromErr != nil || len(from) != 1 {
		return Decision{}, fmt.Errorf("%w: From must hold exactly one readable address", ErrUnknownApprover)
	}
	approver := strings.ToLower(from[0].Address)
	if !contains(p.Approvers, approver) {
		return Decision{}, fmt.Errorf("%w: %s", ErrUnknownApprover, approver)
	}
	if p.RequireAuth {
		if ok, why := Authenticated(h, p.AuthservID); !ok {
			return Decision{}, fmt.Errorf("%w: %s: %s", ErrUnauthenticated, approver, why)
		}
	}
	caseID, planHash, err := pickToken(tokens, s, now)
	if err != nil {
		return Decision{}, err
	}
	body, err := replyText(mr)
	if err != nil {
		return Decision{}, err
	}
	verb, note := FirstWord(body)
	if verb == "" {
		return Decision{}, fmt.Errorf("%w (from %s, case %s)", ErrNoVerb, approver, caseID)
	}
	d := Decision{CaseID: caseID, PlanHash: planHash, Verb: verb, Note: note, Approver: approver}
	if id, err := h.MessageID(); err == nil && id != "" {
		d.MessageID = "<" + id + ">"
	}
	return d, nil
}

// machineMail refuses auto-replies and delivery reports (RFC 3834, RFC 6522
// and the usual signs of older systems), so that no machine can approve
// and no loop can start.
func machineMail(h mail.Header, from []*mail.Address) error {
	// Delivery reports first: they carry Auto-Submitted too, and the more
	// precise reason helps whoever reads the log.
	if ct, _, _ := h.ContentType(); ct == "multipart/report" || ct == "message/delivery-status" || ct == "message/disposition-notification" {
		return fmt.Errorf("%w: %w: Content-Type %s", ErrMachineMail, ErrDeliveryReport, ct)
	}
	for _, rp := range h.Values("Return-Path") {
		if strings.TrimSpace(rp) == "<>" {
			return fmt.Errorf("%w: %w: empty Return-Path", ErrMachineMail, ErrDeliveryReport)
		}
	}
	for _, a := range from {
		local := strings.ToLower(a.Address)
		if i := strings.LastIndexByte(local, '@'); i >= 0 {
			local = local[:i]
		}
		if local == "mailer-daemon" || local == "postmaster" {
			return fmt.Errorf("%w: %w: From %s", ErrMachineMail, ErrDeliveryReport, a.Address)
		}
	}
	for _, a := range h.Values("Auto-Submitted") {
		kw := strings.ToLower(strings.TrimSpace(strings.SplitN(stripComments(a), ";", 2)[0]))
		if kw != "no" {
			return fmt.Errorf("%w: %w: Auto-Submitted: %s", ErrMachineMail, ErrAutoReply, kw)
		}
	}
	switch p := strings.ToLower(strings.TrimSpace(h.Get("Precedence"))); p {
	case "bulk", "junk", "auto_reply":
		return fmt.Errorf("%w: %w: Precedence: %s", ErrMachineMail, ErrAutoReply, p)
	}
	if h.Has("X-Autoreply") || h.Has("X-Autorespond") {
		return fmt.Errorf("%w: %w: X-Autoreply", ErrMachineMail, ErrAutoReply)
	}
	return nil
}

var reMsgID = regexp.MustCompile(`<([^<>\s]{1,998})>`)

// foundToken is a token-like Message-ID local part and where it was found.
type foundToken struct {
	token     string
	inReplyTo bool
}

// tokensIn returns the local parts of the In-Reply-To and References IDs
// that look like our tokens, In-Reply-To first. It scans for <…> itself
// rather than parsing strictly: clients mangle these fields, and a field
// that fails to parse must not hide a token.
func tokensIn(h mail.Header) []foundToken {
	var out []foundToken
	seen := map[string]bool{}
	for _, k := range []string{"In-Reply-To", "References"} {
		for _, v := range h.Values(k) {
			for _, m := range reMsgID.FindAllStringSubmatch(v, maxIDs) {
				local := m[1]
				if i := strings.LastIndexByte(local, '@'); i >= 0 {
					local = local[:i]
				}
				if len(local) > len(TokenPrefix) && strings.EqualFold(local[:len(TokenPrefix)], TokenPrefix) && !seen[local] {
					seen[local] = true
					out = append(out, foundToken{local, k == "In-Reply-To"})
				}
			}
		}
	}
	return out
}

// pickToken verifies the tokens. Any valid one will do; valid tokens for
// different cases make the reply ambiguous. For one case with several plans
// (a reply to a reminder whose References name an older summary) the token
// in In-Reply-To, the mail actually answered, wins.
func pickToken(tokens []foundToken, s *Signer, now time.Time) (caseID, planHash string, err error) {
	type bound struct {
		caseID, plan string
		inReplyTo    bool
	}
	var valid []bound
	var firstErr error
	for _, t := range tokens {
		c, ph, err := s.Verify(t.token, now)
		if err != nil {
			// Prefer "expired" to "invalid": it tells the approver what to do.
			if firstErr == nil || errors.Is(err, ErrExpired) && !errors.Is(firstErr, ErrExpired) {
				firstErr = err
			}
			continue
		}
		valid = append(valid, bound{c, ph, t.inReplyTo})
	}
	if len(valid) == 0 {
		return "", "", firstErr
	}
	plans := map[string]bool{}
	for _, v := range valid {
		if v.caseID != valid[0].caseID {
			return "", "", fmt.Errorf("%w: %s and %s", ErrAmbiguous, valid[0].caseID, v.caseID)
		}
		plans[v.plan] = true
	}
	if len(plans) == 1 {
		return valid[0].caseID, valid[0].plan, nil
	}
	for _, v := range valid {
		if v.inReplyTo {
			return v.caseID, v.plan, nil
		}
	}
	return "", "", fmt.Errorf("%w: several plans for case %s and none in In-Reply-To", ErrAmbiguous, valid[0].caseID)
}

// replyText returns the first inline text/plain part, else the first
// text/html part turned into text.
func replyText(mr *mail.Reader) (string, error) {
	var htmlBody string
	for n := 0; n < maxParts; n++ {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil && !message.IsUnknownCharset(err) {
			return "", fmt.Errorf("read reply body: %w", err)
		}
		ih, ok := p.Header.(*mail.InlineHeader)
		if !ok {
			continue
		}
		ct, _, _ := ih.ContentType()
		if ct != "text/plain" && ct != "text/html" {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(p.Body, maxBodyBytes))
		if err != nil && !message.IsUnknownCharset(err) {
			return "", fmt.Errorf("read reply body: %w", err)
		}
		if ct == "text/plain" {
			return string(b), nil
		}
		if htmlBody == "" {
			htmlBody = htmlToText(string(b))
		}
	}
	return htmlBody, nil
}

func contains(list []string, addr string) bool {
	for _, a := range list {
		if strings.EqualFold(strings.TrimSpace(a), addr) {
			return true
		}
	}
	return false
}
