#!/usr/bin/env bash
# Load test of Rapport's MCP endpoint against a bare rmcp server (benches/bare_mcp.rs).
#
#   bash bench/run.sh
#
# Builds both in release mode, seeds a fresh SQLite database with 10,000 contacts through MCP
# `create_contacts`, then runs wrk (10 s, 32 connections, 2 threads, --latency) against:
#   - rapport `get_records`     (one contact by id, cycling over a few ids)
#   - rapport `search_records`  (email starts_with "user12", limit 25)
#   - rapport `search_records` on deals (a filter on stage and value, sorted by value)
#   - rapport `count_records` on deals with `group_by` stage
#   - bare    `echo`
# Server pinned to core 0, wrk to core 1. All traffic stays on 127.0.0.1. Writes
# docs/benchmarks.md and prints the table. Stops by itself; servers are killed on exit.
#
# Knobs (environment): BENCH_DURATION (10s), BENCH_CONNECTIONS (32), BENCH_THREADS (2),
# BENCH_CONTACTS (10000), BENCH_DEALS (3000), BENCH_BASELINE_BIN (unset: a previous release's
# binary, measured under the same get_records load in the same rounds), BENCH_BASELINE_LABEL, BENCH_WARMUP (2s), BENCH_SKIP_BUILD (unset), BENCH_ONLY_BARE (unset:
# set it to measure only the bare server, print its row and write nothing), BENCH_RAPPORT_BIN
# (target/release/rapport), BENCH_DATABASE_URL (unset: a fresh SQLite file; a postgres:// URL
# of an empty database runs every Rapport server on PostgreSQL, which then shares the two cores
# with the server and wrk), BENCH_REPORT (docs/benchmarks.md, or docs/benchmarks-postgres.md on
# PostgreSQL).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD

DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-32}
THREADS=${BENCH_THREADS:-2}
CONTACTS=${BENCH_CONTACTS:-10000}
DEALS=${BENCH_DEALS:-3000}
WARMUP=${BENCH_WARMUP:-2s}
PROTO=2025-06-18

# shellcheck source=bench/common.sh
source bench/common.sh

if [[ -z "${BENCH_SKIP_BUILD:-}" ]]; then
    log "building (release)"
    if [[ -n "${BENCH_ONLY_BARE:-}" ]]; then
        cargo build --release --example bare_mcp
    else
        cargo build --release --bin rapport --example bare_mcp
    fi
fi
RAPPORT=${BENCH_RAPPORT_BIN:-$ROOT/target/release/rapport}
BARE=$ROOT/target/release/examples/bare_mcp
[[ -x $BARE ]] || die "$BARE is missing"
[[ -n "${BENCH_ONLY_BARE:-}" || -x $RAPPORT ]] || die "$RAPPORT is missing"

# ---------------------------------------------------------------------------------------------
# Helpers

# The wrk script. MCP mode (args[4] = "mcp"): POSTs the JSON bodies of a file (one per line,
# cycled) with the MCP headers, and counts non-200 answers and 200 answers that are not a
# successful tool result. REST mode ("rest"): each line is "METHOD PATH [BODY]", and an answer
# must be 200 with a record in it.
cat >"$TMP/load.lua" <<'LUA'
local threads = {}
function setup(thread) table.insert(threads, thread) end

local reqs, n, i, rest = {}, 0, 0, false
checked, non200, badbody, sample = 0, 0, 0, ""

function init(args)
  rest = args[4] == "rest"
  wrk.headers["Content-Type"] = "application/json"
  if args[2] ~= nil and args[2] ~= "" then wrk.headers["x-api-key"] = args[2] end
  if not rest then
    wrk.headers["Accept"] = "application/json, text/event-stream"
    wrk.headers["MCP-Protocol-Version"] = args[3]
  end
  for line in io.lines(args[1]) do
    if #line > 0 then
      local method, path, body = "POST", nil, line
      if rest then method, path, body = line:match("^(%S+) (%S+) ?(.*)$") end
      n = n + 1
      reqs[n] = wrk.format(method, path, nil, body ~= "" and body or nil)
    end
  end
end

function request()
  i = i % n + 1
  return reqs[i]
end

function response(status, headers, body)
  checked = checked + 1
  body = body or ""
  local bad
  if rest then bad = not body:find('"id":', 1, true)
  else bad = not body:find('"result"', 1, true) or body:find('"isError":true', 1, true) end
  if status ~= 200 then non200 = non200 + 1 elseif bad then badbody = badbody + 1 end
  if (status ~= 200 or bad) and sample == "" then sample = status .. " " .. body:sub(1, 300) end
end

function done(summary, latency, requests)
  local c, a, b, s = 0, 0, 0, ""
  for _, t in ipairs(threads) do
    c = c + t:get("checked"); a = a + t:get("non200"); b = b + t:get("badbody")
    if s == "" then s = t:get("sample") end
  end
  io.write(string.format("CHECK checked=%d non200=%d badbody=%d\n", c, a, b))
  if s ~= "" then io.write("SAMPLE " .. s .. "\n") end
end
LUA

# to_ms "1.23ms" | "850.00us" | "1.20s" -> milliseconds
to_ms() {
    awk -v v="$1" 'BEGIN {
        if (v ~ /us$/) { sub(/us$/, "", v); printf "%.3f", v / 1000 }
        else if (v ~ /ms$/) { sub(/ms$/, "", v); printf "%.3f", v }
        else if (v ~ /m$/) { sub(/m$/, "", v); printf "%.3f", v * 60000 }
        else if (v ~ /s$/) { sub(/s$/, "", v); printf "%.3f", v * 1000 }
        else { printf "nan" } }'
}

# post URL KEY BODY -> writes the body to stdout, fails unless HTTP 200
post() {
    local url=$1 key=$2 body=$3 code
    local hdrs=(-H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream'
                -H "MCP-Protocol-Version: $PROTO")
    [[ -n $key ]] && hdrs+=(-H "x-api-key: $key")
    code=$(curl -sS -o "$TMP/post.out" -w '%{http_code}' --max-time 30 "${hdrs[@]}" --data-binary "$body" "$url")
    cat "$TMP/post.out"
    [[ $code == 200 ]] || { printf '\nbench: HTTP %s from %s\n' "$code" "$url" >&2; return 1; }
}

# check_result NAME BODYTEXT -> fails unless the JSON-RPC answer is a successful tool result
check_result() {
    python3 - "$1" "$2" <<'PY'
import json, sys
name, raw = sys.argv[1], sys.argv[2]
text = raw
if raw.lstrip().startswith(("event:", "data:", "id:", "retry:")):  # SSE framing
    text = "\n".join(l[5:].strip() for l in raw.splitlines() if l.startswith("data:"))
try:
    msg = json.loads(text)
except ValueError:
    sys.exit(f"bench: {name}: body is not JSON: {raw!r}")
res = msg.get("result") if isinstance(msg, dict) else None
if not isinstance(res, dict) or res.get("isError"):
    sys.exit(f"bench: {name}: not a successful tool result: {raw}")
PY
}

# CPU time (user + system, in clock ticks) a process has used.
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# run_wrk LABEL URL KEY BODYFILE PID -> sets RPS P50 P99 (ms) and CPU_US (server CPU time per
# request, in microseconds: steadier than req/s on a machine whose speed varies); the raw
# output goes to $TMP/LABEL.wrk
run_wrk() {
    local label=$1 url=$2 key=$3 bodies=$4 pid=$5 mode=${6:-mcp} out=$TMP/$1.wrk
    log "wrk warm-up $label ($WARMUP)"
    taskset -c 1 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$WARMUP" -s "$TMP/load.lua" "$url" -- \
        "$bodies" "$key" "$PROTO" "$mode" >/dev/null
    log "wrk $label: $DURATION, $CONNECTIONS connections, $THREADS threads"
    local ticks_before ticks_after
    ticks_before=$(cpu_ticks "$pid")
    taskset -c 1 wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --latency -s "$TMP/load.lua" "$url" -- \
        "$bodies" "$key" "$PROTO" "$mode" >"$out"
    ticks_after=$(cpu_ticks "$pid")
    sed 's/^/    /' "$out" >&2
    local check
    check=$(grep -m1 '^CHECK ' "$out" || true)
    [[ -n $check ]] || die "$label: wrk printed no CHECK line"
    if ! grep -q 'non200=0 badbody=0' <<<"$check" || grep -q 'Non-2xx' "$out"; then
        die "$label: the load run got failed answers: $check $(grep -m1 '^SAMPLE ' "$out" || true)"
    fi
    if grep -q 'checked=0 ' <<<"$check"; then die "$label: no responses"; fi
    if grep -q 'Socket errors' "$out"; then
        log "warning: $label: $(grep -m1 'Socket errors' "$out" | sed 's/^ *//')"
        NOTES+=("$label: $(grep -m1 'Socket errors' "$out" | sed 's/^ *//')")
    fi
    RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    CPU_US=$(awk -v t=$((ticks_after - ticks_before)) -v hz="$(getconf CLK_TCK)" -v n="$(awk '/requests in/ {print $1}' "$out")" \
        'BEGIN {printf "%.1f", t / hz * 1e6 / n}')
    P50=$(to_ms "$(awk '$1 == "50%" {print $2}' "$out")")
    P99=$(to_ms "$(awk '$1 == "99%" {print $2}' "$out")")
    [[ -n $RPS && $P50 != nan && $P99 != nan ]] || die "$label: could not parse the wrk output"
}

# peak_rss_mb PID -> VmHWM in MB
peak_rss_mb() {
    awk '/^VmHWM:/ {printf "%.1f", $2 / 1024}' "/proc/$1/status"
}

# Share of CPU time (all cores) that other work used during one second before the runs.
cpu_busy() {
    local a b
    a=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
    sleep 1
    b=$(awk '/^cpu / {print $2+$3+$4+$7+$8+$9, $5+$6}' /proc/stat)
    awk -v a="$a" -v b="$b" 'BEGIN {split(a, x, " "); split(b, y, " ");
        busy = y[1] - x[1]; idle = y[2] - x[2]; printf "%.0f", 100 * busy / (busy + idle + 0.001)}'
}
BUSY_BEFORE=$(cpu_busy)
if ((BUSY_BEFORE > 10)); then
    log "warning: other work used ${BUSY_BEFORE}% of the CPUs just before the run; figures will be lower"
fi

ROWS=()   # "target|rps|p50|p99|rss"
NOTES=()

# ---------------------------------------------------------------------------------------------
# Bare rmcp server

log "starting bare_mcp"
BARE_ADDR=127.0.0.1:0 taskset -c 0 "$BARE" >"$TMP/bare.log" 2>&1 &
BARE_PID=$!
PIDS+=("$BARE_PID")
BARE_URL=$(wait_listening "$TMP/bare.log" "$BARE_PID" bare)/mcp

ECHO_BODY='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"text":"hello"}}}'
printf '%s\n' "$ECHO_BODY" >"$TMP/echo.bodies"
body=$(post "$BARE_URL" "" "$ECHO_BODY") || die "bare echo failed: $body"
check_result "bare echo" "$body"
log "bare echo answers: $body"

if [[ -n "${BENCH_ONLY_BARE:-}" ]]; then
    run_wrk bare_echo "$BARE_URL" "" "$TMP/echo.bodies" "$BARE_PID"
    printf '\n| bare rmcp `echo` | %.0f req/s | p50 %.2f ms | p99 %.2f ms | peak RSS %s MB | %s CPU us/request |\n' \
        "$RPS" "$P50" "$P99" "$(peak_rss_mb "$BARE_PID")" "$CPU_US"
    exit 0
fi

# ---------------------------------------------------------------------------------------------
# Rapport

export RAPPORT_DATABASE_URL="${BENCH_DATABASE_URL:-sqlite://$TMP/bench.db}"
if [[ $RAPPORT_DATABASE_URL == postgres* ]]; then
    DB_LABEL=PostgreSQL DB_NOTE="PostgreSQL 15 on the same machine (not pinned: it shares both cores with the server and wrk)"
    GET_TARGET=0.35 REPORT=${BENCH_REPORT:-docs/benchmarks-postgres.md}
else
    DB_LABEL=SQLite DB_NOTE="a fresh SQLite database" GET_TARGET=0.70 REPORT=${BENCH_REPORT:-docs/benchmarks.md}
fi
export RAPPORT_LOG=warn
export RAPPORT_RATE_LIMIT=0

# seed URL KEY IDSFILE: BENCH_CONTACTS contacts through create_contacts (100 a call), then
# BENCH_DEALS deals (0 for a server without deals); 8 contact ids spread over them go to IDSFILE.
seed() {
    local url=$1 key=$2 ids_file=$3
    python3 - "$url" "$key" "$PROTO" "$CONTACTS" "$ids_file" "$DEALS" <<'PY'
import json, sys, time, urllib.error, urllib.request

url, key, proto, total, ids_path, deals = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), sys.argv[5], int(sys.argv[6])
first = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Leslie", "Radia"]
last = ["Lovelace", "Hopper", "Turing", "Dijkstra", "Liskov", "Knuth", "Allen", "Thompson", "Lamport", "Perlman"]
titles = ["CTO", "Engineer", "Buyer", "VP Sales", "Founder"]
tags = ["lead", "customer", "partner", "vip"]

def parse(raw):
    text = raw.decode()
    if text.lstrip().startswith(("event:", "data:", "id:", "retry:")):
        text = "\n".join(l[5:].strip() for l in text.splitlines() if l.startswith("data:"))
    return json.loads(text)

def call(name, arguments):
    global rid
    rid += 1
    body = json.dumps({"jsonrpc": "2.0", "id": rid, "method": "tools/call",
                       "params": {"name": name, "arguments": arguments}}).encode()
    req = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "Accept": "application/json, text/event-stream",
        "x-api-key": key, "MCP-Protocol-Version": proto})
    try:
        with urllib.request.urlopen(req, timeout=60) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as e:
        sys.exit(f"bench: {name}: HTTP {e.code}: {e.read().decode(errors='replace')}")
    msg = parse(raw)
    res = msg.get("result") or {}
    if res.get("isError") or "structuredContent" not in res:
        sys.exit(f"bench: {name} failed: {raw.decode(errors='replace')[:500]}")
    return res["structuredContent"]

ids, t0, rid = [], time.time(), 0
for start in range(0, total, 100):
    contacts = [{
        "first_name": first[i % 10], "last_name": last[(i // 10) % 10],
        "email": f"user{i}@example.com", "title": titles[i % 5],
        "tags": [tags[i % 4], tags[(i // 4) % 4]] if i % 3 else [tags[i % 4]],
    } for i in range(start, min(start + 100, total))]
    got = [it["id"] for it in call("create_contacts", {"contacts": contacts})["items"]]
    if len(got) != len(contacts) or not all(isinstance(x, str) and x for x in got):
        sys.exit(f"bench: create_contacts answered {len(got)} ids for {len(contacts)} contacts")
    ids.extend(got)
dt = time.time() - t0
print(f"==> seeded {len(ids)} contacts in {dt:.1f} s ({len(ids) / dt:.0f}/s)", file=sys.stderr)
# Deals across the stages of the sales pipeline, in three currencies, each with a contact.
stages = ["lead", "qualified", "proposal", "negotiation", "won", "lost"]
currencies = ["EUR", "USD", "GBP"]
t0 = time.time()
for start in range(0, deals, 100):
    batch = [{
        "name": f"Deal {i}", "stage": stages[i % 6], "currency": currencies[i % 3],
        "value": f"{(i * 37) % 50000}.{i % 100:02d}", "contact_ids": [ids[i % len(ids)]],
    } for i in range(start, min(start + 100, deals))]
    call("create_deals", {"deals": batch})
if deals:
    dt = time.time() - t0
    print(f"==> seeded {deals} deals in {dt:.1f} s ({deals / dt:.0f}/s)", file=sys.stderr)
step = max(1, len(ids) // 8)
with open(ids_path, "w") as f:
    f.write("\n".join(ids[::step][:8]) + "\n")
PY
}

log "creating an owner key"
"$RAPPORT" keys create --name bench --role owner --json >"$TMP/key.json" 2>"$TMP/key.err" \
    || { cat "$TMP/key.err" >&2; die "rapport keys create failed"; }
KEY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"])' "$TMP/key.json") \
    || die "keys create --json printed no .key: $(cat "$TMP/key.json")"
"$RAPPORT" keys create --name bench-member --role member --json >"$TMP/member.json" 2>"$TMP/key.err" \
    || { cat "$TMP/key.err" >&2; die "rapport keys create --role member failed"; }
MEMBER_KEY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"])' "$TMP/member.json")

log "starting rapport serve"
RAPPORT_ADDR=127.0.0.1:0 taskset -c 0 "$RAPPORT" serve >"$TMP/rapport.log" 2>"$TMP/rapport.err" &
RAPPORT_PID=$!
PIDS+=("$RAPPORT_PID")
MCP_ENDPOINT=$(wait_listening "$TMP/rapport.log" "$RAPPORT_PID" rapport)/api/v1/mcp
# The loads read whole records, as REST does: the full profile (the lean one answers compact
# searches, SPEC 5), so figures compare across releases and with REST.
RAPPORT_URL="$MCP_ENDPOINT?profile=full"

log "seeding $CONTACTS contacts and $DEALS deals"
seed "$RAPPORT_URL" "$KEY" "$TMP/ids"
: >"$TMP/get.bodies"
while read -r id; do
    [[ -n $id ]] || continue
    printf '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_records","arguments":{"records":[{"entity":"contact","id":"%s"}]}}}\n' \
        "$id" >>"$TMP/get.bodies"
done <"$TMP/ids"
SEARCH_BODY='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_records","arguments":{"entity":"contact","filters":[{"field":"email","op":"starts_with","value":"user12"}],"limit":25}}}'
printf '%s\n' "$SEARCH_BODY" >"$TMP/search.bodies"
# The same two reads through REST: GET /api/v1/contacts/{id} over the same ids, and
# POST /api/v1/contacts/search with the same filter.
sed 's|^|GET /api/v1/contacts/|' "$TMP/ids" | grep -v '/$' >"$TMP/rest_get.bodies"
REST_SEARCH_BODY='{"filters":[{"field":"email","op":"starts_with","value":"user12"}],"limit":25}'
printf 'POST /api/v1/contacts/search %s\n' "$REST_SEARCH_BODY" >"$TMP/rest_search.bodies"

body=$(post "$RAPPORT_URL" "$KEY" "$(head -n1 "$TMP/get.bodies")") || die "get_records failed: $body"
check_result "get_records" "$body"
python3 - "$body" "$(head -n1 "$TMP/ids")" <<'PY' || exit 1
import json, sys
raw, want = sys.argv[1], sys.argv[2]
sc = json.loads(raw)["result"].get("structuredContent")
text = json.dumps(sc)
if want not in text:
    sys.exit(f"bench: get_records answer does not contain the id {want}: {raw}")
PY
log "get_records answers: ${body:0:300}"

body=$(post "$RAPPORT_URL" "$KEY" "$SEARCH_BODY") || die "search_records failed: $body"
check_result "search_records" "$body"
python3 - "$body" <<'PY' || exit 1
import json, sys
raw = sys.argv[1]
sc = json.loads(raw)["result"].get("structuredContent") or {}
items = sc.get("items")
if not isinstance(items, list) or len(items) != 25 or "next_cursor" not in sc:
    sys.exit(f"bench: search_records answer does not match the contract (25 items + next_cursor expected): {raw}")
bad = [it.get("email") for it in items if not str(it.get("email", "")).startswith("user12")]
if bad:
    sys.exit(f"bench: search_records returned emails outside the filter {bad}: {raw}")
PY
log "search_records answers: ${body:0:300}"

REST_BASE=${MCP_ENDPOINT%/mcp}
rest_get=$(curl -fsS -H "x-api-key: $KEY" "$REST_BASE/contacts/$(head -n1 "$TMP/ids")") || die "REST GET failed"
rest_search=$(curl -fsS -H "x-api-key: $KEY" -H 'Content-Type: application/json' --data-binary "$REST_SEARCH_BODY" \
    "$REST_BASE/contacts/search") || die "REST search failed"
mcp_get=$(post "$RAPPORT_URL" "$KEY" "$(head -n1 "$TMP/get.bodies")")
python3 - "$rest_get" "$mcp_get" "$rest_search" "$body" <<'PY' || exit 1
import json, sys
rest_get, mcp_get, rest_search, mcp_search = (json.loads(a) for a in sys.argv[1:])
if rest_get != mcp_get["result"]["structuredContent"]["items"][0]:
    sys.exit(f"bench: REST GET /contacts/ID and get_records answer differently: {rest_get} / {mcp_get}")
if rest_search != mcp_search["result"]["structuredContent"]:
    sys.exit("bench: POST /contacts/search and search_records answer differently")
PY
log "REST answers the same records as MCP"

DEAL_SEARCH_BODY='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"search_records","arguments":{"entity":"deal","filters":[{"field":"stage","op":"in","value":["proposal","negotiation"]},{"field":"value","op":"gt","value":20000}],"sort":[{"field":"value","direction":"desc"}],"limit":25}}}'
printf '%s\n' "$DEAL_SEARCH_BODY" >"$TMP/deal_search.bodies"
DEAL_COUNT_BODY='{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"count_records","arguments":{"entity":"deal","filters":[{"field":"status","op":"eq","value":"open"}],"group_by":"stage"}}}'
printf '%s\n' "$DEAL_COUNT_BODY" >"$TMP/deal_count.bodies"
body=$(post "$RAPPORT_URL" "$KEY" "$DEAL_SEARCH_BODY") || die "search_records on deals failed: $body"
check_result "search_records on deals" "$body"
python3 - "$body" <<'PY' || exit 1
import json, sys
raw = sys.argv[1]
items = (json.loads(raw)["result"].get("structuredContent") or {}).get("items")
if not isinstance(items, list) or len(items) != 25:
    sys.exit(f"bench: search_records on deals: 25 items expected: {raw[:500]}")
values = [float(i["value"]) for i in items]
if any(i["stage"] not in ("proposal", "negotiation") for i in items) or min(values) <= 20000 or values != sorted(values, reverse=True):
    sys.exit(f"bench: search_records on deals returned records outside the filter or out of order: {raw[:500]}")
PY
body=$(post "$RAPPORT_URL" "$KEY" "$DEAL_COUNT_BODY") || die "count_records on deals failed: $body"
check_result "count_records on deals" "$body"
python3 - "$body" <<'PY' || exit 1
import json, sys
raw = sys.argv[1]
sc = json.loads(raw)["result"].get("structuredContent") or {}
groups = sc.get("groups") or []
if sorted(g["value"] for g in groups) != ["lead", "negotiation", "proposal", "qualified"] or not all(g.get("sum") for g in groups):
    sys.exit(f"bench: count_records with group_by did not answer the four open stages with sums: {raw[:500]}")
PY
log "count_records on deals answers: ${body:0:300}"

# What an agent pays for tools/list in every conversation: the compact JSON of {"tools": [...]}
# per profile and role (SPEC 5: lean 12 KB for an owner, 9 KB for a member; full 64 KB).
catalog() {
    post "$MCP_ENDPOINT?profile=$1" "$2" '{"jsonrpc":"2.0","id":1,"method":"tools/list"}' | python3 -c '
import json, sys
tools = json.load(sys.stdin)["result"]["tools"]
print(len(json.dumps({"tools": tools}, separators=(",", ":"))), len(tools))' || die "tools/list ($1) failed"
}
read -r LEAN_OWNER_BYTES LEAN_OWNER_TOOLS <<<"$(catalog lean "$KEY")"
read -r LEAN_MEMBER_BYTES LEAN_MEMBER_TOOLS <<<"$(catalog lean "$MEMBER_KEY")"
read -r CATALOG_BYTES CATALOG_TOOLS <<<"$(catalog full "$KEY")"
read -r FULL_MEMBER_BYTES FULL_MEMBER_TOOLS <<<"$(catalog full "$MEMBER_KEY")"
log "tools/list: lean owner $LEAN_OWNER_BYTES bytes, lean member $LEAN_MEMBER_BYTES, full owner $CATALOG_BYTES, full member $FULL_MEMBER_BYTES"

# The release before this one, when BENCH_BASELINE_BIN names its binary: the same get_records
# load on its own database, measured in the same rounds, so a change is judged in one run.
BASELINE_PID=""
if [[ -n "${BENCH_BASELINE_BIN:-}" ]]; then
    log "starting the baseline ${BENCH_BASELINE_LABEL:-$BENCH_BASELINE_BIN}"
    RAPPORT_DATABASE_URL="sqlite://$TMP/baseline.db" "$BENCH_BASELINE_BIN" keys create --name bench --role owner --json \
        >"$TMP/baseline-key.json" 2>"$TMP/key.err" || { cat "$TMP/key.err" >&2; die "baseline keys create failed"; }
    BASELINE_KEY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["key"])' "$TMP/baseline-key.json")
    RAPPORT_DATABASE_URL="sqlite://$TMP/baseline.db" RAPPORT_ADDR=127.0.0.1:0 taskset -c 0 "$BENCH_BASELINE_BIN" serve \
        >"$TMP/baseline.log" 2>>"$TMP/rapport.err" &
    BASELINE_PID=$!
    PIDS+=("$BASELINE_PID")
    BASELINE_URL=$(wait_listening "$TMP/baseline.log" "$BASELINE_PID" rapport)/api/v1/mcp
    DEALS=0 seed "$BASELINE_URL" "$BASELINE_KEY" "$TMP/baseline-ids"
    : >"$TMP/baseline-get.bodies"
    while read -r id; do
        [[ -n $id ]] || continue
        printf '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"get_records","arguments":{"records":[{"entity":"contact","id":"%s"}]}}}\n' \
            "$id" >>"$TMP/baseline-get.bodies"
    done <"$TMP/baseline-ids"
fi

# A second Rapport process on the same database with the per-key rate limiter on (a limit
# the load never reaches): what the full set of authentication checks costs.
log "starting a second rapport with RAPPORT_RATE_LIMIT=100000000 (limiter on, never reached)"
RAPPORT_RATE_LIMIT=100000000 RAPPORT_ADDR=127.0.0.1:0 taskset -c 0 "$RAPPORT" serve >"$TMP/rapport2.log" 2>>"$TMP/rapport.err" &
LIMITED_PID=$!
PIDS+=("$LIMITED_PID")
LIMITED_URL=$(wait_listening "$TMP/rapport2.log" "$LIMITED_PID" rapport)/api/v1/mcp

# This machine's speed drifts by a third over minutes (it is a shared VM), so the servers
# are measured in turns, BENCH_ROUNDS times, and each figure is the median of its turns.
ROUNDS=${BENCH_ROUNDS:-3}
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
declare -A M
record() { M[$1.rps]+=" $RPS"; M[$1.p50]+=" $P50"; M[$1.p99]+=" $P99"; M[$1.cpu]+=" $CPU_US"; }
# Bytes the server process wrote to storage during a run: the proof that a request writes
# nothing (last_used_at / last_used_ip are flushed in one batch every 30 s).
io_written() { awk '/^write_bytes:/ {print $2}' "/proc/$1/io"; }
GET_WRITTEN=0 GET_REQUESTS=0
for round in $(seq 1 "$ROUNDS"); do
    log "round $round of $ROUNDS"
    run_wrk bare_echo "$BARE_URL" "" "$TMP/echo.bodies" "$BARE_PID"
    record bare
    IO_BEFORE=$(io_written "$RAPPORT_PID")
    run_wrk rapport_get "$RAPPORT_URL" "$KEY" "$TMP/get.bodies" "$RAPPORT_PID"
    IO_AFTER=$(io_written "$RAPPORT_PID")
    GET_WRITTEN=$((GET_WRITTEN + IO_AFTER - IO_BEFORE))
    GET_REQUESTS=$((GET_REQUESTS + $(awk '/requests in/ {print $1}' "$TMP/rapport_get.wrk")))
    record get
    run_wrk rapport_get_limited "$LIMITED_URL" "$KEY" "$TMP/get.bodies" "$LIMITED_PID"
    record limited
    run_wrk rest_get "$REST_BASE" "$KEY" "$TMP/rest_get.bodies" "$RAPPORT_PID" rest
    record rest_get
    run_wrk rapport_search "$RAPPORT_URL" "$KEY" "$TMP/search.bodies" "$RAPPORT_PID"
    record search
    run_wrk rest_search "$REST_BASE" "$KEY" "$TMP/rest_search.bodies" "$RAPPORT_PID" rest
    record rest_search
    if [[ -n $BASELINE_PID ]]; then
        run_wrk baseline_get "$BASELINE_URL" "$BASELINE_KEY" "$TMP/baseline-get.bodies" "$BASELINE_PID"
        record baseline
    fi
done
run_wrk rapport_deal_search "$RAPPORT_URL" "$KEY" "$TMP/deal_search.bodies" "$RAPPORT_PID"
record deal_search
run_wrk rapport_deal_count "$RAPPORT_URL" "$KEY" "$TMP/deal_count.bodies" "$RAPPORT_PID"
record deal_count

row() { # KEY LABEL PID
    local k=$1
    # shellcheck disable=SC2086
    ROWS+=("$2|$(median ${M[$k.rps]})|$(median ${M[$k.p50]})|$(median ${M[$k.p99]})|$(peak_rss_mb "$3")|$(median ${M[$k.cpu]})")
}
row bare "bare rmcp \`echo\`" "$BARE_PID"
row get "rapport \`get_records\`" "$RAPPORT_PID"
row search "rapport \`search_records\`" "$RAPPORT_PID"
row limited "rapport \`get_records\`, rate limiter on" "$LIMITED_PID"
row rest_get "REST \`GET /api/v1/contacts/{id}\` (the same reads as \`get_records\`)" "$RAPPORT_PID"
row rest_search "REST \`POST /api/v1/contacts/search\` (the same query as \`search_records\`)" "$RAPPORT_PID"
row deal_search "rapport \`search_records\` on deals (stage in 2 stages, value > 20000, sorted by value)" "$RAPPORT_PID"
row deal_count "rapport \`count_records\` on open deals, \`group_by\` stage" "$RAPPORT_PID"
if [[ -n $BASELINE_PID ]]; then
    row baseline "baseline \`get_records\` (${BENCH_BASELINE_LABEL:-previous release})" "$BASELINE_PID"
fi
# shellcheck disable=SC2086
{
    BARE_RPS=$(median ${M[bare.rps]}) BARE_CPU=$(median ${M[bare.cpu]}) BARE_P99=$(median ${M[bare.p99]})
    GET_RPS=$(median ${M[get.rps]}) GET_P99=$(median ${M[get.p99]}) GET_CPU=$(median ${M[get.cpu]})
    SEARCH_P99=$(median ${M[search.p99]})
    LIMITED_RPS=$(median ${M[limited.rps]})
    DEAL_SEARCH_P99=$(median ${M[deal_search.p99]}) DEAL_COUNT_P99=$(median ${M[deal_count.p99]})
    BASELINE_RPS=$(median ${M[baseline.rps]:-0})
    REST_GET_RPS=$(median ${M[rest_get.rps]}) SEARCH_RPS=$(median ${M[search.rps]}) REST_SEARCH_RPS=$(median ${M[rest_search.rps]})
}
RAPPORT_RSS=$(peak_rss_mb "$RAPPORT_PID")
PER_ROUND="$(for k in bare get limited rest_get search rest_search baseline; do [[ -n ${M[$k.rps]:-} ]] || continue; printf '%s req/s:%s; ' "$k" "${M[$k.rps]}"; done)"

if [[ -s $TMP/rapport.err ]]; then
    log "rapport stderr (RAPPORT_LOG=warn), $(wc -l <"$TMP/rapport.err") lines; the first 10:"
    head -n 10 "$TMP/rapport.err" | sed 's/\x1b\[[0-9;]*m//g; s/^/    /' >&2
fi
kill "$RAPPORT_PID" "$LIMITED_PID" "$BARE_PID" ${BASELINE_PID:+"$BASELINE_PID"}

# ---------------------------------------------------------------------------------------------
# Report

verdict() { if awk "BEGIN {exit !($1)}"; then echo "met"; else echo "**not met**"; fi; }
RATIO=$(awk -v a="$GET_RPS" -v b="$BARE_RPS" 'BEGIN {printf "%.2f", a / b}')
fmt() { printf "%.${2:-2}f" "$1"; }
T_RPS=$(verdict "$GET_RPS >= $BARE_RPS * $GET_TARGET")
T_P99_GET=$(verdict "$GET_P99 <= 2 * $BARE_P99")
T_P99_SEARCH=$(verdict "$SEARCH_P99 < 10")
T_RSS=$(verdict "$RAPPORT_RSS < 150")
CPU_RATIO=$(awk -v a="$BARE_CPU" -v b="$GET_CPU" 'BEGIN {printf "%.2f", a / b}')
AUTH_COST=$(awk -v a="$LIMITED_RPS" -v b="$GET_RPS" 'BEGIN {printf "%.1f", (1 - a / b) * 100}')
T_AUTH=$(verdict "$LIMITED_RPS >= $GET_RPS * 0.9")
T_REST_GET=$(verdict "$REST_GET_RPS >= $GET_RPS * 0.9")
T_REST_SEARCH=$(verdict "$REST_SEARCH_RPS >= $SEARCH_RPS * 0.9")
BASELINE_LINE=""
if [[ -n $BASELINE_PID ]]; then
    BASE_RATIO=$(awk -v a="$BASELINE_RPS" -v b="$BARE_RPS" 'BEGIN {printf "%.2f", a / b}')
    T_BASE=$(verdict "$GET_RPS >= $BASELINE_RPS * 0.95")
    BASELINE_LINE="| \`get_records\` within 5% of its ratio to the bare server before this change | ratio ${RATIO} now, ${BASE_RATIO} for ${BENCH_BASELINE_LABEL:-the previous release} ($(fmt "$GET_RPS" 0) vs $(fmt "$BASELINE_RPS" 0) req/s) | ${T_BASE} |"
fi

TABLE="| target | req/s | p50 (ms) | p99 (ms) | peak RSS (MB) | server CPU µs/request |
|---|---:|---:|---:|---:|---:|"
for row in "${ROWS[@]}"; do
    IFS='|' read -r name rps p50 p99 rss cpu <<<"$row"
    TABLE+=$'\n'"$(printf '| %s | %.0f | %.2f | %.2f | %s | %s |' "$name" "$rps" "$p50" "$p99" "$rss" "$cpu")"
done

CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
mkdir -p docs
# bench/webhooks.sh's section of the report stays as it was.
KEEP_WEBHOOKS=$(sed -n '/<!-- webhooks:start -->/,/<!-- webhooks:end -->/p' "$REPORT" 2>/dev/null || true)
cat >"$REPORT" <<EOF
# Benchmarks

Measured $(date -u '+%Y-%m-%d %H:%M UTC') with \`bash bench/run.sh\` on ${DB_LABEL}$([[ $DB_LABEL == PostgreSQL ]] && echo ' (`BENCH_DATABASE_URL=postgres://…`)').

Machine: $(nproc) cores, ${CPU:-unknown CPU}, $(uname -sr); $(rustc --version 2>/dev/null || echo rustc).
CPU used by other work in the second before the runs: ${BUSY_BEFORE}%.

Setup: release builds. Each server is pinned to core 0 (\`taskset -c 0\`) and wrk to core 1;
wrk 4.1, ${DURATION}, ${CONNECTIONS} connections, ${THREADS} threads, after a ${WARMUP} warm-up,
over 127.0.0.1. Every request is a stateless MCP \`tools/call\` POST (\`MCP-Protocol-Version:
${PROTO}\`, JSON response, no \`initialize\`); the wrk script checks that every answer is HTTP 200
with a successful tool result. Rapport runs on ${DB_NOTE}, seeded with ${CONTACTS}
contacts through \`create_contacts\` and ${DEALS} deals (spread over the six stages of the sales
pipeline, three currencies, one contact each) through \`create_deals\`, 100 per call, with an
owner key in \`x-api-key\` and \`RAPPORT_RATE_LIMIT=0\`.

- \`get_records\`: \`{"records":[{"entity":"contact","id":ID}]}\`, cycling over 8 ids.
- \`search_records\`: \`{"entity":"contact","filters":[{"field":"email","op":"starts_with","value":"user12"}],"limit":25}\`
  (111 matches; the first page of 25).
- \`search_records\` on deals: \`{"entity":"deal","filters":[{"field":"stage","op":"in","value":["proposal","negotiation"]},{"field":"value","op":"gt","value":20000}],"sort":[{"field":"value","direction":"desc"}],"limit":25}\`
  (the answers carry each deal's \`contact_ids\`).
- REST: \`GET /api/v1/contacts/{id}\` over the same 8 ids, and \`POST /api/v1/contacts/search\`
  with \`{"filters":[{"field":"email","op":"starts_with","value":"user12"}],"limit":25}\`; checked
  before the load to answer exactly what the MCP calls answer.
- \`count_records\` on deals: \`{"entity":"deal","filters":[{"field":"status","op":"eq","value":"open"}],"group_by":"stage"}\`
  (the count per stage and the exact sum of \`value\` per currency).
- baseline (when \`BENCH_BASELINE_BIN\` is set): the previous release's binary, on its own
  database seeded with the same contacts, under the same \`get_records\` load.
- bare: \`benches/bare_mcp.rs\`, rmcp + axum with one \`echo\` tool, the same transport
  configuration, no authentication or database: the ceiling for an rmcp server on this machine.

The servers run side by side (all pinned to core 0, only the one under load busy) and are
measured in turns, ${ROUNDS} rounds of bare, \`get_records\`, \`get_records\` with the rate
limiter, REST \`GET /contacts/{id}\`, \`search_records\` and REST \`POST /contacts/search\` (and the baseline); each figure is the median of its rounds (per round, ${PER_ROUND}). Server CPU per
request is user + system time from \`/proc/PID/stat\` over the run, divided by the requests.
On this machine (a shared VM) the speed of whole runs drifts: within one hour the bare
server measured anywhere from 18,000 to 31,000 req/s. Compare the rows of one run, not runs.
Peak RSS is \`VmHWM\` from \`/proc/PID/status\` after the load; Rapport's includes the seeding.

${TABLE}

## Targets

| target | result | |
|---|---|---|
| \`get_records\` at least ${GET_TARGET} of the bare server's req/s | $(fmt "$GET_RPS" 0) vs $(fmt "$BARE_RPS" 0) (ratio ${RATIO}; by server CPU per request, ${GET_CPU} vs ${BARE_CPU} µs: ratio ${CPU_RATIO}) | ${T_RPS} |
| \`get_records\` p99 at most twice the bare server's | $(fmt "$GET_P99") ms vs $(fmt "$BARE_P99") ms | ${T_P99_GET} |
| \`search_records\` (25 a page) p99 under 10 ms | $(fmt "$SEARCH_P99") ms | ${T_P99_SEARCH} |
| Rapport peak RSS under 150 MB | ${RAPPORT_RSS} MB | ${T_RSS} |
| the rate limiter costs at most 10% of \`get_records\` throughput | $(fmt "$LIMITED_RPS" 0) vs $(fmt "$GET_RPS" 0) req/s (${AUTH_COST}% less) | ${T_AUTH} |
| REST \`GET /api/v1/contacts/{id}\` within 10% of \`get_records\` | $(fmt "$REST_GET_RPS" 0) vs $(fmt "$GET_RPS" 0) req/s | ${T_REST_GET} |
| REST \`POST /api/v1/contacts/search\` within 10% of \`search_records\` | $(fmt "$REST_SEARCH_RPS" 0) vs $(fmt "$SEARCH_RPS" 0) req/s | ${T_REST_SEARCH} |
${BASELINE_LINE}
| \`search_records\` on ${DEALS} deals, p99 | $(fmt "$DEAL_SEARCH_P99") ms | figure |
| \`count_records\` \`group_by\` stage with exact sums, p99 | $(fmt "$DEAL_COUNT_P99") ms | figure |

Every \`get_records\` request above is authenticated in full: key format and checksum, the
key looked up by its SHA-256 digest (cached in memory: on SQLite checked against
\`data_version\`, so a change made by any process is seen on the next request; on PostgreSQL
dropped on every \`NOTIFY\` of a key, user or organization change and trusted only while the
listener's heartbeat is younger than 0.7 s), status,
expiry, allowed CIDRs, the owner's current role and active flag, and in the last row the
per-key rate limit too (on PostgreSQL shared by every process through the database, a lease of
1% of the limit at a time).

At a million contacts (\`bench/million.py\`): [SQLite](benchmarks-million.md),
[PostgreSQL](benchmarks-million-postgres.md), with the plan of every query. Where the time goes
and what moved it: [performance.md](performance.md).

## The tool catalog

What \`tools/list\` costs an agent in every conversation: the compact JSON of \`{"tools": [...]}\`
per profile (SPEC 5; \`?profile=full\` on the endpoint URL) and role, about a quarter as many
tokens:

| profile | role | tools | bytes | budget |
|---|---|---:|---:|---:|
| lean (the default) | owner | ${LEAN_OWNER_TOOLS} | ${LEAN_OWNER_BYTES} | 12,288 |
| lean | member | ${LEAN_MEMBER_TOOLS} | ${LEAN_MEMBER_BYTES} | 9,216 |
| full | owner | ${CATALOG_TOOLS} | ${CATALOG_BYTES} | 65,536 (\`agent-surface\` checks 49,152) |
| full | member | ${FULL_MEMBER_TOOLS} | ${FULL_MEMBER_BYTES} | |

\`tests/api/profiles.rs\` holds each budget, and a six-call task (describe contacts, search 25,
read one, update it, add a note, read its timeline) at most 30 KB in the lean profile, catalog
included.

No database write per request: during the ${ROUNDS} \`get_records\` runs (${GET_REQUESTS}
requests in all) the server process wrote ${GET_WRITTEN} bytes to storage (\`write_bytes\` in
\`/proc/PID/io\`). Key uses are noted in memory and written as one batch every 30 seconds.
EOF
if ((${#NOTES[@]})); then
    { echo; echo "wrk reported socket errors:"; echo; printf -- '- %s\n' "${NOTES[@]}"; } >>"$REPORT"
fi
if [[ -n $KEEP_WEBHOOKS ]]; then
    printf '\n%s\n' "$KEEP_WEBHOOKS" >>"$REPORT"
fi

printf '\n%s\n\n' "$TABLE"
printf 'get_records / bare: %s (target >= '"$GET_TARGET"': %s); p99 get %s ms (%s), search %s ms (%s); RSS %s MB (%s)\n' \
    "$RATIO" "$T_RPS" "$(fmt "$GET_P99")" "$T_P99_GET" "$(fmt "$SEARCH_P99")" "$T_P99_SEARCH" "$RAPPORT_RSS" "$T_RSS"
printf 'REST GET %s vs get_records %s req/s (%s); REST search %s vs search_records %s req/s (%s)\n' \
    "$(fmt "$REST_GET_RPS" 0)" "$(fmt "$GET_RPS" 0)" "$T_REST_GET" "$(fmt "$REST_SEARCH_RPS" 0)" "$(fmt "$SEARCH_RPS" 0)" "$T_REST_SEARCH"
printf 'rate limiter on: %s%% less throughput (%s); bytes written during the get_records run: %s for %s requests\n' \
    "$AUTH_COST" "$T_AUTH" "$GET_WRITTEN" "$GET_REQUESTS"
log "wrote $REPORT"
