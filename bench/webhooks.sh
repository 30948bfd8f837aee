#!/usr/bin/env bash
# Webhook benchmark (SPEC section 10, issue 11):
#
#   bash bench/webhooks.sh
#
# 1. Deliveries per second: BENCH_EVENTS contacts are created (REST, 100 a call) while the
#    sender is off, so BENCH_EVENTS deliveries wait in the outbox for one endpoint; then a
#    server with the sender on starts, and the time until the receiver
#    (benches/webhook_receiver.rs, answers 204) has them all gives the rate.
# 2. The cost to writes: wrk POSTs one contact per request (REST `POST /api/v1/contacts`) to
#    three servers on fresh SQLite databases: no webhook endpoint; ten subscribed to `*` with
#    the sender off (the outbox's own cost: queueing in the write's transaction); ten with the
#    sender on, delivering to the receiver on the same cores. Interleaved rounds; medians.
#
# Servers pinned to core 0, wrk and the receiver to core 1; 127.0.0.1 only; stops by itself.
# Writes its section of docs/benchmarks.md (between the webhooks markers; bench/run.sh keeps
# it when it rewrites the file) and prints it.
#
# Knobs: BENCH_EVENTS (20000), BENCH_DURATION (10s), BENCH_CONNECTIONS (16), BENCH_ROUNDS (3),
# BENCH_SKIP_BUILD (unset), BENCH_REPORT (docs/benchmarks.md).
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$PWD
EVENTS=${BENCH_EVENTS:-20000}
DURATION=${BENCH_DURATION:-10s}
CONNECTIONS=${BENCH_CONNECTIONS:-16}
ROUNDS=${BENCH_ROUNDS:-3}
REPORT=${BENCH_REPORT:-docs/benchmarks.md}

# shellcheck source=bench/common.sh
source bench/common.sh

with_receiver

# serve NAME DB SENDER -> starts a server; sets URL and PID
serve() {
    RAPPORT_DATABASE_URL="sqlite://$TMP/$2.db" RAPPORT_ADDR=127.0.0.1:0 RAPPORT_WEBHOOK_SENDER=$3 \
        taskset -c 0 "$RAPPORT" serve >"$TMP/$1.log" 2>&1 &
    PID=$!
    PIDS+=("$PID")
    URL=$(wait_listening "$TMP/$1.log" "$PID" rapport)
}

# key DB -> an owner key of a fresh database
key() {
    RAPPORT_DATABASE_URL="sqlite://$TMP/$1.db" "$RAPPORT" keys create --name bench --role owner --json \
        | python3 -c 'import json,sys; print(json.load(sys.stdin)["key"])'
}

# endpoints URL KEY N -> N endpoints subscribed to everything, at the receiver
endpoints() {
    for _ in $(seq 1 "$3"); do
        curl -sf -o /dev/null -H "x-api-key: $2" -H 'content-type: application/json' \
            --data "{\"url\":\"$HOOK\",\"events\":[\"*\"]}" "$1/api/v1/webhooks" || die "could not create an endpoint"
    done
}

count() { curl -sf "$RECEIVER_URL/count"; }

taskset -c 1 "$RECEIVER" >"$TMP/receiver.log" 2>&1 &
PIDS+=("$!")
RECEIVER_URL=$(wait_listening "$TMP/receiver.log" "$!" receiver)
HOOK=$RECEIVER_URL/hook

# --- 1. deliveries per second ---------------------------------------------------------------
KEY=$(key drain)
serve queue drain false
endpoints "$URL" "$KEY" 1
log "queueing $EVENTS deliveries (sender off)"
python3 - "$URL" "$KEY" "$EVENTS" <<'PY'
import json, sys, urllib.request
url, key, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
for start in range(0, total, 100):
    body = json.dumps({"items": [{"first_name": f"C{i}"} for i in range(start, min(start + 100, total))]}).encode()
    req = urllib.request.Request(f"{url}/api/v1/contacts", body, {"x-api-key": key, "content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        assert r.status == 201, r.status
PY
kill "$PID"; wait "$PID" 2>/dev/null || true
[[ $(count) == 0 ]] || die "the sender was supposed to be off"
log "draining with the sender on"
START=$(date +%s.%N)
serve drain drain true
DEADLINE=$((SECONDS + 600))
while (($(count) < EVENTS)); do
    ((SECONDS < DEADLINE)) || die "only $(count) of $EVENTS deliveries arrived in 10 minutes"
    sleep 0.05
done
END=$(date +%s.%N)
DRAIN_S=$(awk -v a="$START" -v b="$END" 'BEGIN {printf "%.2f", b - a}')
DRAIN_RATE=$(awk -v n="$EVENTS" -v s="$DRAIN_S" 'BEGIN {printf "%.0f", n / s}')
DRAIN_CPU=$(awk '{printf "%.0f", ($14 + $15) / '"$(getconf CLK_TCK)"' * 1e6 / '"$EVENTS"'}' "/proc/$PID/stat")
kill "$PID"; wait "$PID" 2>/dev/null || true
log "$EVENTS deliveries in $DRAIN_S s: $DRAIN_RATE/s"

# --- 2. write throughput, no endpoint vs ten -------------------------------------------------
cat >"$TMP/create.lua" <<'LUA'
-- One contact per request; wrk counts answers other than 2xx ("Non-2xx"), which fail the run.
wrk.method = "POST"
wrk.headers["content-type"] = "application/json"
wrk.headers["x-api-key"] = os.getenv("BENCH_KEY")
wrk.body = '{"first_name":"Bench","last_name":"Writer","title":"CTO"}'
LUA
KEY0=$(key zero)
serve zero zero true
URL0=$URL PID0=$PID
KEYQ=$(key queued)
serve queued queued false
URLQ=$URL PIDQ=$PID
endpoints "$URLQ" "$KEYQ" 10
KEY10=$(key ten)
serve ten ten true
URL10=$URL PID10=$PID
endpoints "$URL10" "$KEY10" 10
BEFORE=$(count)

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR] = $1} END {print (NR % 2 ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2)}'; }
# cpu PID -> the process's CPU time so far, in clock ticks
cpu() { awk '{print $14 + $15}' "/proc/$1/stat"; }
# load NAME URL KEY PID -> RPS, P99 (ms), CPU (the server's µs of CPU per write served)
load() {
    local out=$TMP/$1.wrk c0
    c0=$(cpu "$4")
    BENCH_KEY=$3 taskset -c 1 wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$TMP/create.lua" "$2/api/v1/contacts" >"$out"
    grep -q 'Non-2xx' "$out" && die "$1: failed writes: $(cat "$out")"
    RPS=$(awk '/^Requests\/sec:/ {print $2}' "$out")
    CPU_US=$(awk -v a="$c0" -v b="$(cpu "$4")" -v t="$(getconf CLK_TCK)" '/requests in/ {printf "%.0f", (b - a) / t * 1e6 / $1}' "$out")
    P99=$(awk '$1 == "99%" {v = $2; if (v ~ /us$/) {sub(/us$/, "", v); v /= 1000} else if (v ~ /ms$/) sub(/ms$/, "", v); else if (v ~ /s$/) {sub(/s$/, "", v); v *= 1000}; print v}' "$out")
}
Z=() Q=() T=() ZP=() QP=() TP=() ZC=() QC=() TC=()
# run_case N: one of the three loads, its figures kept.
run_case() {
    case $1 in
        0) log "no endpoint"; load zero "$URL0" "$KEY0" "$PID0"; Z+=("$RPS"); ZP+=("$P99"); ZC+=("$CPU_US") ;;
        1) log "ten endpoints, sender off"; load queued "$URLQ" "$KEYQ" "$PIDQ"; Q+=("$RPS"); QP+=("$P99"); QC+=("$CPU_US") ;;
        2)
            log "ten endpoints, sender on"
            load ten "$URL10" "$KEY10" "$PID10"; T+=("$RPS"); TP+=("$P99"); TC+=("$CPU_US")
            # Its backlog is sent before the next load, which would otherwise share core 0
            # with it.
            TEN_WRITES=$((TEN_WRITES + $(awk '/requests in/ {print $1}' "$TMP/ten.wrk")))
            local deadline=$((SECONDS + 300)) t0=$SECONDS
            while (($(count) - BEFORE < 10 * TEN_WRITES)); do
                ((SECONDS < deadline)) || die "the ten endpoints' deliveries did not all arrive"
                sleep 0.1
            done
            CATCH_UP+=("$((SECONDS - t0))")
            ;;
    esac
}
TEN_WRITES=0 CATCH_UP=()
# Each round starts with the next case, so that none always runs first (the machine's speed
# drifts within a round too).
for r in $(seq 1 "$ROUNDS"); do
    log "round $r"
    for i in 0 1 2; do run_case $(((r - 1 + i) % 3)); done
done
ZERO=$(median "${Z[@]}") QUEUED=$(median "${Q[@]}") TEN=$(median "${T[@]}")
ZERO_P99=$(median "${ZP[@]}") QUEUED_P99=$(median "${QP[@]}") TEN_P99=$(median "${TP[@]}")
ZERO_CPU=$(median "${ZC[@]}") QUEUED_CPU=$(median "${QC[@]}") TEN_CPU=$(median "${TC[@]}")
COST=$(awk -v a="$ZERO" -v b="$TEN" 'BEGIN {printf "%.0f", (a - b) / a * 100}')
QCOST=$(awk -v a="$ZERO" -v b="$QUEUED" 'BEGIN {printf "%.0f", (a - b) / a * 100}')
SENT=$(($(count) - BEFORE))

CPU=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)
SECTION=$(cat <<EOF
<!-- webhooks:start -->
## Webhooks

Measured $(date -u '+%Y-%m-%d %H:%M UTC') with \`bash bench/webhooks.sh\` ($(nproc) cores, ${CPU:-unknown CPU}); SQLite,
release builds, servers on core 0, wrk and the receiver (\`benches/webhook_receiver.rs\`, which
answers 204) on core 1, 127.0.0.1.

| | figure |
|---|---|
| deliveries per second to one local endpoint ($EVENTS queued, then drained by one process) | **$DRAIN_RATE/s** ($EVENTS in $DRAIN_S s; $DRAIN_CPU µs of server CPU each) |
| writes (\`POST /api/v1/contacts\`, one contact each), no endpoint | $(printf '%.0f' "$ZERO") req/s, p99 $ZERO_P99 ms; $ZERO_CPU µs of server CPU a write |
| the same writes with ten endpoints subscribed to \`*\`, sender off (queueing only) | $(printf '%.0f' "$QUEUED") req/s, p99 $QUEUED_P99 ms: **${QCOST}%** less; $QUEUED_CPU µs a write |
| the same writes with ten endpoints subscribed to \`*\`, sender on (delivering 10 per write) | $(printf '%.0f' "$TEN") req/s, p99 $TEN_P99 ms: **${COST}%** less; $TEN_CPU µs a write while the load ran |

Medians of $ROUNDS interleaved rounds of $DURATION, $CONNECTIONS connections (rounds: none
${Z[*]}; queueing ${Q[*]}; delivering ${T[*]}; CPU µs a write: ${ZC[*]}; ${QC[*]}; ${TC[*]}).
With ten endpoints every write also builds the body once per event and queues one event row
naming the ten endpoints in its transaction. With the sender on, the sender fans events out
into deliveries, sends ten requests per write and records them; while requests are in
flight it rests nine times as long as it worked, so during the load it falls behind:
$SENT deliveries for $TEN_WRITES writes, all received; after each run the backlog took
${CATCH_UP[*]} s more to send, and the next load waited for it.
<!-- webhooks:end -->
EOF
)
printf '%s\n' "$SECTION"
if [[ -f $REPORT ]] && grep -q '<!-- webhooks:start -->' "$REPORT"; then
    python3 - "$REPORT" "$TMP/section" <<'PY' 3<<<"$SECTION"
import re, sys
path = sys.argv[1]
section = open(3).read().rstrip("\n")
text = open(path).read()
text = re.sub(r"<!-- webhooks:start -->.*?<!-- webhooks:end -->", lambda _: section, text, flags=re.S)
open(path, "w").write(text)
PY
else
    printf '\n%s\n' "$SECTION" >>"$REPORT"
fi
log "wrote the webhooks section of $REPORT"
