#!/usr/bin/env bash
# Build the llmrel OpenTelemetry Collector distribution with the official builder (ocb) from
# collector-config/builder-config.yaml, cache the binary, and print its absolute path on stdout.
#
# The cache key hashes the manifest, the ocb release and the Go version, so a later run with
# the same inputs only prints the cached path. Progress goes to stderr.
#
# Environment:
#   LLMREL_COLLECTOR_CACHE  cache directory (default: ${XDG_CACHE_HOME:-$HOME/.cache}/llmrel)
#   LLMREL_COLLECTOR_FORCE  set to 1 to rebuild even when the cached binary exists
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
manifest="$repo_root/collector-config/builder-config.yaml"
cache_dir="${LLMREL_COLLECTOR_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llmrel}"

log() { printf 'build-collector: %s\n' "$*" >&2; }

command -v go >/dev/null || { log "Go is required (go command not found)"; exit 1; }

# ocb is released with the collector core; take its version from the manifest's otlp receiver.
ocb_version="$(sed -n 's#.*go\.opentelemetry\.io/collector/receiver/otlpreceiver \(v[0-9][0-9.]*\).*#\1#p' "$manifest")"
[[ -n "$ocb_version" ]] || { log "cannot read the collector release from $manifest"; exit 1; }

go_version="$(go env GOVERSION)"
key="$( { cat "$manifest"; echo "$ocb_version $go_version $(go env GOOS)/$(go env GOARCH)"; } \
        | sha256sum | cut -c1-12)"
binary="$cache_dir/otelcol-llmrel-$key"

mkdir -p "$cache_dir"
exec 9>"$cache_dir/build.lock"
flock 9  # one build at a time; a waiting run then finds the finished binary

if [[ -x "$binary" && "${LLMREL_COLLECTOR_FORCE:-0}" != 1 ]]; then
    log "cached: $binary"
    echo "$binary"
    exit 0
fi

ocb_dir="$cache_dir/ocb-$ocb_version"
if [[ ! -x "$ocb_dir/builder" ]]; then
    log "installing ocb $ocb_version from the Go module proxy"
    GOBIN="$ocb_dir" go install "go.opentelemetry.io/collector/cmd/builder@$ocb_version"
fi

work="$(mktemp -d "$cache_dir/build.XXXXXX")"
trap 'rm -rf "$work"' EXIT
log "building otelcol-llmrel ($ocb_version, $go_version) in $work"
start=$SECONDS
# output_path in the manifest is relative: run ocb from the scratch directory.
(cd "$work" && CGO_ENABLED=0 "$ocb_dir/builder" --config="$manifest" --ldflags="-s -w" >&2)
mv "$work/otelcol-llmrel/otelcol-llmrel" "$binary.tmp"
mv "$binary.tmp" "$binary"
log "built in $((SECONDS - start)) s: $binary"
echo "$binary"
