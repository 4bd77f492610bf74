#!/usr/bin/env bash
# The test runner behind `npm test` (which runs `tsc` first). Fetches real Envoy and Consul into
# the cache, exports ENVOY_BIN and CONSUL_BIN, then runs every compiled unit and integration test
# with node's test runner. A binary that cannot be installed fails the run: the real-Envoy and
# real-Consul tests are never skipped.
# Overrides: ENVOY_BIN / CONSUL_BIN / GRPC_GO_CLIENT / GRPCURL_BIN (use these binaries, install nothing), TEST_CONCURRENCY
# (test files run at once), TEST_TIMEOUT_MS (per test); arguments replace the file list.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cd "$root"

install() { # $1 = script, $2 = what; prints the binary path or fails the run
  local out
  if ! out="$(bash "scripts/$1" </dev/null)" || [ -z "$out" ] || [ ! -x "$out" ]; then
    echo "test.sh: could not install $2 (scripts/$1); the integration tests need it, so the run fails" >&2
    exit 1
  fi
  echo "$out"
}

ENVOY_BIN="${ENVOY_BIN:-$(install install-envoy.sh Envoy)}"
CONSUL_BIN="${CONSUL_BIN:-$(install install-consul.sh Consul)}"
# Two Go-built clients (Go modules from the proxy on the first build): grpc-go's own xDS client
# for the make-before-break test, grpcurl for the CSDS test.
GRPC_GO_CLIENT="${GRPC_GO_CLIENT:-$(install build-grpc-go-client.sh 'the grpc-go xDS client')}"
GRPCURL_BIN="${GRPCURL_BIN:-$(install install-grpcurl.sh grpcurl)}"
for b in "$ENVOY_BIN" "$CONSUL_BIN" "$GRPC_GO_CLIENT" "$GRPCURL_BIN"; do
  if [ ! -x "$b" ]; then echo "test.sh: $b is not an executable" >&2; exit 1; fi
done
export ENVOY_BIN CONSUL_BIN GRPC_GO_CLIENT GRPCURL_BIN
for v in ENVOY_BIN CONSUL_BIN GRPC_GO_CLIENT GRPCURL_BIN; do echo "test.sh: $v=${!v}" >&2; done

if [ "$#" -gt 0 ]; then
  files=("$@")
else
  files=()
  # Unit tests sit in folders that mirror src/ (src/config/ -> test/unit/config/, ...).
  # tsc never deletes outputs: run only compiled tests whose source still exists.
  while IFS= read -r f; do
    src="${f#dist/}"; src="${src%.js}.ts"
    if [ -f "$src" ]; then files+=("$f"); else echo "test.sh: skipping stale $f (no $src)" >&2; fi
  done < <(for d in dist/test/unit dist/test/integration; do find "$d" -name '*.test.js' -type f 2>/dev/null | LC_ALL=C sort; done)
  if [ "${#files[@]}" -eq 0 ]; then
    echo "test.sh: no compiled tests under dist/test; run 'npx tsc -p .' first (npm test does)" >&2
    exit 1
  fi
fi

# Two cores: two files at a time keeps one Envoy + one app busy per core without starving the
# timing-sensitive integration tests. Every test binds ephemeral ports, so files never collide.
concurrency="${TEST_CONCURRENCY:-2}"
# A hung test fails loudly after this long instead of stalling CI forever.
timeout_ms="${TEST_TIMEOUT_MS:-240000}"
start=$(date +%s)
status=0
node --test --test-concurrency="$concurrency" --test-timeout="$timeout_ms" --test-reporter=spec "${files[@]}" || status=$?
echo "test.sh: ${#files[@]} test files in $(( $(date +%s) - start ))s, exit $status" >&2
exit "$status"
