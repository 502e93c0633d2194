#!/usr/bin/env bash
# Build tests/clickhouse_go (a clickhouse-go v2 client over HTTP, as Grafana's ClickHouse datasource
# uses it) with modules from the Go module proxy, cache the binary, and print its path on stdout.
# The cache key hashes the program's sources, go.mod/go.sum and the Go version.
#
# Environment: LLMREL_COLLECTOR_CACHE  cache directory (default: ${XDG_CACHE_HOME:-$HOME/.cache}/llmrel)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$repo_root/tests/clickhouse_go"
cache_dir="${LLMREL_COLLECTOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llmrel}"

log() { printf 'build-chgo: %s\n' "$*" >&2; }
command -v go >/dev/null || { log "Go is required (go command not found)"; exit 1; }

key="$( { cat "$src"/*.go "$src/go.mod" "$src/go.sum"; go env GOVERSION GOOS GOARCH; } | sha256sum | cut -c1-12)"
binary="$cache_dir/chgo-$key"
mkdir -p "$cache_dir"
exec 9>"$cache_dir/build-chgo.lock"
flock 9
if [[ ! -x "$binary" ]]; then
    log "building $binary"
    (cd "$src" && CGO_ENABLED=0 go build -mod=readonly -trimpath -o "$binary.tmp" .)
    mv "$binary.tmp" "$binary"
fi
echo "$binary"
