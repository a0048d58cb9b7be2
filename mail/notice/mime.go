package notice

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-message"
	// The charset package registers decoders for windows-1252, ISO-8859-x and
	// the rest; without it such parts come back undecoded.
	_ "github.com/emersion/go-message/charset"
	"github.com/emersion/go-message/mail"
)

// Limits bound the work spent on one message, so that a hostile mail (a huge
// body, a MIME bomb) ends with an error instead of eating the daemon.
type Limits struct {
	MaxBytes int // raw message size
	MaxParts int // MIME parts in the whole tree, attached messages included
	MaxDepth int // nesting of multiparts and attached messages
}

// DefaultLimits are generous for real notices, which are a few kilobytes,
// and for forwarded ones that carry a spam sample or a log attachment.
var DefaultLimits = Limits{MaxBytes: 16 << 20, MaxParts: 200, MaxDepth: 12}

// ErrTooLarge and ErrTooComplex report a message that exceeds Limits.
var (
	ErrTooLarge   = errors.New("message too large")
	ErrTooComplex = errors.New("message too complex")
)

// part is one message in the MIME tree: the top-level mail or an attached
// message/rfc822, with its text collected in document order.
type part struct {
	header   mail.Header
	plain    []string // text/plain bodies, decoded to UTF-8
	html     []string // text/html bodies, decoded to UTF-8
	attached []*part  // attached messages
}

// text is the readable body: the plain-text parts, or the HTML parts turned
// into text when there is no plain text.
func (p *part) text() string {
	if len(p.plain) > 0 {
		return strings.Join(p.plain, "\n")
	}
	out := make([]string, len(p.html))
	for i, h := range p.html {
		out[i] = htmlToText(h)
	}
	return strings.Join(out, "\n")
}

type walker struct {
	lim   Limits
	parts int
}

// readMessage decodes raw into a tree of parts, within lim.
func readMessage(raw []byte, lim Limits) (*part, error) {
	if len(raw) > lim.MaxBytes {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrTooLarge, len(raw), lim.MaxBytes)
	}
	w := &walker{lim: lim}
	return w.message(bytes.NewReader(raw), 0)
}

func (w *walker) message(r io.Reader, depth int) (*part, error) {
	e, err := message.Read(r)
	if err != nil && !tolerable(err) {
		return nil, fmt.Errorf("read message header: %w", err)
	}
	p := &part{header: mail.Header{Header: e.Header}}
	if err := w.entity(e, p, depth); err != nil {
		return nil, err
	}
	return p, nil
}

// tolerable reports errors after which go-message still returns a readable
// entity: an unknown charset or transfer encoding leaves the bytes as they
// are, which is better than losing the notice.
func tolerable(err error) bool {
	return message.IsUnknownCharset(err) || message.IsUnknownEncoding(err)
}

func (w *walker) entity(e *message.Entity, into *part, depth int) error {
	w.parts++
	if w.parts > w.lim.MaxParts {
		return fmt.Errorf("%w: more than %d MIME parts", ErrTooComplex, w.lim.MaxParts)
	}
	if depth > w.lim.MaxDepth {
		return fmt.Errorf("%w: MIME nesting deeper than %d", ErrTooComplex, w.lim.MaxDepth)
	}
	if mr := e.MultipartReader(); mr != nil {
		for {
			child, err := mr.NextPart()
			if err == io.EOF {
				return nil
			}
			if err != nil && !tolerable(err) {
				return fmt.Errorf("read MIME part: %w", err)
			}
			if child == nil {
				return nil
			}
			if err := w.entity(child, into, depth+1); err != nil {
				return err
			}
		}
	}
	mediaType, params, _ := e.Header.ContentType()
	disp, dispParams, _ := e.Header.ContentDisposition()
	switch {
	case mediaType == "message/rfc822" || mediaType == "message/global" ||
		(disp == "attachment" && strings.HasSuffix(strings.ToLower(dispParams["filename"]+params["name"]), ".eml")):
		inner, err := w.message(e.Body, depth+1)
		if err != nil {
			return fmt.Errorf("attached message: %w", err)
		}
		into.attached = append(into.attached, inner)
		return nil
	// Body read errors are ignored on purpose: the message is already in
	// memory, so an error can only be a broken base64 or quoted-printable
	// sequence, and a damaged tail must not cost the readable text above it.
	case disp == "attachment":
		// Attachments other than messages are not the notice; skip them.
		io.Copy(io.Discard, e.Body)
	case mediaType == "text/plain" || mediaType == "":
		b, _ := io.ReadAll(e.Body)
		into.plain = append(into.plain, string(b))
	case mediaType == "text/html":
		b, _ := io.ReadAll(e.Body)
		into.html = append(into.html, string(b))
	default:
		io.Copy(io.Discard, e.Body)
	}
	return nil
}
