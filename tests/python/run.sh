#!/usr/bin/env bash
# End-to-end test of the MCP endpoint with the official MCP Python SDK (v2).
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

log() { printf '[py-e2e] %s\n' "$*" >&2; }

# --- Python environment ------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating virtualenv $VENV ($("$PYTHON" --version 2>&1))"
    "$PYTHON" -m venv "$VENV"
fi
REQ_HASH="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
if [[ "$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)" != "$REQ_HASH" ]]; then
    log "installing $HERE/requirements.txt"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
    echo "$REQ_HASH" >"$VENV/.requirements.sha256"
fi
log "mcp $("$VENV/bin/python" -c 'import importlib.metadata as m; print(m.version("mcp"))')"

# --- server binary -------------------------------------------------------------------------
if [[ "${RAPPORT_PY_SKIP_BUILD:-0}" != 1 ]]; then
    log "cargo build --bin rapport"
    cargo build --bin rapport
fi
[[ -x "$BIN" ]] || { log "no server binary at $BIN"; exit 1; }

# --- scratch space, database, key ------------------------------------------------------------
TMP="$(mktemp -d "${TMPDIR:-/tmp}/rapport-py-e2e.XXXXXX")"
SERVER_PID=""
cleanup() {
    local status=$?
    if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 1 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
    if [[ $status -ne 0 && -f "$TMP/server.out" ]]; then
        log "failed (exit $status); last server output:"
        tail -n 60 "$TMP/server.out" >&2 || true
    fi
    rm -rf "$TMP"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

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
RAPPORT_ADDR=127.0.0.1:0 "$BIN" serve >"$TMP/server.out" 2>&1 &
SERVER_PID=$!

BASE=""
DEADLINE=$((SECONDS + 30))
while ((SECONDS < DEADLINE)); do
    # Strip ANSI colour codes in case the log line is styled.
    BASE="$(sed 's/\x1b\[[0-9;]*m//g' "$TMP/server.out" \
        | grep -oE 'rapport listening on http://[][A-Za-z0-9.:_-]+' | head -n1 \
        | sed 's/^rapport listening on //')" || true
    [[ -n "$BASE" ]] && break
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
        log "server exited before it was listening"
        exit 1
    fi
    sleep 0.1
done
if [[ -z "$BASE" ]]; then
    log "no 'rapport listening on http://HOST:PORT' line within 30 s"
    exit 1
fi

export RAPPORT_URL="$BASE/api/v1/mcp"
export RAPPORT_KEY
log "server at $BASE (pid $SERVER_PID)"

# --- tests ---------------------------------------------------------------------------------
# The tests carry their own timeouts; this outer one only guards against a wedged interpreter.
timeout --kill-after=10 600 "$VENV/bin/python" -m pytest "$HERE/test_mcp_client.py" \
    -p no:cacheprovider -ra -v "$@"
