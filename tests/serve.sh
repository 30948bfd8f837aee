# Sourced by the end-to-end runners (tests/python, tests/browser, tests/schemathesis): their
# Python packages, the server binary, a scratch directory, `rapport serve` on a free loopback
# port, and a cleanup that stops it and shows its last output when the run failed.
#
# Needs: BIN (the server binary), log() (a message on stderr), NAME (the scratch dir's prefix).
# Sets:  TMP (scratch dir, after `setup_scratch`), SERVER_PID, BASE (after `start_server`).

# A virtualenv at $1 with the pinned requirements file $2, installed again only when it changes.
ensure_venv() {
    local venv=$1 requirements=$2 hash
    if [[ ! -x "$venv/bin/python" ]]; then
        log "creating virtualenv $venv ($("${PYTHON:-python3}" --version 2>&1))"
        "${PYTHON:-python3}" -m venv "$venv"
    fi
    hash="$(sha256sum "$requirements" | cut -d' ' -f1)"
    if [[ "$(cat "$venv/.requirements.sha256" 2>/dev/null || true)" != "$hash" ]]; then
        log "installing $requirements"
        "$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
        echo "$hash" >"$venv/.requirements.sha256"
    fi
}

# Builds the debug server unless $1 is 1 (CI builds it once), then checks it is there.
ensure_binary() {
    if [[ "${1:-0}" != 1 ]]; then
        log "cargo build --bin rapport"
        cargo build --bin rapport
    fi
    [[ -x "$BIN" ]] || { log "no server binary at $BIN"; exit 1; }
}

# A scratch directory (TMP) that goes, with the server, when the runner exits.
setup_scratch() {
    TMP="$(mktemp -d "${TMPDIR:-/tmp}/rapport-$NAME.XXXXXX")"
    SERVER_PID=""
    BASE=""
    trap cleanup EXIT
    trap 'exit 130' INT
    trap 'exit 143' TERM
}

cleanup() {
    local status=$?
    if [[ -n "${SERVER_PID:-}" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
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

# The server's output so far, without colour codes.
server_output() { sed 's/\x1b\[[0-9;]*m//g' "$TMP/server.out"; }

# Starts the server and waits (30 s at most) for its "rapport listening on" line and, when
# given, for a line matching the extended regex $1 too.
start_server() {
    local also="${1:-}"
    RAPPORT_ADDR=127.0.0.1:0 "$BIN" serve >"$TMP/server.out" 2>&1 &
    SERVER_PID=$!
    local deadline=$((SECONDS + 30))
    while ((SECONDS < deadline)); do
        BASE="$(server_output | grep -oE 'rapport listening on http://[][A-Za-z0-9.:_-]+' | head -n1 \
            | sed 's/^rapport listening on //')" || true
        if [[ -n "$BASE" ]] && { [[ -z "$also" ]] || server_output | grep -qE "$also"; }; then
            log "server at $BASE (pid $SERVER_PID)"
            return 0
        fi
        if ! kill -0 "$SERVER_PID" 2>/dev/null; then
            log "server exited before it was ready"
            return 1
        fi
        sleep 0.1
    done
    log "the server was not ready within 30 s"
    return 1
}
