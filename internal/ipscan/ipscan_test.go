package ipscan

import (
	"strings"
	"testing"
)

func TestHits(t *testing.T) {
	tests := []struct {
		line string
		want []string // address[:port] of each hit
	}{
		{"SRC=198.51.100.31 DST=203.0.113.8 DPT=22", []string{"198.51.100.31", "203.0.113.8"}},
		{"DST=203.0.113.88 and 203.0.113.8.", []string{"203.0.113.88", "203.0.113.8"}},
		{"198.51.100.31:51522 -> 192.0.2.250:3333", []string{"198.51.100.31:51522", "192.0.2.250:3333"}},
		{"masked 54.186.XXX.XXX 34.xx.xx.40 203.0.113.* 198.51.100.■ 203.0.113.1*", nil},
		{"range 198.51.100.0/24 and version 1.2.3.4.5", nil},
		{"v6 2001:0DB8:0000:0000:0000:0000:0000:0042 and [2001:db8::1]:443", []string{"2001:db8::42", "[2001:db8::1]:443"}},
		{"mapped ::ffff:198.51.100.1", []string{"198.51.100.1"}},
		{"banned:198.51.100.41", []string{"198.51.100.41"}},
		{"time 18:59:01 and 12:00", nil},
	}
	for _, tt := range tests {
		var got []string
		for _, h := range Hits(tt.line) {
			s := h.Addr.String()
			if h.Port > 0 {
				if h.Addr.Is6() {
					s = "[" + s + "]"
				}
				s += ":" + itoa(h.Port)
			}
			got = append(got, s)
		}
		if strings.Join(got, " ") != strings.Join(tt.want, " ") {
			t.Errorf("Hits(%q) = %v, want %v", tt.line, got, tt.want)
		}
	}
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestAt(t *testing.T) {
	line := "client: 198.51.100.9, server: x"
	h, ok := At(line, len("client: "))
	if !ok || h.Addr.String() != "198.51.100.9" || h.Start != 0 {
		t.Errorf("At(%q, 8) = %v, %v, want 198.51.100.9 at 0", line, h, ok)
	}
	if _, ok := At(line, 0); ok {
		t.Errorf("At(%q, 0) found an address at a word", line)
	}
}

func TestHostName(t *testing.T) {
	tests := map[string]string{
		`"shop.example.org"`: "shop.example.org",
		"Shop.Example.ORG.":  "shop.example.org",
		"203.0.113.5":        "",
		"localhost":          "",
		"ec2-198-51-100-88.eu-west-1.compute.amazonaws.com": "",
	}
	for in, want := range tests {
		if got := HostName(in); got != want {
			t.Errorf("HostName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestHitsLinear(t *testing.T) {
	for _, s := range []string{strings.Repeat("1.1.1.1.", 1<<16), strings.Repeat("a:b:", 1<<16), strings.Repeat("1.2.3.4 ", 1<<15)} {
		Hits(s)
		At(s, 0)
	}
}
