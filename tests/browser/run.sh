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

NAME=browser
# shellcheck source=tests/serve.sh
source tests/serve.sh

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
ensure_venv "$VENV" "$HERE/requirements.txt"
export AXE_JS="$NODE_DIR/node_modules/axe-core/axe.min.js"
if [[ ! -f "$AXE_JS" ]]; then
    log "installing axe-core into $NODE_DIR"
    mkdir -p "$NODE_DIR"
    cp "$HERE/package.json" "$NODE_DIR/package.json"
    (cd "$NODE_DIR" && npm install --silent --no-audit --no-fund >/dev/null)
fi

# --- server ---------------------------------------------------------------------------------
ensure_binary "${RAPPORT_BROWSER_SKIP_BUILD:-0}"

setup_scratch

export RAPPORT_DATABASE_URL="${RAPPORT_BROWSER_DATABASE_URL:-sqlite://$TMP/rapport.db}"
export NO_COLOR=1 PYTHONDONTWRITEBYTECODE=1
log "database: ${RAPPORT_DATABASE_URL%%://*}://…"

# The webhooks test's receiver listens on 127.0.0.1 over plain http.
export RAPPORT_WEBHOOK_ALLOW_PRIVATE=true

# The setup link `serve` prints on an empty database is where the tests begin.
SETUP_RE='http://[^ ]+/setup\?token=[A-Za-z0-9_-]+'
start_server "$SETUP_RE" || { log "(is the database empty? only then is there a setup link)"; exit 1; }
LINK="$(server_output | grep -oE "$SETUP_RE" | head -n1)"

export RAPPORT_BASE="$BASE" RAPPORT_SETUP_LINK="$LINK" RAPPORT_BIN="$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")"
# The CLI steps of the tests print links for this server.
export RAPPORT_PUBLIC_URL="$BASE"

timeout --kill-after=10 900 "$VENV/bin/python" -m pytest "$HERE/test_console.py" -p no:cacheprovider -ra -v "$@"
