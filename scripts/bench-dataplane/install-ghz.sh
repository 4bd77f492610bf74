#!/usr/bin/env bash
# Installs ghz (a gRPC load generator written in Go) into the project cache with `go install`
# from the Go module proxy. Idempotent: when the cached binary runs, it prints its path and exits
# at once. stdout carries only the path; everything else goes to stderr.
# Overrides: GHZ_VERSION (pin), CONSUL_XDS_CACHE (cache folder).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${CONSUL_XDS_CACHE:-$root/.cache}"
version="${GHZ_VERSION:-v0.93.0}"
dest="$cache/ghz/$version"
bin="$dest/ghz"
# shellcheck source=../lib/cache-install.sh
. "$root/scripts/lib/cache-install.sh"

runs() { [ -x "$bin" ] && "$bin" --version >/dev/null 2>&1; }

if runs; then echo "$bin"; exit 0; fi
if ! command -v go >/dev/null 2>&1; then
  echo "install-ghz: 'go' is not on PATH; install Go, or put a ghz binary at $bin" >&2
  exit 1
fi
cache_lock ghz-install runs
cache_scratch ghz-install
echo "install-ghz: go install github.com/bojand/ghz/cmd/ghz@$version (the first build downloads modules)" >&2
GOBIN="$scratch" go install "github.com/bojand/ghz/cmd/ghz@$version" >&2
cache_into_place "$dest"
"$bin" --version >&2
echo "$bin"
