#!/usr/bin/env bash
# The project's test command (README, .ci/run): formatting, vet, and every
# test with the race detector. It installs what the tests need when it is
# missing, so it runs on a fresh machine as root.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v go >/dev/null || { echo "go is not installed: see README (Go 1.26)"; exit 1; }
command -v dovecot >/dev/null || [ -x /usr/sbin/dovecot ] || need_apt+=(dovecot-imapd)  # mail: IMAP integration tests
command -v nft >/dev/null || [ -x /usr/sbin/nft ] || need_apt+=(nftables)                # remediate/nft: the nft CLI cross-checks our rules
command -v ip >/dev/null || [ -x /usr/sbin/ip ] || need_apt+=(iproute2)                  # network namespaces for the nftables tests
# Tests that need a package skip with the reason when it is missing and
# this script cannot install it (not root); CI runs as root and runs them all.
if [ ${#need_apt[@]} -gt 0 ] && [ "$(id -u)" = 0 ]; then
  apt-get update -qq
  apt-get install -y --no-install-recommends "${need_apt[@]}"
fi

echo "== gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
  echo "gofmt would change:"; echo "$unformatted"; exit 1
fi
echo "== go vet"
go vet ./...
echo "== go test -race"
go test -race -count=1 ./...
