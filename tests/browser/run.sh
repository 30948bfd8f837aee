#!/usr/bin/env bash
# The web console in a real browser: Playwright (PyPI) drives Debian's Chromium against a
# fresh `rapport serve`; axe-core (npm) checks each page's accessibility.
#
#   bash tests/browser/run.sh [pytest args…]
#
# Environment:
#   VENV                          virtualenv to use/create   (default: target/browser-venv)
#   PYTHON                        interpreter that creates it (default: python3)
#   CHROMIUM                      browser executable          (default: /usr/bin/chromium; apt-installed when missing and root)
#   CARGO_TARGET_DIR              cargo target directory      (default: target)
#   RAPPORT_BROWSER_DATABASE_URL  an EMPTY database for the server (default: a fresh SQLite file)
#   RAPPORT_BROWSER_SKIP_BUILD=1  use the existing debug binary
#   SCREENSHOTS                   where the screenshots go    (default: target/console-screenshots;
#                                 docs/console refreshes the README's)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

HERE="tests/browser"
VENV="${VENV_BROWSER:-target/browser-venv}"
PYTHON="${PYTHON:-python3}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET_DIR/debug/rapport"
NODE_DIR="$TARGET_DIR/browser-node"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"

log() { printf '[browser] %s\n' "$*" >&2; }

# --- the browser ----------------------------------------------------------------------------
if [[ ! -x "$CHROMIUM" ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        log "installing Debian's chromium"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null \
            || { apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }
    fi
    [[ -x "$CHROMIUM" ]] || { log "no browser at $CHROMIUM (apt-get install chromium)"; exit 1; }
fi
log "$("$CHROMIUM" --version 2>/dev/null || echo chromium)"

# --- Python and npm packages ------------------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]]; then
    log "creating virtualenv $VENV"
    "$PYTHON" -m venv "$VENV"
fi
REQ_HASH="$(sha256sum "$HERE/requirements.txt" | cut -d' ' -f1)"
if [[ "$(cat "$VENV/.requirements.sha256" 2>/dev/null || true)" != "$REQ_HASH" ]]; then
    log "installing $HERE/requirements.txt"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r "$HERE/requirements.txt"
    echo "$REQ_HASH" >"$VENV/.requirements.sha256"
fi
export AXE_JS="$NODE_DIR/node_modules/axe-core/axe.min.js"
if [[ ! -f "$AXE_JS" ]]; then
    log "installing axe-core into $NODE_DIR"
    mkdir -p "$NODE_DIR"
    cp "$HERE/package.json" "$NODE_DIR/package.json"
    (cd "$NODE_DIR" && npm install --silent --no-audit --no-fund >/dev/null)
fi

# --- server ---------------------------------------------------------------------------------
if [[ "${RAPPORT_BROWSER_SKIP_BUILD:-0}" != 1 ]]; then
    log "cargo build --bin rapport"
    cargo build --bin rapport
fi
[[ -x "$BIN" ]] || { log "no server binary at $BIN"; exit 1; }

TMP="$(mktemp -d "${TMPDIR:-/tmp}/rapport-browser.XXXXXX")"
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
        tail -n 40 "$TMP/server.out" >&2 || true
    fi
    rm -rf "$TMP"
    exit $status
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

export RAPPORT_DATABASE_URL="${RAPPORT_BROWSER_DATABASE_URL:-sqlite://$TMP/rapport.db}"
export NO_COLOR=1 PYTHONDONTWRITEBYTECODE=1
log "database: ${RAPPORT_DATABASE_URL%%://*}://…"

RAPPORT_ADDR=127.0.0.1:0 "$BIN" serve >"$TMP/server.out" 2>&1 &
SERVER_PID=$!
BASE="" LINK=""
DEADLINE=$((SECONDS + 30))
while ((SECONDS < DEADLINE)); do
    OUT="$(sed 's/\x1b\[[0-9;]*m//g' "$TMP/server.out")"
    BASE="$(grep -oE 'rapport listening on http://[][A-Za-z0-9.:_-]+' <<<"$OUT" | head -n1 | sed 's/^rapport listening on //')" || true
    LINK="$(grep -oE 'http://[^ ]+/setup\?token=[A-Za-z0-9_-]+' <<<"$OUT" | head -n1)" || true
    [[ -n "$BASE" && -n "$LINK" ]] && break
    kill -0 "$SERVER_PID" 2>/dev/null || { log "server exited early"; exit 1; }
    sleep 0.1
done
[[ -n "$BASE" && -n "$LINK" ]] || { log "no listening line and setup link within 30 s (is the database empty?)"; exit 1; }

export RAPPORT_BASE="$BASE" RAPPORT_SETUP_LINK="$LINK" RAPPORT_BIN="$ROOT/$BIN"
# The CLI steps of the tests print links for this server.
export RAPPORT_PUBLIC_URL="$BASE"
log "server at $BASE (pid $SERVER_PID)"

timeout --kill-after=10 900 "$VENV/bin/python" -m pytest "$HERE/test_console.py" -p no:cacheprovider -ra -v "$@"
