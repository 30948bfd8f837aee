#!/usr/bin/env bash
# Group commit on SQLite (issue 26, item 2):
#
#   bash bench/writes.sh
#
# 1. Concurrent writes: wrk POSTs one contact per request (REST `POST /api/v1/contacts`)
#    over BENCH_CONNECTIONS (16) connections to two servers on fresh SQLite databases,
#    `synchronous=FULL` both: one committing each write alone (RAPPORT_SQLITE_GROUP_COMMIT=false,
#    as before group commit), one grouping them. Interleaved rounds; medians; the commits and
#    the writes they held, from /metrics.
# 2. A mixed agent load through MCP: 32 connections, a third of the calls `create_contacts`,
#    the rest `search_records`, `get_records` and `count_records` with `group_by`, with two
#    webhook endpoints subscribed to `*` and the sender on. BENCH_WINDOWS (6) consecutive
#    windows of BENCH_DURATION per server, alternating, so each database grows as it goes:
#    requests per second and p99 per window show whether the rate stays flat. The reads and
#    counts look at the 2,000 contacts made first (50 last names), the writes add others, so
#    a read costs the same in every window except for what the growing tables cost it.
#    Each window starts once the deliveries of the one before have all been sent.
#
# Servers pinned to core 0, wrk and the webhook receiver to core 1; 127.0.0.1 only; stops by
# itself. Prints a markdown section for docs/benchmarks.md.
#
# Knobs: BENCH_DURATION (10s), BENCH_CONNECTIONS (16), BENCH_ROUNDS (3), BENCH_WINDOWS (6),
# BENCH_SKIP_BUILD (unset), BENCH_BASELINE (another build's `rapport` binary: it takes the
# place of the server committing each write alone, with group commit on, so that both parts
# compare that build with this one).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
ROUNDS=${BENCH_ROUNDS:-3}
WINDOWS=${BENCH_WINDOWS:-6}

# shellcheck source=bench/common.sh
source bench/common.sh

with_receiver

BASELINE=${BENCH_BASELINE:-}
if [[ -n $BASELINE ]]; then
    A_NAME=baseline G_NAME="this build"
    A_LABEL="baseline build (\`$BASELINE\`), group commit"
    G_LABEL="this build, group commit"
else
    A_NAME=alone G_NAME=grouped
    A_LABEL="each write commits alone (\`RAPPORT_SQLITE_GROUP_COMMIT=false\`)"
    G_LABEL="group commit"
fi

# serve NAME GROUPED [BINARY] -> a server on a fresh database; sets URL, PID and KEY
serve() {
    local db="sqlite://$TMP/$1.db" bin=${3:-$RAPPORT}
    KEY=$(RAPPORT_DATABASE_URL=$db "$bin" keys create --name bench --role owner --json \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])')
    RAPPORT_DATABASE_URL=$db RAPPORT_ADDR=127.0.0.1:0 RAPPORT_SQLITE_GROUP_COMMIT=$2 \
        taskset -c 0 "$bin" serve >"$TMP/$1.log" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    URL=$(wait_listening "$TMP/$1.log" "$PID" rapport)
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
# figures FILE -> RPS, P99 (ms); fails on any answer other than 2xx
figures() {
    grep -q 'Non-2xx' "$1" && die "failed requests: $(cat "$1")"
    RPS=$(awk '/^Requests\/sec:/ {printf "%.0f", $2}' "$1")
    P99=$(awk '$1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000} else if (v ~ /ms$/) sub(/ms$/, "", v); else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000}; printf "%.1f", v}' "$1")
}
commits() { curl -sf "$1/metrics" | awk '/^rapport_sqlite_commits_total / {c = $2} /^rapport_sqlite_grouped_writes_total / {w = $2} END {print c, w}'; }

# --- 1. concurrent single-contact creates --------------------------------------------------
cat >"$TMP/create.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["x-api-key"] = os.getenv("BENCH_KEY")
wrk.body = '{"first_name":"Bench","last_name":"Writer","title":"CTO"}'
LUA
if [[ -n $BASELINE ]]; then serve alone true "$BASELINE"; else serve alone false; fi
URL_A=$URL KEY_A=$KEY PID_A=$PID
serve grouped true
URL_G=$URL KEY_G=$KEY PID_G=$PID
A=() G=() AP=() GP=()
for r in $(seq 1 "$ROUNDS"); do
    for which in $( ((r % 2)) && echo "A G" || echo "G A"); do
        if [[ $which == A ]]; then url=$URL_A key=$KEY_A; else url=$URL_G key=$KEY_G; fi
        log "round $r: $([[ $which == A ]] && echo "$A_NAME" || echo "$G_NAME")"
        BENCH_KEY=$key taskset -c 1 wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$TMP/create.lua" \
            "$url/api/v1/contacts" >"$TMP/w.wrk"
        figures "$TMP/w.wrk"
        if [[ $which == A ]]; then A+=("$RPS") AP+=("$P99"); else G+=("$RPS") GP+=("$P99"); fi
    done
done
read -r GC GW < <(commits "$URL_G")
read -r AC AW < <(commits "$URL_A")
kill "$PID_A" "$PID_G"

# --- 2. the mixed agent load ---------------------------------------------------------------
taskset -c 1 "$RECEIVER" >"$TMP/receiver.log" 2>&1 &
PIDS+=("$!")
RECEIVER_URL=$(wait_listening "$TMP/receiver.log" "$!" receiver)
HOOK=$RECEIVER_URL/hook

# settle -> waits until the receiver has had nothing new for 1.5 s: the server of the last
# window has sent its backlog (its sender yields while requests are in flight, and catches up
# after). Otherwise that catching up would share core 0 with the next window's server.
settle() {
    local last=-1 now deadline=$((SECONDS + 300))
    while now=$(curl -sf "$RECEIVER_URL/count") && [[ $now != "$last" ]]; do
        ((SECONDS < deadline)) || die "webhook deliveries still arriving after 5 minutes"
        last=$now
        sleep 1.5
    done
}

# prepare URL KEY -> two endpoints on `*`, 2,000 contacts, and their ids in $TMP/ids.URLHASH
prepare() {
    local i
    for _ in 1 2; do
        curl -sf -o /dev/null -H "x-api-key: $2" -H 'content-type: application/json' \
            --data "{\"url\":\"$HOOK\",\"events\":[\"*\"]}" "$1/api/v1/webhooks" || die "could not create an endpoint"
    done
    python3 - "$1" "$2" "$TMP/ids.$3" <<'PY'
import json, sys, urllib.request
url, key, out = sys.argv[1:]
ids = []
for b in range(20):
    contacts = [{"first_name": f"Seed{b}-{i}", "last_name": f"Seed{i % 50}", "title": ["CTO", "CEO", "Engineer"][i % 3]} for i in range(100)]
    body = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                       "params": {"name": "create_contacts", "arguments": {"contacts": contacts}}}).encode()
    req = urllib.request.Request(url + "/api/v1/mcp", body, {"content-type": "application/json",
        "accept": "application/json, text/event-stream", "x-api-key": key, "MCP-Protocol-Version": "2025-06-18"})
    res = json.load(urllib.request.urlopen(req))
    ids += [c["id"] for c in res["result"]["structuredContent"]["items"]]
open(out, "w").write("\n".join(ids) + "\n")
PY
}

cat >"$TMP/mixed.lua" <<'LUA'
-- A third writes; the rest search, read and count, as agents at work do.
local ids, n, i = {}, 0, 0
function init(args)
  wrk.method = "POST"
  wrk.headers["content-type"] = "application/json"
  wrk.headers["accept"] = "application/json, text/event-stream"
  wrk.headers["MCP-Protocol-Version"] = "2025-06-18"
  wrk.headers["x-api-key"] = args[1]
  for line in io.lines(args[2]) do if #line > 0 then n = n + 1; ids[n] = line end end
  math.randomseed(os.time() + n)
end
local function call(name, arguments)
  return wrk.format(nil, nil, nil, '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"' .. name .. '","arguments":' .. arguments .. '}}')
end
function request()
  i = i + 1
  local r = i % 9
  if r < 3 then
    -- New people, apart from those the reads and counts look at: each read costs the same
    -- in the last window as in the first, so the rate shows what the growing tables cost.
    return call("create_contacts", '{"contacts":[{"first_name":"Agent","last_name":"Agent' .. (i % 50) .. '","title":"CTO","tags":["lead"]}]}')
  elseif r < 5 then
    return call("search_records", '{"entity":"contact","filters":[{"field":"last_name","op":"eq","value":"Seed' .. (i % 50) .. '"}],"limit":25}')
  elseif r < 7 then
    return call("get_records", '{"records":[{"entity":"contact","id":"' .. ids[(i % n) + 1] .. '"}]}')
  else
    return call("count_records", '{"entity":"contact","filters":[{"field":"last_name","op":"eq","value":"Seed' .. (i % 50) .. '"}],"group_by":"title"}')
  end
end
function response(status, headers, body)
  if status ~= 200 or body:find('"isError":true', 1, true) then
    io.stderr:write("bad answer: " .. status .. " " .. body:sub(1, 300) .. "\n")
  end
end
LUA
if [[ -n $BASELINE ]]; then serve mixed_alone true "$BASELINE"; else serve mixed_alone false; fi
URL_MA=$URL KEY_MA=$KEY
prepare "$URL_MA" "$KEY_MA" alone
serve mixed_grouped true
URL_MG=$URL KEY_MG=$KEY
prepare "$URL_MG" "$KEY_MG" grouped
settle
MIXED_ROWS=""
for w in $(seq 1 "$WINDOWS"); do
    row="| $w |"
    for which in alone grouped; do
        if [[ $which == alone ]]; then url=$URL_MA key=$KEY_MA; else url=$URL_MG key=$KEY_MG; fi
        log "mixed window $w: $which"
        taskset -c 1 wrk -t2 -c32 -d"$DURATION" --latency -s "$TMP/mixed.lua" "$url/api/v1/mcp" -- "$key" "$TMP/ids.$which" \
            >"$TMP/m.wrk" 2>"$TMP/m.err"
        [[ -s $TMP/m.err ]] && die "mixed load: $(head -3 "$TMP/m.err")"
        figures "$TMP/m.wrk"
        settle
        row="$row $RPS | $P99 ms |"
    done
    MIXED_ROWS+="$row"$'\n'
done

cat <<EOF
### Group commit (\`bash bench/writes.sh\`, $(date -u +%Y-%m-%d))

Concurrent writes: $CONNECTIONS connections each creating one contact (REST), $ROUNDS interleaved
rounds of $DURATION, medians; SQLite with \`synchronous=FULL\`.

| | requests/s | p99 | commits / writes |
|---|---:|---:|---:|
| $A_LABEL | $(median "${A[@]}") | $(median "${AP[@]}") ms | $AC / $AW |
| $G_LABEL | $(median "${G[@]}") | $(median "${GP[@]}") ms | $GC / $GW |

Mixed agent load through MCP: 32 connections, a third \`create_contacts\`, the rest
\`search_records\`, \`get_records\` and \`count_records\` with \`group_by\`; two webhook endpoints
on \`*\`, sender on. Consecutive windows of $DURATION per server, alternating; each database
grows by the writes of its windows.

| window | $A_NAME: requests/s | p99 | $G_NAME: requests/s | p99 |
|---:|---:|---:|---:|---:|
$MIXED_ROWS
EOF
