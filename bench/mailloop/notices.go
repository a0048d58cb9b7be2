package main

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"time"
)

// benchMX is the authserv-id of "our" MX: the daemon trusts only
// Authentication-Results headers that carry it.
const benchMX = "mx.bench.example"

// noticeTemplate is daemon/testdata/notice.eml with LF line ends.
type noticeTemplate struct {
	lines []string
	nonce string
}

var subjectCase = regexp.MustCompile(`\[\d{11}-\d+\]`)

func loadTemplate(path string) (*noticeTemplate, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	text := strings.ReplaceAll(string(raw), "\r\n", "\n")
	t := &noticeTemplate{lines: strings.SplitAfter(text, "\n"), nonce: fmt.Sprintf("%x", time.Now().UnixNano())}
	var subj, date, msgID bool
	for _, l := range t.lines {
		if l == "\n" {
			break
		}
		subj = subj || strings.HasPrefix(l, "Subject: ") && subjectCase.MatchString(l)
		date = date || strings.HasPrefix(l, "Date: ")
		msgID = msgID || strings.HasPrefix(l, "Message-ID: ")
	}
	if !subj || !date || !msgID {
		return nil, fmt.Errorf("%s: want a Subject with a [case id], a Date and a Message-ID in the header", path)
	}
	return t, nil
}

// caseID is the i-th bench case: 1305117xxxx-1.
func caseID(i int) string { return fmt.Sprintf("1305117%04d-1", i) }

// notice is the template as a fresh, distinct notice for caseID: that ID
// in the Subject, its own Message-ID, today's Date, and our MX's DMARC
// pass on top. crlf gives wire line ends (APPEND); Maildir files keep LF.
func (t *noticeTemplate) notice(phase, caseID string, crlf bool) []byte {
	var b bytes.Buffer
	b.WriteString("Authentication-Results: " + benchMX + "; dmarc=pass header.from=support.aws.com\n")
	inHeader := true
	for _, l := range t.lines {
		if inHeader {
			switch {
			case l == "\n":
				inHeader = false
			case strings.HasPrefix(l, "Subject: "):
				l = subjectCase.ReplaceAllLiteralString(l, "["+caseID+"]")
			case strings.HasPrefix(l, "Date: "):
				l = "Date: " + time.Now().UTC().Format(time.RFC1123Z) + "\n"
			case strings.HasPrefix(l, "Message-ID: "):
				l = "Message-ID: <bench-" + phase + "-" + caseID + "-" + t.nonce + "@amazon.com>\n"
			}
		}
		b.WriteString(l)
	}
	if !crlf {
		return b.Bytes()
	}
	return bytes.ReplaceAll(b.Bytes(), []byte("\n"), []byte("\r\n"))
}

// summaryCase finds the case ID in a summary's Subject
// ("[abuse-responder] Case 13051170042-1: Port Scanning").
var summaryCase = regexp.MustCompile(`(?m)^Subject: .*Case (\d{11}-\d+)`)

func caseOfSummary(raw []byte) string {
	head := raw
	if i := bytes.Index(raw, []byte("\r\n\r\n")); i >= 0 {
		head = raw[:i]
	}
	m := summaryCase.FindSubmatch(head)
	if m == nil {
		return ""
	}
	return string(m[1])
}
