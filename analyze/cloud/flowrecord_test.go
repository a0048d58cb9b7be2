package cloud

import (
	"net/netip"
	"testing"
	"time"
)

func TestParseRecord(t *testing.T) {
	for _, tc := range []struct {
		msg     string
		want    flowRecord
		wantErr bool
	}{
		{
			msg: "2 123456789012 eni-1 10.0.1.5 203.0.113.10 49152 22 6 10 600 1776132000 1776132060 ACCEPT OK",
			want: flowRecord{iface: "eni-1", dst: netip.MustParseAddr("203.0.113.10"), dstPort: 22, protocol: "tcp",
				packets: 10, bytes: 600, start: time.Unix(1776132000, 0).UTC(), end: time.Unix(1776132060, 0).UTC(), action: "ACCEPT", status: "OK"},
		},
		{
			msg: "2 123456789012 eni-1 10.0.1.5 2001:db8::1 0 0 58 1 64 1776132000 1776132060 REJECT OK",
			want: flowRecord{iface: "eni-1", dst: netip.MustParseAddr("2001:db8::1"), protocol: "icmpv6",
				packets: 1, bytes: 64, start: time.Unix(1776132000, 0).UTC(), end: time.Unix(1776132060, 0).UTC(), action: "REJECT", status: "OK"},
		},
		{
			msg:  "2 123456789012 eni-1 - - - - - - - 1776132000 1776132060 - NODATA",
			want: flowRecord{iface: "eni-1", start: time.Unix(1776132000, 0).UTC(), end: time.Unix(1776132060, 0).UTC(), action: "-", status: "NODATA"},
		},
		{msg: "2 123456789012 eni-1 10.0.1.5", wantErr: true},
		{msg: "2 123456789012 eni-1 10.0.1.5 not-an-ip 1 22 6 10 600 1776132000 1776132060 ACCEPT OK", wantErr: true},
		{msg: "2 123456789012 eni-1 10.0.1.5 203.0.113.10 1 22 6 10 600 soon later ACCEPT OK", wantErr: true},
	} {
		got, err := defaultLayout.parseRecord(tc.msg)
		if (err != nil) != tc.wantErr || got != tc.want {
			t.Errorf("parseRecord(%q) = %+v, %v; want %+v, error %v", tc.msg, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestParseLayout(t *testing.T) {
	l, err := parseLayout("${end} ${start} ${interface-id} ${dstaddr} ${dstport} ${protocol} ${packets} ${bytes} ${action} ${log-status}")
	if err != nil || l.end != 0 || l.start != 1 || l.n != 10 {
		t.Errorf("parseLayout(custom) = %+v, %v", l, err)
	}
	if _, err := parseLayout("${version} ${srcaddr}"); err == nil {
		t.Errorf("parseLayout without dstaddr: no error")
	}
}

func TestProtocolName(t *testing.T) {
	for in, want := range map[string]string{"-1": "all", "6": "tcp", "17": "udp", "1": "icmp", "58": "icmpv6", "tcp": "tcp", "47": "47"} {
		if got := ProtocolName(in); got != want {
			t.Errorf("ProtocolName(%q) = %q, want %q", in, got, want)
		}
	}
}
