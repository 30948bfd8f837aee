#!/usr/bin/env bash
# The REST API as schemathesis (PyPI) finds it: every operation of the served OpenAPI
# document, fuzzed with a key, against a fresh server. It must find no 5xx, no answer that
# breaks its schema, its documented status codes, content type or headers, and no crash.
#
#   bash tests/schemathesis/run.sh [schemathesis args…]
#
# Environment:
#   VENV_SCHEMATHESIS                 virtualenv            (default: target/schemathesis-venv)
#   PYTHON                            interpreter           (default: python3)
#   CARGO_TARGET_DIR                  cargo target dir      (default: target)
#   RAPPORT_SCHEMATHESIS_DATABASE_URL the server's database (default: a fresh SQLite file)
#   RAPPORT_SCHEMATHESIS_SKIP_BUILD=1 use the existing debug binary
#   SCHEMATHESIS_EXAMPLES             examples per operation (default: 20)
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"

HERE="tests/schemathesis"
VENV="${VENV_SCHEMATHESIS:-target/schemathesis-venv}"
PYTHON="${PYTHON:-python3}"
TARGET_DIR="${CARGO_TARGET_DIR:-target}"
BIN="$TARGET_DIR/debug/rapport"

NAME=schemathesis
# shellcheck source=tests/serve.sh
source tests/serve.sh

log() { printf '[schemathesis] %s\n' "$*" >&2; }

ensure_venv "$VENV" "$HERE/requirements.txt"

ensure_binary "${RAPPORT_SCHEMATHESIS_SKIP_BUILD:-0}"

setup_scratch

export RAPPORT_DATABASE_URL="${RAPPORT_SCHEMATHESIS_DATABASE_URL:-sqlite://$TMP/rapport.db}"
# Fuzzing sends thousands of requests with one key: the per-key limit would answer most of
# them 429, which proves nothing about the API.
export RAPPORT_RATE_LIMIT=0 NO_COLOR=1
log "database: ${RAPPORT_DATABASE_URL%%://*}://…"
CREATED="$("$BIN" keys create --name schemathesis --role owner --json)"
json_field() { "$VENV/bin/python" -c "import json,sys; print(json.load(sys.stdin)$1)"; }
KEY="$(json_field '["key"]' <<<"$CREATED")"
start_server

# The key's own id and its user's email, which tests/schemathesis/hooks.py keeps the fuzzer
# from disabling or deactivating.
export RAPPORT_SCHEMATHESIS_KEY_ID RAPPORT_SCHEMATHESIS_EMAIL
RAPPORT_SCHEMATHESIS_KEY_ID="$(json_field '["id"]' <<<"$CREATED")"
RAPPORT_SCHEMATHESIS_EMAIL="$(curl -fsS -H "x-api-key: $KEY" "$BASE/api/v1/keys/$RAPPORT_SCHEMATHESIS_KEY_ID" \
    | json_field '["user_id"]' \
    | { read -r uid; curl -fsS -H "x-api-key: $KEY" "$BASE/api/v1/users" \
        | "$VENV/bin/python" -c "import json,sys; print(next(u['email'] for u in json.load(sys.stdin)['items'] if u['id'] == '$uid'))"; })"
export SCHEMATHESIS_HOOKS=hooks PYTHONPATH="$ROOT/$HERE${PYTHONPATH:+:$PYTHONPATH}"

# One worker: CPython 3.11's AST parser is not safe across threads, and Hypothesis parses
# sources (to describe lambdas) while it generates, so two workers now and then crash the
# run with "AST constructor recursion depth mismatch" though every request passed.
timeout --kill-after=10 900 "$VENV/bin/schemathesis" run "$BASE/api/v1/openapi.json" \
    --url "$BASE/api/v1" \
    --header "x-api-key: $KEY" \
    --checks not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance,response_headers_conformance \
    --max-examples "${SCHEMATHESIS_EXAMPLES:-20}" \
    --workers 1 \
    --no-color \
    "$@"
