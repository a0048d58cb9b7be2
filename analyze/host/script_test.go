package host

import (
	"context"
	"strings"
	"testing"
)

func TestInspectScript(t *testing.T) {
	c := newCollector(context.Background(), Options{Targets: addrs("203.0.113.44"), TargetHosts: []string{"Shop.Example.org."}})
	for _, tc := range []struct {
		name, content string
		line          int    // 0: not flagged
		reason        string // a part of the reason
	}{
		{"infected", infectedPHP, 6, "contains target 203.0.113.44"},
		{"clean plugin", cleanFiles["wp-content/plugins/hello/hello.php"], 0, ""},
		{"wp-config", cleanFiles["wp-config.php"], 0, ""},
		// WordPress's own Requests library: a curl_multi loop alone is not enough.
		{"requests library", "<?php\nclass Curl {\n public function request_multiple($requests) {\n  $multihandle = curl_multi_init();\n  do {\n   $status = curl_multi_exec($multihandle, $subrequestcount);\n  } while ($status === CURLM_CALL_MULTI_PERFORM);\n }\n}\n", 0, ""},
		{"pop3", "<?php\n$fp = fsockopen($server, $port, $errno, $errstr, 30);\n", 0, ""},
		{"eval base64", "<?php\n\n@eval(base64_decode('ZWNobyAxOw=='));\n", 3, "an eval(base64_decode(…)) payload"},
		{"eval spaced", "<?php\nEVAL ( @gzinflate(base64_decode($x)));\n", 2, "an eval(gzinflate(…)) payload"},
		{"not eval", "<?php\nmy_eval(base64_decode($x));\n$evaluation(base64_decode($y));\n", 0, ""},
		{"assert", "<?php\n@assert($_POST['c']);\n", 2, "assert() on request input"},
		{"eval post", "<?php\neval($_REQUEST['c']);\n", 2, "eval() on request input"},
		{"preg e", "<?php\npreg_replace('/.*/e', $_GET['x'], '');\n", 2, "preg_replace with the /e modifier"},
		{"preg no e", "<?php\npreg_replace('/[^a-z]/i', '', $s);\npreg_replace(\"#^(.+)$#sm\", '$1', $s);\n", 0, ""},
		{"target host", "#!/bin/sh\nwhile true; do curl -s https://SHOP.example.org/ >/dev/null; done\n", 2, "contains target host shop.example.org"},
		{"other host", "#!/bin/sh\ncurl -s https://www.shop.example.org/\n", 0, ""},
		{"exact address", "<?php $u = 'http://203.0.113.444/';\n", 0, ""},
		{"xmlrpc multicall", "<?php\n$url = 'http://victim.example/xmlrpc.php';\n$body = '<methodName>system.multicall</methodName>';\n", 2, "a remote xmlrpc.php URL (http://victim.example/xmlrpc.php) and an xmlrpc system.multicall"},
		{"fsockopen loop + wp-login", "<?php\nforeach ($hosts as $h) {\n $s = fsockopen($h, 80);\n fwrite($s, \"POST /wp-login.php HTTP/1.0\\r\\n\");\n}\n$u='https://x.example/wp-login.php';\n", 3, "an fsockopen loop and a remote wp-login.php URL"},
		{"password file loop", "<?php\nforeach ($items as $w) { echo $w; }\nforeach (file('/tmp/passwords.txt') as $p) { post($p); }\n$u = \"https://t.example/wp-login.php\";\n", 3, "a password-list loop"},
	} {
		pos, reason, ok, _ := c.inspectScript([]byte(tc.content), nil)
		line := 0
		if ok {
			line = lineAt([]byte(tc.content), pos)
		}
		if line != tc.line || !strings.Contains(reason, tc.reason) {
			t.Errorf("inspectScript(%s) = line %d, %q; want line %d, %q", tc.name, line, reason, tc.line, tc.reason)
		}
	}
}

func TestTargetsText(t *testing.T) {
	tests := []struct {
		names []string
		want  string
	}{
		{[]string{"203.0.113.5"}, "contains target 203.0.113.5"},
		{[]string{"203.0.113.5", "203.0.113.6"}, "contains targets 203.0.113.5, 203.0.113.6"},
		{[]string{"a", "b", "c", "d", "e", "f", "g"}, "contains targets a, b, c, d, e and 2 more"},
	}
	for _, tt := range tests {
		if got := targetsText("contains target", tt.names); got != tt.want {
			t.Errorf("targetsText(%q) = %q, want %q", tt.names, got, tt.want)
		}
	}
}
