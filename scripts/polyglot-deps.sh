#!/usr/bin/env bash
# Install what the polyglot capture tests (tests/polyglot/) run, cached under ~/.cache/llmrel and keyed
# by the files that pin it, and print where it is on stdout (progress goes to stderr):
#   node  npm packages of tests/polyglot/node (npm ci from its package-lock.json) -> the node_modules directory
#   java  the OpenTelemetry Java agent and openai-java from Maven Central (tests/polyglot/java/pom.xml)
#         -> a directory holding agent/opentelemetry-javaagent-*.jar and lib/*.jar
# A later run with the same pins only prints the cached path.
#
# Environment:
#   LLMREL_CACHE  cache directory (default: ${XDG_CACHE_HOME:-$HOME/.cache}/llmrel)
set -euo pipefail

repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cache_dir="${LLMREL_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/llmrel}"
log() { printf 'polyglot-deps: %s\n' "$*" >&2; }
key_of() { cat "$@" | sha256sum | cut -c1-12; }

mkdir -p "$cache_dir"
exec 9>"$cache_dir/polyglot.lock"
flock 9  # one install at a time; a waiting run then finds the finished one

case "${1:-}" in
  node)
    command -v npm >/dev/null || { log "Node.js and npm are required (npm not found)"; exit 1; }
    src="$repo_root/tests/polyglot/node"
    dir="$cache_dir/node-$(key_of "$src/package.json" "$src/package-lock.json")"
    if [[ ! -d "$dir/node_modules" ]]; then
      log "installing the Node.js test app's packages (npm ci) into $dir"
      work="$(mktemp -d "$cache_dir/node.XXXXXX")"
      trap 'rm -rf "$work"' EXIT
      cp "$src/package.json" "$src/package-lock.json" "$work/"
      (cd "$work" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
      rm -rf "$dir"
      mv "$work" "$dir"
    fi
    echo "$dir/node_modules"
    ;;
  java)
    command -v mvn >/dev/null || { log "Maven is required (mvn not found)"; exit 1; }
    pom="$repo_root/tests/polyglot/java/pom.xml"
    dir="$cache_dir/java-$(key_of "$pom")"
    if [[ ! -d "$dir/lib" ]]; then
      log "fetching the OpenTelemetry Java agent and openai-java (Maven) into $dir"
      work="$(mktemp -d "$cache_dir/java.XXXXXX")"
      trap 'rm -rf "$work"' EXIT
      mvn=(mvn -B -q -f "$pom" "-Dmaven.repo.local=$cache_dir/m2")
      "${mvn[@]}" dependency:copy-dependencies -DincludeScope=runtime "-DoutputDirectory=$work/lib" >&2
      "${mvn[@]}" dependency:copy-dependencies -DincludeArtifactIds=opentelemetry-javaagent \
        "-DoutputDirectory=$work/agent" >&2
      rm -rf "$dir"
      mv "$work" "$dir"
    fi
    echo "$dir"
    ;;
  *)
    log "usage: $0 node|java"
    exit 2
    ;;
esac
