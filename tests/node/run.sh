#!/usr/bin/env bash
# Real MCP clients from npm against a real server: the MCP Inspector CLI's `--strict`
# portability check on tools/list for an owner key (fails on any error or warning), and the
# official TypeScript SDK client, which must print no warning while listing and calling tools.
#
#   bash tests/node/run.sh
#
# Environment:
#   CARGO_TARGET_DIR          cargo target directory      (default: target)
#   RAPPORT_NODE_SKIP_BUILD=1 use the existing debug binary
#   NODE_DIR                  where npm packages go        (default: target/node-clients)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
# An absolute CARGO_TARGET_DIR (one target/ shared by several checkouts) stays as it is.
[[ $TARGET_DIR == /* ]] || TARGET_DIR="$ROOT/$TARGET_DIR"
BIN="$TARGET_DIR/debug/rapport"
NODE_DIR="${NODE_DIR:-$TARGET_DIR/node-clients}"

NAME=node
# shellcheck source=tests/serve.sh
source tests/serve.sh

log() { printf '[node] %s\n' "$*" >&2; }

command -v node >/dev/null || { log "node is not installed"; exit 1; }
mkdir -p "$NODE_DIR"
cp tests/node/package.json tests/node/ts_client.mjs "$NODE_DIR/"
if [[ ! -d "$NODE_DIR/node_modules/@modelcontextprotocol/sdk" || ! -d "$NODE_DIR/node_modules/@modelcontextprotocol/inspector" ]]; then
    log "npm install (node $(node --version))"
    (cd "$NODE_DIR" && npm install --no-audit --no-fund --loglevel=error >/dev/null)
fi
ensure_binary "${RAPPORT_NODE_SKIP_BUILD:-0}"

setup_scratch
export RAPPORT_DATABASE_URL="sqlite://$TMP/rapport.db" RAPPORT_LOG=warn
KEY="$("$BIN" keys create --name node-clients --role owner --json | python3 -c 'import sys, json; print(json.load(sys.stdin)["key"])')"
start_server
URL="$BASE/api/v1/mcp"

for profile in lean full; do
    log "MCP Inspector --strict on tools/list ($profile profile)"
    set +e
    (cd "$NODE_DIR" && node_modules/.bin/mcp-inspector --cli "$URL?profile=$profile" --transport http --header "x-api-key: $KEY" \
        --method tools/list --stored-auth-only --strict >"$TMP/tools.json" 2>"$TMP/strict.txt")
    status=$?
    set -e
    if [[ $status -ne 0 ]] || grep -Eq '(Warning|Error):|[1-9][0-9]* (errors|warnings)' "$TMP/strict.txt"; then
        cat "$TMP/strict.txt" >&2
        log "the Inspector found portability problems in the $profile profile (exit $status)"
        exit 1
    fi
    log "inspector ($profile): $(python3 -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["tools"]), "tools, 0 errors, 0 warnings")' "$TMP/tools.json")"
done

log "TypeScript SDK client"
(cd "$NODE_DIR" && node ts_client.mjs "$URL" "$KEY")
echo "3 passed, 0 failed"
