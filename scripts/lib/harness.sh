# Process harness shared by the bash benchmark scripts (scripts/bench, scripts/bench-cluster);
# the bash counterpart of the Rust test kit (testkit/src/lib.rs). Source it after `cd`-ing
# anywhere; it offers:
#   log MSG...              "[<script> HH:MM:SS] MSG" on stderr
#   PIDS, stop_pid PID [GRACE_SECS], cleanup
#                           every process started here is added to PIDS and stopped by pid
#                           (SIGTERM, then SIGKILL after the grace); cleanup stops them all, last
#                           started first, and runs on exit (INT and TERM exit 130)
#   cpu_secs PID            user + system CPU seconds the process used so far
#   free_port VAR           a free loopback port for a process started later, into VAR
#   wait_port PORT SECS     until something listens on PORT (1 after SECS)
#   wait_ready PORT PID SECS
#                           until the node on PORT answers /readyz (1 if PID exits or after SECS)
#   bench_auth              the nodes' authentication: a fixed ingest key, a per-run token secret
#   need_tansu              exits when tansu is not on the PATH
#   start_tansu PORT LOG    a fresh in-memory tansu broker on PORT (pid in TANSU_PID) with the
#                           node's four topics of 8 partitions
# Needs python3 (free_port) and curl (wait_ready).

log() { printf '[%s %s] %s\n' "${0##*/}" "$(date -u +%H:%M:%S)" "$*" >&2; }

# --- process bookkeeping: everything started here is stopped here, by pid -----------------
PIDS=()
stop_pid() {
    local pid="$1" grace="${2:-20}"
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null || true; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 $((grace * 10))); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
        log "pid $pid still running after ${grace}s: SIGKILL"
        kill -KILL "$pid" 2>/dev/null || true
    fi
    wait "$pid" 2>/dev/null || true
}
# Last started first: a node before its broker, cluster members before the store host (n1).
cleanup() {
    local i
    for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do stop_pid "${PIDS[$i]}" 5; done
}
trap cleanup EXIT
trap 'exit 130' INT TERM

cpu_secs() { # pid -> user+system CPU seconds so far
    local ticks
    ticks="$(getconf CLK_TCK)"
    awk -v t="$ticks" '{sub(/^.*\) /, ""); print ($12 + $13) / t}' "/proc/$1/stat" 2>/dev/null || echo 0
}

# As the test kit's free_port: below Linux's ephemeral range (32768-60999), where a port the
# kernel hands out for bind(0) or an outgoing connection could be taken by another socket
# before our process binds it. A per-process offset keeps scripts (and test binaries) run side
# by side apart; the counter never hands out a port twice in one script; a port is used only
# when it binds. It assigns to VAR rather than print so the counter survives ($(...) is a
# subshell).
HARNESS_NEXT_PORT=0
free_port() { # VAR
    local port
    while :; do
        port=$((20000 + ($$ % 60 * 200 + HARNESS_NEXT_PORT) % 12000))
        HARNESS_NEXT_PORT=$((HARNESS_NEXT_PORT + 1))
        if python3 -c 'import socket, sys; socket.socket().bind(("127.0.0.1", int(sys.argv[1])))' \
            "$port" 2>/dev/null; then
            printf -v "$1" '%s' "$port"
            return 0
        fi
    done
}
wait_port() { # port timeout_secs
    local deadline=$((SECONDS + $2))
    until (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; do
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}
wait_ready() { # http_port pid timeout_secs
    local deadline=$((SECONDS + $3))
    until curl -fsS -o /dev/null "http://127.0.0.1:$1/readyz" 2>/dev/null; do
        kill -0 "$2" 2>/dev/null || return 1
        ((SECONDS < deadline)) || return 1
        sleep 0.2
    done
}

# Benchmark nodes are local and short-lived: a fixed ingest key (scripts/bench's wrk script
# sends it) and a per-run token secret, shared by every node of the run.
bench_auth() {
    export SENTINEL_AUTH_API_KEYS="bench:ingest:bench-ingest-key-local-only-0001"
    SENTINEL_AUTH_JWT_SECRET="$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    export SENTINEL_AUTH_JWT_SECRET
}

need_tansu() {
    command -v tansu >/dev/null || {
        echo "scripts/${0##*/}: tansu is not on the PATH: cargo install tansu --features dynostore,libsql" >&2
        exit 1
    }
}
KAFKA_TOPICS=(transactions transactions_approved transactions_fraud transactions_dlq)
start_tansu() { # port log -> TANSU_PID; topic output goes to log's directory, topics.log
    need_tansu
    # Without RUST_LOG: tansu reads it too, and at debug it logs every fetch and crawls.
    env -u RUST_LOG tansu broker --listener-url "tcp://127.0.0.1:$1" --advertised-listener-url "tcp://127.0.0.1:$1" \
        --storage-engine memory://tansu/ >"$2" 2>&1 &
    TANSU_PID=$!
    PIDS+=("$TANSU_PID")
    wait_port "$1" 30 || { echo "scripts/${0##*/}: tansu did not listen on $1 (log: $2)" >&2; return 1; }
    local t
    for t in "${KAFKA_TOPICS[@]}"; do
        timeout 30 tansu topic create "$t" --partitions 8 --broker "tcp://127.0.0.1:$1" \
            >>"$(dirname "$2")/topics.log" 2>&1 || {
            # A node would create it, but with its own partition count, and a floor run has no
            # node: either way the run would not measure what it says.
            echo "scripts/${0##*/}: creating topic $t failed (log: $(dirname "$2")/topics.log)" >&2
            return 1
        }
    done
}
