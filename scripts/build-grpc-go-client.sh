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

fresh() { [ -x "$bin" ] && [ -z "$(find "$src" -newer "$bin" -type f)" ]; }

if fresh; then echo "$bin"; exit 0; fi
if ! command -v go >/dev/null 2>&1; then
  echo "build-grpc-go-client: go is not installed" >&2
  exit 1
fi
mkdir -p "$cache/grpc-go-client"
if command -v flock >/dev/null 2>&1; then
  exec 9>"$cache/.grpc-go-client.lock"
  flock 9
  if fresh; then echo "$bin"; exit 0; fi
fi
# Build beside the target and rename it into place: an interrupted build leaves nothing a later run trusts.
(cd "$src" && GOFLAGS=-buildvcs=false go build -o "$bin.tmp" .) >&2
mv "$bin.tmp" "$bin"
echo "$bin"
