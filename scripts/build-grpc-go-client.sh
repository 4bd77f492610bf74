#!/usr/bin/env bash
# Builds the grpc-go xDS client of the make-before-break test (test/fixtures/grpc-go-client) into
# the project cache. Idempotent: when the binary exists and is newer than its sources, it prints
# its path and exits at once. stdout carries only the path; everything else goes to stderr. Needs
# Go (modules come from the Go module proxy on the first build); fails (exit 1) without it.
# Overrides: CONSUL_XDS_CACHE (cache folder).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${CONSUL_XDS_CACHE:-$root/.cache}"
src="$root/test/fixtures/grpc-go-client"
bin="$cache/grpc-go-client/client"
# shellcheck source=lib/cache-install.sh
. "$root/scripts/lib/cache-install.sh"

fresh() { [ -x "$bin" ] && [ -z "$(find "$src" -newer "$bin" -type f)" ]; }

if fresh; then echo "$bin"; exit 0; fi
if ! command -v go >/dev/null 2>&1; then
  echo "build-grpc-go-client: go is not installed" >&2
  exit 1
fi
cache_lock grpc-go-client fresh
mkdir -p "$cache/grpc-go-client"
# Build beside the target and rename it into place: an interrupted build leaves nothing a later run trusts.
(cd "$src" && GOFLAGS=-buildvcs=false go build -o "$bin.tmp" .) >&2
mv "$bin.tmp" "$bin"
echo "$bin"
