#!/usr/bin/env bash
# Regenerates src/proxy/codec/http2/huffman-table.ts from golang.org/x/net's HPACK encoder (see main.go).
# Needs Go (the module comes from the Go module proxy); builds into .cache/, writes the table only on success.
# Not needed at build or test time: the generated table is committed.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
src="$root/scripts/gen-hpack-huffman"
bin="${CONSUL_XDS_CACHE:-$root/.cache}/gen-hpack-huffman/gen"
out="$root/src/proxy/codec/http2/huffman-table.ts"
mkdir -p "$(dirname "$bin")" "$(dirname "$out")"
(cd "$src" && GOFLAGS=-buildvcs=false go build -o "$bin" .)
"$bin" >"$out.tmp"
mv "$out.tmp" "$out"
echo "$out"
