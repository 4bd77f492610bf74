#!/usr/bin/env bash
# Installs Debian's consul (bullseye, 1.8.7) into the project cache without touching the system's apt state.
# Idempotent: prints the binary path and exits at once when it is already there.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${CONSUL_XDS_CACHE:-$root/.cache}"
dest="$cache/consul"
bin="$dest/usr/bin/consul"
if [ -x "$bin" ]; then echo "$bin"; exit 0; fi
apt_dir="$cache/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/archives/partial" "$dest"
echo "deb http://deb.debian.org/debian bullseye main" > "$apt_dir/sources.list"
opts=(-o "Dir::Etc::sourcelist=$apt_dir/sources.list" -o "Dir::Etc::sourceparts=-"
      -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::archives=$apt_dir/archives"
      -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "APT::Get::List-Cleanup=0" -o "APT::Sandbox::User=root")
apt-get "${opts[@]}" -qq update >&2
(cd "$apt_dir/archives" && apt-get "${opts[@]}" -qq download consul >&2)
deb="$(ls "$apt_dir"/archives/consul_*.deb | head -n1)"
dpkg -x "$deb" "$dest"
"$bin" version >&2
echo "$bin"
