package approval

import (
	"fmt"
	"strings"

	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-msgauth/authres"
)

// Authenticated reports whether our own mail server vouched for the From
// address. Only the topmost Authentication-Results field whose authserv-id
// is authservID counts: fields further down were added before the mail
// reached our server, possibly by the sender, and fields with another
// authserv-id say what someone else claims. That field must show dmarc=pass
// or a dkim=pass whose d= domain is the From domain or a parent of it, and
// no dmarc=fail for the From domain. reason says what was found, for the log and the summary.
func Authenticated(h mail.Header, authservID string) (ok bool, reason string) {
	if authservID == "" {
		return false, "no authserv-id configured"
	}
	from, err := h.AddressList("From")
	if err != nil || len(from) != 1 {
		return false, "From must hold exactly one readable address"
	}
	fromDomain := domainOf(from[0].Address)
	if fromDomain == "" {
		return false, fmt.Sprintf("From address %q has no domain", from[0].Address)
	}
	for _, v := range h.Values("Authentication-Results") {
		id, results, err := authres.Parse(stripComments(v))
		if err != nil {
			// An unreadable field may still be ours: then it is the one
			// that counts, and it vouches for nothing.
			id = strings.TrimSpace(strings.SplitN(stripComments(v), ";", 2)[0])
			if f := strings.Fields(id); len(f) > 0 {
				id = f[0]
			}
			if strings.EqualFold(id, authservID) {
				return false, fmt.Sprintf("topmost Authentication-Results of %s is unreadable: %v", authservID, err)
			}
			continue
		}
		if !strings.EqualFold(id, authservID) {
			continue
		}
		var seen []string
		dkimOK := ""
		for _, r := range results {
			switch r := r.(type) {
			case *authres.DMARCResult:
				d := strings.TrimSuffix(strings.ToLower(strings.Trim(r.From, `"`)), ".")
				if d != "" && d != fromDomain {
					seen = append(seen, "dmarc="+string(r.Value)+" for "+d+" (not the From domain "+fromDomain+")")
					continue
				}
				if r.Value == authres.ResultPass {
					return true, "dmarc=pass for " + fromDomain
				}
				if r.Value == authres.ResultFail {
					// The domain's own policy (strict alignment, say)
					// rejects the mail: no DKIM result can outvote it.
					return false, fmt.Sprintf("topmost Authentication-Results of %s says dmarc=fail for %s", authservID, fromDomain)
				}
				seen = append(seen, "dmarc="+string(r.Value))
			case *authres.DKIMResult:
				d := strings.TrimSuffix(strings.ToLower(strings.Trim(r.Domain, `"`)), ".")
				if d == "" {
					d = domainOf(strings.Trim(r.Identifier, `"`))
				}
				if r.Value == authres.ResultPass && aligned(d, fromDomain) {
					if dkimOK == "" {
						dkimOK = "dkim=pass for " + d + ", aligned with " + fromDomain
					}
					continue
				}
				if r.Value == authres.ResultPass {
					seen = append(seen, "dkim=pass for "+d+" (not aligned with "+fromDomain+")")
				} else {
					seen = append(seen, "dkim="+string(r.Value))
				}
			}
		}
		if dkimOK != "" {
			return true, dkimOK
		}
		if len(seen) == 0 {
			return false, fmt.Sprintf("topmost Authentication-Results of %s has no DKIM or DMARC result", authservID)
		}
		return false, fmt.Sprintf("topmost Authentication-Results of %s says %s", authservID, strings.Join(seen, ", "))
	}
	return false, "no Authentication-Results from " + authservID
}

// aligned reports whether a DKIM signing domain d covers fromDomain: the
// same domain or a parent of it (relaxed alignment). A bare top-level
// domain never counts.
func aligned(d, fromDomain string) bool {
	if d == "" || !strings.Contains(d, ".") {
		return false
	}
	return d == fromDomain || strings.HasSuffix(fromDomain, "."+d)
}

// domainOf returns the lower-case domain of an address, or "".
func domainOf(addr string) string {
	i := strings.LastIndexByte(addr, '@')
	if i < 0 {
		return ""
	}
	return strings.TrimSuffix(strings.ToLower(addr[i+1:]), ".")
}

// stripComments removes RFC 5322 comments, which authres.Parse does not
// understand: OpenDKIM writes "dkim=pass (2048-bit key; unprotected)",
// whose ';' would split the result in two. Quoted strings are kept, with
// any ';' in them blanked for the same reason.
func stripComments(s string) string {
	var b strings.Builder
	depth, quoted, escaped := 0, false, false
	for _, r := range s {
		switch {
		case escaped:
			escaped = false
			if depth == 0 {
				b.WriteRune(r)
			}
			continue
		case r == '\\' && (quoted || depth > 0):
			escaped = true
			if depth == 0 {
				b.WriteRune(r)
			}
			continue
		case quoted:
			if r == '"' {
				quoted = false
			}
			if r == ';' {
				r = ' ' // authres.Parse splits on every ';'
			}
		case r == '"' && depth == 0:
			quoted = true
		case r == '(':
			depth++
			continue
		case r == ')' && depth > 0:
			depth--
			if depth == 0 {
				b.WriteByte(' ')
			}
			continue
		}
		if depth == 0 {
			b.WriteRune(r)
		}
	}
	return b.String()
}
