# Shared by the bench scripts (sourced): a scratch dir TMP, the PIDS killed on exit, log/die,
# wrk (installed from Debian when missing), and wait_listening.
# shellcheck shell=bash

TMP=$(mktemp -d "${TMPDIR:-/tmp}/rapport-bench.XXXXXX")
PIDS=()

cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do
        kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]}"; do
        # Bounded wait, then force.
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'bench: %s\n' "$*" >&2; exit 1; }

if ! command -v wrk >/dev/null 2>&1; then
    log "installing wrk"
    if ! apt-get install -y wrk >/dev/null 2>&1; then
        apt-get update >/dev/null && apt-get install -y wrk >/dev/null
    fi
fi
command -v wrk >/dev/null || die "wrk is not installed and could not be installed"
for tool in curl python3 taskset; do
    command -v "$tool" >/dev/null || die "$tool is required"
done

# wait_listening LOGFILE PID PREFIX -> prints the base URL (http://HOST:PORT)
wait_listening() {
    local file=$1 pid=$2 prefix=$3 url=""
    for _ in $(seq 1 300); do
        url=$(grep -m1 -o "$prefix listening on http://[^ ]*" "$file" 2>/dev/null | sed 's/.* on //' || true)
        [[ -n $url ]] && { printf '%s\n' "$url"; return 0; }
        kill -0 "$pid" 2>/dev/null || { cat "$file" >&2; die "$prefix exited before listening"; }
        sleep 0.1
    done
    cat "$file" >&2
    die "$prefix did not print its address within 30 s"
}

# with_receiver -> the release server and webhook receiver (built unless BENCH_SKIP_BUILD) as
# RAPPORT and RECEIVER, and the environment of a server that webhooks reach on 127.0.0.1
with_receiver() {
    if [[ -z "${BENCH_SKIP_BUILD:-}" ]]; then
        log "building (release)"
        cargo build --release --bin rapport --example webhook_receiver
    fi
    RAPPORT=$ROOT/target/release/rapport
    RECEIVER=$ROOT/target/release/examples/webhook_receiver
    export RAPPORT_LOG=warn RAPPORT_RATE_LIMIT=0 RAPPORT_WEBHOOK_ALLOW_PRIVATE=true
}
