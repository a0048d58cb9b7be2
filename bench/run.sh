#!/usr/bin/env bash
# Benchmarks of the mail loop on a real Dovecot (bench/README.md).
#
#   bench/run.sh                      # the full run: latency, raw fetch, backlog (about 10 min on 2 cores)
#   bench/run.sh -backlog-n 1000      # any flag of bench/mailloop is passed on (-help lists them)
#
# Needs root and Dovecot 2.3 (apt-get install dovecot-imapd). Progress goes
# to stderr; the Markdown table of results to stdout. The build, the table,
# the progress log and a CPU profile of the backlog run stay in $OUT.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" != 0 ]; then
	echo "bench/run.sh: run as root: Dovecot switches to the mail uid" >&2
	exit 2
fi
if ! command -v dovecot >/dev/null && [ ! -x /usr/sbin/dovecot ]; then
	echo "bench/run.sh: dovecot is not installed: apt-get install -y --no-install-recommends dovecot-imapd" >&2
	exit 2
fi

OUT=${OUT:-$(mktemp -d /tmp/abuse-responder-bench-out.XXXXXX)}
mkdir -p "$OUT"
go build -o "$OUT/mailloop" ./bench/mailloop

rev=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then rev="$rev+dirty"; fi
echo "Code: commit $rev." | tee "$OUT/results.md"

status=0
"$OUT/mailloop" -cpuprofile "$OUT/cpu.pprof" "$@" \
	2> >(tee "$OUT/progress.log" >&2) | tee -a "$OUT/results.md" || status=$?
wait

echo
echo "results: $OUT/results.md; progress: $OUT/progress.log"
if [ -s "$OUT/cpu.pprof" ]; then
	echo "CPU profile of the backlog run: go tool pprof -top $OUT/mailloop $OUT/cpu.pprof"
fi
exit "$status"
