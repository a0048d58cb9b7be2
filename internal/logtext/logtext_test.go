package logtext

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestLower(t *testing.T) {
	in := "SRC=198.51.100.1 DST İSTANBUL Ünïcode ABCxyz"
	got := Lower(in)
	if want := "src=198.51.100.1 dst İstanbul Ünïcode abcxyz"; got != want {
		t.Errorf("Lower(%q) = %q, want %q", in, got, want)
	}
	if len(got) != len(in) {
		t.Errorf("Lower changed the length: %d, want %d", len(got), len(in))
	}
}

func TestContainsAny(t *testing.T) {
	if !ContainsAny("blocked packet", "drop", "block") {
		t.Error("ContainsAny missed block")
	}
	if ContainsAny("accepted", "drop", "block") || ContainsAny("anything") {
		t.Error("ContainsAny found what is not there")
	}
}

func TestIsWordByte(t *testing.T) {
	for _, c := range []byte("azAZ09_") {
		if !IsWordByte(c) {
			t.Errorf("IsWordByte(%q) = false", c)
		}
	}
	for _, c := range []byte(" =:-.[\t\xc3") {
		if IsWordByte(c) {
			t.Errorf("IsWordByte(%q) = true", c)
		}
	}
}

// pairsString writes pairs as key@value-offset for comparison.
func pairsString(ps []Pair) string {
	var b strings.Builder
	for _, p := range ps {
		fmt.Fprintf(&b, "%s@%d ", p.Key, p.Value)
	}
	return strings.TrimSpace(b.String())
}

func TestPairs(t *testing.T) {
	tests := []struct {
		lower      string
		pairs      string // Pairs
		labelPairs string // LabelPairs
	}{
		{"src=1.2.3.4 dst=5.6.7.8 dpt=22", "src@4 dst@16 dpt@28", "src@4 dst@16 dpt@28"},
		{"[ufw block] in=eth0 proto=tcp", "in@15 proto@26", "in@15 proto@26"},
		{"dst= 5.6.7.8", "dst@4", "dst@5"},             // only LabelPairs skips blanks
		{"destination: 5.6.7.8", "", "destination@13"}, // only LabelPairs reads "key: value"
		{"dst:\t5.6.7.8", "", "dst@5"},
		{"x1dst=5.6.7.8 _a=1", "_a@17", "_a@17"}, // a key must not follow a word byte
		{"=1 a==2 ==", "a@5", "a@5"},             // no key before '=' or at offset 0
		{"dst_ip=1 dst-ip=2", "dst_ip@7 ip@16", "dst_ip@7 ip@16"},
		{"time 18:59:01", "", ""}, // digits are not keys
		{"", "", ""},
	}
	for _, tt := range tests {
		if got := pairsString(Pairs(tt.lower)); got != tt.pairs {
			t.Errorf("Pairs(%q) = %q, want %q", tt.lower, got, tt.pairs)
		}
		if got := pairsString(LabelPairs(tt.lower)); got != tt.labelPairs {
			t.Errorf("LabelPairs(%q) = %q, want %q", tt.lower, got, tt.labelPairs)
		}
	}
}

func TestLeading(t *testing.T) {
	for in, want := range map[string]string{"22 spt": "22", "1234567": "12345", "x1": "", "": "", "443,": "443"} {
		if got := LeadingDigits(in); got != want {
			t.Errorf("LeadingDigits(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"tcp spt": "tcp", "udp_lite_proto": "udp_lite", "17)": "17", " tcp": "", "": ""} {
		if got := LeadingWord(in); got != want {
			t.Errorf("LeadingWord(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestProto(t *testing.T) {
	for in, want := range map[string]string{"TCP": "tcp", " udp ": "udp", "6": "tcp", "17": "udp", "icmp": "", "": "", "tcp6": ""} {
		if got := Proto(in); got != want {
			t.Errorf("Proto(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLineProto(t *testing.T) {
	for in, want := range map[string]string{
		"stratum+tcp://pool.example:3333":   "tcp",
		"port 53/UDP open":                  "udp",
		"TCP SYN flood":                     "tcp",
		"GET / HTTP/1.1":                    "",
		"smtp connection; tcpdump attached": "",
		"":                                  "",
	} {
		if got := LineProto(in); got != want {
			t.Errorf("LineProto(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLinear checks that a hostile line of a million separators costs
// linear time.
func TestLinear(t *testing.T) {
	line := strings.Repeat("a=", 1<<19) + strings.Repeat(": ", 1<<19)
	start := time.Now()
	if n := len(LabelPairs(line)); n != 1<<19 {
		t.Errorf("LabelPairs found %d pairs, want %d", n, 1<<19)
	}
	Pairs(line)
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("a 2 MB line took %v", d)
	}
}
