#!/usr/bin/env bash
# Installs Debian's wrk (bookworm, 4.1.0) and the LuaJIT library it links into the project cache,
# without touching the system's apt state (the same way scripts/install-consul.sh installs consul).
# Idempotent: when the cached wrk runs, it prints the wrapper's path and exits at once. stdout
# carries only the path; everything else goes to stderr. The wrapper sets LD_LIBRARY_PATH to the
# cached LuaJIT, so the system needs no libluajit package.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cache="${CONSUL_XDS_CACHE:-$root/.cache}"
dest="$cache/wrk"
bin="$dest/wrk"
# shellcheck source=../lib/cache-install.sh
. "$root/scripts/lib/cache-install.sh"

runs() { [ -x "$bin" ] && { "$bin" -v 2>&1 || true; } | grep -q '^wrk '; }

if runs; then echo "$bin"; exit 0; fi
cache_lock wrk-install runs
# Its own apt folder: install-consul.sh points $cache/apt at bullseye.
debian_download bookworm "$cache/apt-bookworm" wrk libluajit2-5.1-2 libluajit2-5.1-common
cache_scratch wrk-install
for pkg in wrk libluajit2-5.1-2 libluajit2-5.1-common; do
  dpkg -x "$(ls "$cache"/apt-bookworm/archives/"${pkg}"_*.deb | head -n1)" "$scratch/root"
done
# The wrapper names the final folder; it runs once renamed there.
cat >"$scratch/wrk" <<WRAP
#!/bin/sh
LD_LIBRARY_PATH="$dest/root/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$dest/root/usr/bin/wrk" "\$@"
WRAP
chmod +x "$scratch/wrk"
cache_into_place "$dest"
if ! runs; then echo "install-wrk: $bin does not run" >&2; "$bin" -v >&2 || true; exit 1; fi
echo "$bin"
