#!/usr/bin/env bash
# End-to-end tests: the MCP endpoint with the official MCP Python SDK (v2), the REST API
# driven from its OpenAPI document (validated with openapi-spec-validator), and webhook
# deliveries verified by the Standard Webhooks library.
#
#   bash tests/python/run.sh [pytest args…]
#
# Environment:
#   VENV                     virtualenv to use/create        (default: target/py-venv)
#   PYTHON                   interpreter that creates it     (default: python3)
#   CARGO_TARGET_DIR         cargo target directory          (default: target)
#   RAPPORT_PY_DATABASE_URL  database for the server         (default: a fresh SQLite file in a temp dir)
#   RAPPORT_PY_SKIP_BUILD=1  use the existing debug binary without running cargo build
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

HERE="tests/python"
VENV="${VENV:-target/py-venv}"
PYTHON="${PYTHON:-python3}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET_DIR/debug/rapport"

NAME=py-e2e
# shellcheck source=tests/serve.sh
source tests/serve.sh

log() { printf '[py-e2e] %s\n' "$*" >&2; }

# --- Python environment ------------------------------------------------------------------
ensure_venv "$VENV" "$HERE/requirements.txt"
log "mcp $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))')"

# --- server binary -------------------------------------------------------------------------
ensure_binary "${RAPPORT_PY_SKIP_BUILD:-0}"

# --- scratch space, database, key ------------------------------------------------------------
setup_scratch

export RAPPORT_DATABASE_URL="${RAPPORT_PY_DATABASE_URL:-sqlite://$TMP/rapport.db}"
export NO_COLOR=1 PYTHONDONTWRITEBYTECODE=1
log "database: ${RAPPORT_DATABASE_URL%%://*}://…"

if ! "$BIN" keys create --name py-e2e --role owner --json >"$TMP/key.json" 2>"$TMP/key.err"; then
    log "'rapport keys create' failed:"
    cat "$TMP/key.err" >&2
    exit 1
fi
RAPPORT_KEY="$("$VENV/bin/python" -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"])' "$TMP/key.json")" || {
    log "could not read .key from 'rapport keys create --json' output:"
    cat "$TMP/key.json" >&2
    exit 1
}

# --- server --------------------------------------------------------------------------------
# The webhook test's receiver listens on 127.0.0.1.
export RAPPORT_WEBHOOK_ALLOW_PRIVATE=true
start_server

export RAPPORT_URL="$BASE/api/v1/mcp"
export RAPPORT_KEY

# --- tests ---------------------------------------------------------------------------------
# The tests carry their own timeouts; this outer one only guards against a wedged interpreter.
export RAPPORT_BASE="$BASE"
timeout --kill-after=10 600 "$VENV/bin/python" -m pytest "$HERE/test_mcp_client.py" "$HERE/test_rest_openapi.py" \
    "$HERE/test_webhooks.py" \
    -p no:cacheprovider -ra -v "$@"
