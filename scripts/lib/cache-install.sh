# Shared by the scripts that install a pinned tool into the project cache (scripts/install-*.sh,
# scripts/build-grpc-go-client.sh, scripts/bench-dataplane/install-*.sh); sourced, not run.
# Each script sets `cache` (the cache folder) and `bin` (what it prints when done), then:
#   cache_lock NAME CHECK   parallel callers (test files run at once) serialise on
#                           $cache/.NAME.lock; a caller that waited finds the tool installed
#                           (CHECK succeeds), prints $bin and exits 0
#   cache_scratch NAME      a scratch folder in the cache, $scratch, removed on exit unless...
#   cache_into_place DEST   ...it is renamed to DEST (replacing it): an interrupted install never
#                           leaves a half-filled folder that a later run would trust
#   debian_download SUITE DIR PKG...
#                           downloads Debian packages of SUITE into DIR/archives with apt-get,
#                           with its own sources list and lists under DIR: the system's apt state
#                           is never read or written
# stdout carries only $bin; everything else goes to stderr.

cache_lock() {
  mkdir -p "$cache"
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$cache/.$1.lock"
    flock 9
    if "$2"; then echo "$bin"; exit 0; fi
  fi
}

cache_scratch() {
  scratch="$(mktemp -d "$cache/.$1.XXXXXX")"
  trap 'rm -rf "$scratch"' EXIT
}

cache_into_place() {
  mkdir -p "$(dirname "$1")"
  rm -rf "$1"
  mv "$scratch" "$1"
  trap - EXIT
}

debian_download() {
  local suite="$1" dir="$2"
  shift 2
  mkdir -p "$dir/lists/partial" "$dir/archives/partial"
  echo "deb http://deb.debian.org/debian $suite main" >"$dir/sources.list"
  local opts=(-o "Dir::Etc::sourcelist=$dir/sources.list" -o "Dir::Etc::sourceparts=-"
    -o "Dir::State::Lists=$dir/lists" -o "Dir::Cache::archives=$dir/archives"
    -o "Dir::Cache::pkgcache=" -o "Dir::Cache::srcpkgcache=" -o "APT::Get::List-Cleanup=0" -o "APT::Sandbox::User=root")
  apt-get "${opts[@]}" -qq update >&2
  (cd "$dir/archives" && apt-get "${opts[@]}" -qq download "$@" >&2)
}
