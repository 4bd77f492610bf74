#!/usr/bin/env bash
# Installs grpcurl (github.com/fullstorydev/grpcurl) into the project cache with `go install`, for
# the CSDS test that asks the server the way operators would. Idempotent: when the cached binary
# exists and runs, it prints its path and exits at once (the folder is named after the pinned
# version: `go install` builds report "dev build", not their version). stdout carries only
# the path; everything else goes to stderr. Needs Go; fails (exit 1) without it.
# Overrides: GRPCURL_VERSION (pin), CONSUL_XDS_CACHE (cache folder).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${CONSUL_XDS_CACHE:-$root/.cache}"
version="${GRPCURL_VERSION:-v1.9.3}"
dest="$cache/grpcurl/$version"
bin="$dest/grpcurl"
# shellcheck source=lib/cache-install.sh
. "$root/scripts/lib/cache-install.sh"

runs() { [ -x "$bin" ] && "$bin" -version >/dev/null 2>&1; }

if runs; then echo "$bin"; exit 0; fi
if ! command -v go >/dev/null 2>&1; then
  echo "install-grpcurl: go is not installed; set GRPCURL_BIN to a grpcurl binary instead" >&2
  exit 1
fi
cache_lock grpcurl-install runs
cache_scratch grpcurl-install
GOBIN="$scratch" GOFLAGS=-buildvcs=false go install "github.com/fullstorydev/grpcurl/cmd/grpcurl@$version" >&2
cache_into_place "$dest"
runs || { echo "install-grpcurl: $bin does not run" >&2; exit 1; }
echo "$bin"
