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
wrapper="$dest/wrk"
runs() { [ -x "$wrapper" ] && { "$wrapper" -v 2>&1 || true; } | grep -q '^wrk '; }
if runs; then echo "$wrapper"; exit 0; fi

# Its own apt folder: install-consul.sh points $cache/apt at bullseye.
apt_dir="$cache/apt-bookworm"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$dest/root"
echo "deb http://deb.debian.org/debian bookworm main" > "$apt_dir/sources.list"
opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=-"
      -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::archives=$apt_dir/archives"
      -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "APT::Get::List-Cleanup=0" -o "APT::Sandbox::User=root")
apt-get "${opts[@]}" -qq update >&2
(cd "$apt_dir/archives" && apt-get "${opts[@]}" -qq download wrk libluajit2-5.1-2 libluajit2-5.1-common >&2)
for pkg in wrk libluajit2-5.1-2 libluajit2-5.1-common; do
  dpkg -x "$(ls "$apt_dir"/archives/"${pkg}"_*.deb | head -n1)" "$dest/root"
done
cat > "$wrapper" <<WRAP
#!/bin/sh
LD_LIBRARY_PATH="$dest/root/usr/lib/x86_64-linux-gnu\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$dest/root/usr/bin/wrk" "\$@"
WRAP
chmod +x "$wrapper"
if ! runs; then echo "install-wrk: $wrapper does not run" >&2; "$wrapper" -v >&2 || true; exit 1; fi
echo "$wrapper"
