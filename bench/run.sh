#!/usr/bin/env bash
# One command for the whole benchmark: installs the Node peer (pinned, from the committed
# lockfile) and runs every scenario against every server. Extra arguments go to `python -m bench`
# (e.g. `bench/run.sh --quick`, `bench/run.sh --only fanout --servers opendpia,y-websocket`).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
python="${PYTHON:-$root/.venv/bin/python}"

if [[ ! -d "$here/node/node_modules/@y/websocket-server" ]] ||
   [[ "$here/node/package-lock.json" -nt "$here/node/node_modules/.package-lock.json" ]]; then
  (cd "$here/node" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
fi
"$python" -c "import psutil, pycrdt.websocket, pycrdt.store" 2>/dev/null ||
  "$python" -m pip install --quiet "psutil>=5.9" "pycrdt-websocket>=0.16,<0.17"

cd "$root"
exec "$python" -m bench "$@"
