#!/usr/bin/env bash
# Installs Debian's consul (bullseye, 1.8.7) into the project cache without touching the system's
# apt state. Idempotent: when the cached binary runs, it prints its path and exits at once. stdout
# carries only the path; everything else goes to stderr.
# Overrides: CONSUL_XDS_CACHE (cache folder).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${CONSUL_XDS_CACHE:-$root/.cache}"
dest="$cache/consul"
bin="$dest/usr/bin/consul"
# shellcheck source=lib/cache-install.sh
. "$root/scripts/lib/cache-install.sh"

runs() { [ -x "$bin" ] && "$bin" version >/dev/null 2>&1; }

if runs; then echo "$bin"; exit 0; fi
cache_lock consul-install runs
debian_download bullseye "$cache/apt" consul
cache_scratch consul-install
dpkg -x "$(ls "$cache"/apt/archives/consul_*.deb | head -n1)" "$scratch"
cache_into_place "$dest"
runs || { echo "install-consul: $bin does not run" >&2; exit 1; }
"$bin" version >&2
echo "$bin"
