package host

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// scriptExts are the extensions whose content is checked. .ico and .txt are
// there because droppers hide PHP in them and include() it.
var scriptExts = map[string]bool{
	".php": true, ".phtml": true, ".php3": true, ".php4": true, ".php5": true, ".php7": true,
	".pht": true, ".phar": true, ".inc": true, ".pl": true, ".py": true, ".sh": true, ".cgi": true,
	".js": true, ".rb": true, ".asp": true, ".aspx": true, ".jsp": true, ".ico": true, ".suspected": true,
}

// docrootNames are directory names that usually sit between a web root such
// as /var/www and the URL root: /var/www/html, /srv/www/example.com/public_html.
var docrootNames = map[string]bool{
	"html": true, "public_html": true, "htdocs": true, "httpdocs": true, "www": true, "public": true, "web": true, "wwwroot": true,
}

// maxFileFindings bounds the "recently modified" findings: a cache folder
// can hold thousands, and past this they drown the scripts.
const maxFileFindings = 1000

// flaggedScript is a script found in a web root, for the log scans.
type flaggedScript struct {
	path string   // the file
	urls []string // URL paths it may be served under, such as /wp-content/uploads/x.php
	base []byte   // its base name, the literal the log scans prefilter with
}

// scanWebRoots walks each web root and checks scripts and modification times.
func (c *collector) scanWebRoots() {
	w := webWalk{c: c}
	for _, root := range c.o.WebRoots {
		if c.stopped() || w.full {
			return
		}
		w.walk(root)
	}
	if w.recent > maxFileFindings {
		c.problem("%d more files modified near the window were not listed (cap %d)", w.recent-maxFileFindings, maxFileFindings)
	}
	if w.big > 0 {
		c.problem("web roots: %d scripts larger than %d bytes were not read (MaxFileRead); only their times were checked", w.big, c.o.MaxFileRead)
	}
	if w.unreadable > 0 {
		c.problem("web roots: %d files or folders could not be read (first: %v)", w.unreadable, w.firstErr)
	}
}

// webWalk is the state of the walk over all web roots.
type webWalk struct {
	c          *collector
	files      int
	recent     int
	full       bool
	big        int // scripts too large to read
	unreadable int
	firstErr   error
	buf, lower []byte
}

func (w *webWalk) fail(err error) {
	if w.unreadable == 0 {
		w.firstErr = err
	}
	w.unreadable++
}

func (w *webWalk) walk(root string) {
	c := w.c
	real, err := filepath.EvalSymlinks(root) // the root itself may be a link, as /var/www often is
	if err != nil {
		c.pathProblem("web root", root, err)
		return
	}
	if fi, err := os.Stat(real); err != nil || !fi.IsDir() {
		c.problem("web root %s is not a directory", root)
		return
	}
	_ = filepath.WalkDir(real, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			w.fail(err)
			if d != nil && d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if c.stopped() {
			return fs.SkipAll
		}
		if !d.Type().IsRegular() { // directories are walked; links and devices are never followed
			return nil
		}
		if w.files >= c.o.MaxFiles {
			c.problem("web roots: stopped after %d files (MaxFiles)", c.o.MaxFiles)
			w.full = true
			return fs.SkipAll
		}
		w.files++
		info, err := d.Info()
		if err != nil {
			w.fail(err)
			return nil
		}
		w.file(real, p, info)
		return nil
	})
}

// file checks one regular file: its content when it is a script small
// enough, else its modification time.
func (w *webWalk) file(root, p string, info fs.FileInfo) {
	c := w.c
	mod := info.ModTime()
	recent := !mod.Before(c.o.From.Add(-24*time.Hour)) && !mod.After(c.o.To)
	script := scriptExts[strings.ToLower(filepath.Ext(p))]
	if script && info.Size() > c.o.MaxFileRead {
		w.big++
	}
	if script && info.Size() <= c.o.MaxFileRead {
		content, err := readSmall(p, c.o.MaxFileRead, w.buf)
		w.buf = content
		if err != nil {
			w.fail(err)
		} else {
			var pos int
			var reason string
			var ok bool
			pos, reason, ok, w.lower = c.inspectScript(content, w.lower)
			if ok {
				if recent {
					reason += "; " + c.modified(mod)
				}
				c.add(Finding{Kind: KindScript, Path: p, Line: lineAt(content, pos), Reason: reason})
				c.scripts = append(c.scripts, newFlaggedScript(root, p))
				return
			}
		}
	}
	if recent {
		w.recent++
		if w.recent <= maxFileFindings {
			c.add(Finding{Kind: KindFile, Path: p, Reason: c.modified(mod)})
		}
	}
}

// modified says when a file changed relative to the window, for a human.
func (c *collector) modified(t time.Time) string {
	s := "modified " + t.UTC().Format("2006-01-02 15:04 UTC") + ", "
	switch {
	case t.Before(c.o.From):
		return s + human(c.o.From.Sub(t)) + " before the abuse window starts"
	default:
		return s + human(c.o.To.Sub(t)) + " before the abuse window ends"
	}
}

// human formats d as "3 h 12 min" or "4 min" or "20 s".
func human(d time.Duration) string {
	d = d.Round(time.Second)
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%d s", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%d min", int(d.Minutes()))
	}
	return fmt.Sprintf("%d h %d min", int(d.Hours()), int(d.Minutes())%60)
}

// newFlaggedScript works out the URL paths a script may be served under.
// The web root may be a folder above the document root (/var/www holding
// html/ or example.com/public_html/), so leading folders that look like a
// document root or a virtual host name are dropped one by one as well.
func newFlaggedScript(root, p string) flaggedScript {
	rel, err := filepath.Rel(root, p)
	if err != nil {
		rel = filepath.Base(p)
	}
	parts := strings.Split(filepath.ToSlash(rel), "/")
	s := flaggedScript{path: p, base: []byte(path.Base(filepath.ToSlash(p)))}
	for i := 0; i < len(parts); i++ {
		s.urls = append(s.urls, "/"+strings.Join(parts[i:], "/"))
		if i >= 3 || i == len(parts)-1 || !(docrootNames[parts[i]] || strings.Contains(parts[i], ".")) {
			break
		}
	}
	return s
}

// openRead opens a file read-only, without updating its access time when
// the kernel allows it (the owner or root): atime is evidence too.
func openRead(p string) (*os.File, error) {
	f, err := os.OpenFile(p, os.O_RDONLY|syscall.O_NOATIME, 0)
	if errors.Is(err, syscall.EPERM) {
		f, err = os.Open(p)
	}
	return f, err
}

// readSmall reads at most limit bytes of p into buf's space.
func readSmall(p string, limit int64, buf []byte) ([]byte, error) {
	f, err := openRead(p)
	if err != nil {
		return buf[:0], err
	}
	defer f.Close()
	buf = buf[:0]
	for int64(len(buf)) < limit {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := f.Read(buf[len(buf):min(cap(buf), int(limit))])
		buf = buf[:len(buf)+n]
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			return buf, fmt.Errorf("read %s: %w", p, err)
		}
	}
	return buf, nil
}
