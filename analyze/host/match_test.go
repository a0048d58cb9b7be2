package host

import (
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestAddrNeedleIndex(t *testing.T) {
	for _, tc := range []struct {
		target, text string
		want         int
	}{
		{"203.0.113.8", "203.0.113.8 - - [x]", 0},
		{"203.0.113.8", "203.0.113.88 - - [x]", -1},
		{"203.0.113.8", "1203.0.113.8 x", -1},
		{"203.0.113.8", "10.203.0.113.8 x", -1},
		{"203.0.113.8", "203.0.113.8.5 x", -1},
		{"203.0.113.8", "ends a sentence: 203.0.113.8.", 17},
		{"203.0.113.8", "203.0.113.88 then 203.0.113.8:443", 18},
		{"203.0.113.8", `"https://203.0.113.8/wp-login.php"`, 9},
		{"203.0.113.8", "::ffff:203.0.113.8", 7},
		{"2001:db8::5", "[2001:db8::5]:443", 1},
		{"2001:db8::5", "2001:db8::50", -1},
		{"2001:db8::5", "2001:db8::5:1", -1},
		{"2001:db8::5", "fe80::2001:db8::5", -1},
		{"2001:db8::5", "2001:0db8:0000:0000:0000:0000:0000:0005 x", 0},
	} {
		got := -1
		for _, n := range addrNeedles(addrs(tc.target)) {
			if i := n.index([]byte(tc.text)); i >= 0 && (got < 0 || i < got) {
				got = i
			}
		}
		if got != tc.want {
			t.Errorf("index(%s in %q) = %d, want %d", tc.target, tc.text, got, tc.want)
		}
	}
}

func TestAddrNeedlesUnmap(t *testing.T) {
	ns := addrNeedles([]netip.Addr{netip.MustParseAddr("::ffff:203.0.113.8")})
	if len(ns) != 1 || string(ns[0].text) != "203.0.113.8" {
		t.Errorf("addrNeedles(::ffff:203.0.113.8) = %+v, want the IPv4 text", ns)
	}
}

func TestHostIndex(t *testing.T) {
	for _, tc := range []struct {
		text string
		want int
	}{
		{"curl https://shop.example.org/wp-login.php", 13},
		{"shop.example.org.", 0},
		{"www.shop.example.org", -1},
		{"myshop.example.org", -1},
		{"shop.example.org.uk", -1},
		{"shop.example.organic", -1},
	} {
		if got := hostIndex([]byte(tc.text), []byte("shop.example.org")); got != tc.want {
			t.Errorf("hostIndex(%q) = %d, want %d", tc.text, got, tc.want)
		}
	}
}

func TestLogName(t *testing.T) {
	pat := "/var/log/apache2/*access*.log"
	for _, tc := range []struct {
		name string
		want bool
	}{
		{"/var/log/apache2/access.log", true},
		{"/var/log/apache2/other_vhosts_access.log", true},
		{"/var/log/apache2/access.log.1", true},
		{"/var/log/apache2/access.log.2.gz", true},
		{"/var/log/apache2/access.log-20260401", true},
		{"/var/log/apache2/access.log-20260401.gz", true},
		{"/var/log/apache2/access.log-2026040112", true},
		{"/var/log/apache2/access.log.gz", true},
		{"/var/log/apache2/access.log.bak", false},
		{"/var/log/apache2/access.log.1.swp", false},
		{"/var/log/apache2/error.log.1", false},
		{"/var/log/apache2/access.log-2026", false},
	} {
		if got := logName(pat, tc.name); got != tc.want {
			t.Errorf("logName(%s, %s) = %v, want %v", pat, tc.name, got, tc.want)
		}
	}
}

func TestURLPath(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"POST /wp-content/uploads/x.php HTTP/1.1", "/wp-content/uploads/x.php"},
		{"GET /wp-content/uploads/x.php?a=1&b=/y HTTP/1.1", "/wp-content/uploads/x.php"},
		{"GET //wp-content/./uploads/../uploads/x.php HTTP/1.0", "/wp-content/uploads/x.php"},
		{"GET /wp-content/uploads/%78.php HTTP/1.1", "/wp-content/uploads/x.php"},
		{"GET http://www.example.com/wp-content/uploads/x.php HTTP/1.1", "/wp-content/uploads/x.php"},
		{"/wp-content/uploads/x.php", "/wp-content/uploads/x.php"},
	} {
		if got, ok := urlPath(tc.in); !ok || got != tc.want {
			t.Errorf("urlPath(%q) = %q, %v; want %q", tc.in, got, ok, tc.want)
		}
	}
	if _, ok := urlPath("-"); ok {
		t.Error(`urlPath("-") ok, want not`)
	}
}

func TestFlaggedScriptURLs(t *testing.T) {
	for _, tc := range []struct {
		root, path string
		want       []string
	}{
		{"/var/www/html", "/var/www/html/wp-content/x.php", []string{"/wp-content/x.php"}},
		{"/var/www", "/var/www/html/wp-content/x.php", []string{"/html/wp-content/x.php", "/wp-content/x.php"}},
		{"/srv/www", "/srv/www/example.com/public_html/x.php", []string{"/example.com/public_html/x.php", "/public_html/x.php", "/x.php"}},
		{"/var/www", "/var/www/html/x.php", []string{"/html/x.php", "/x.php"}},
		{"/var/www", "/var/www/shop/x.php", []string{"/shop/x.php"}},
	} {
		if got := newFlaggedScript(tc.root, tc.path).urls; !slices.Equal(got, tc.want) {
			t.Errorf("newFlaggedScript(%s, %s).urls = %q, want %q", tc.root, tc.path, got, tc.want)
		}
	}
}

func TestAccessTime(t *testing.T) {
	line := []byte(`198.51.100.7 - - [20/Apr/2026:23:02:14 +0200] "GET / HTTP/1.1" 200 1`)
	got, ok := accessTime(line)
	if want := abuseTime.Add(2*time.Minute + 14*time.Second); !ok || !got.Equal(want) {
		t.Errorf("accessTime(%s) = %v, %v; want %v", line, got, ok, want)
	}
	if _, ok := accessTime([]byte("no time here")); ok {
		t.Error("accessTime(no time) ok, want not")
	}
	if !strings.Contains(human(62*time.Minute), "1 h 2 min") {
		t.Errorf("human(62m) = %q", human(62*time.Minute))
	}
}
