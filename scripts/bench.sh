#!/usr/bin/env bash
# The standard wsgate benchmark set. Each scenario gets a freshly started gateway
# (build/wsgate --port 0 --workers 1, pinned to core 1) and the load generator
# (build/wsgate-bench, pinned to core 0):
#
#   connect        19000 idle authenticated connections; time to connect, server RSS per connection
#   fanout-1x1000  1 channel x 1000 subscribers, --find-max: highest publish rate that keeps
#                  delivery >= 99.9 % and p99 < 50 ms
#   fanout-1000x10 1000 channels x 10 subscribers at 2000 publishes/s
#   rtt            ping/pong round trips on one connection
#
# Each scenario prints a human summary (stderr) and a JSON report (stdout); the reports and the
# gateway logs are also kept in $BENCH_OUT. The gateway is stopped on exit, however we exit.
#
# Usage: scripts/bench.sh [BUILD_DIR]                 (default: build)
# Environment:
#   BENCH_OUT            where reports go            (default: BUILD_DIR/bench-results)
#   BENCH_CONNECTIONS    connections of `connect`    (default: 19000; needs ulimit -Hn above it)
#   BENCH_STEP_DURATION  seconds per find-max step   (default: 3)
#   BENCH_ONLY           run only these scenarios, space-separated names from the list above
#   WSGATE, WSGATE_BENCH binaries to use instead of BUILD_DIR/wsgate, BUILD_DIR/wsgate-bench
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${1:-$root/build}"
gateway="${WSGATE:-$build/wsgate}"
bench="${WSGATE_BENCH:-$build/wsgate-bench}"
out_dir="${BENCH_OUT:-$build/bench-results}"
connections="${BENCH_CONNECTIONS:-19000}"
step_duration="${BENCH_STEP_DURATION:-3}"
only="${BENCH_ONLY:-}"

gateway_core=1
bench_core=0

die() { echo "bench.sh: $*" >&2; exit 1; }

for bin in "$gateway" "$bench"; do
    [[ -x $bin ]] || die "$bin not found; build first (make build)"
done
command -v taskset >/dev/null || die "taskset not found (util-linux)"
(( $(nproc) >= 2 )) || die "needs 2 cores: the gateway and the generator are pinned to one each"
mkdir -p "$out_dir"

# Both processes inherit this: the gateway and the generator each hold one descriptor per
# connection (plus a few).
ulimit -n "$(ulimit -Hn)"
if (( $(ulimit -n) < connections + 64 )); then
    echo "bench.sh: warning: ulimit -n is $(ulimit -n); $connections connections will not all fit" >&2
fi

gateway_pid=""
port=""

# kill -0 succeeds on a zombie, so ask for the process state instead.
gateway_alive() {
    local state
    state="$(ps -o stat= -p "$gateway_pid" 2>/dev/null)" || return 1
    [[ $state != Z* ]]
}

stop_gateway() {
    [[ -n $gateway_pid ]] || return 0
    kill -TERM "$gateway_pid" 2>/dev/null || true
    # Graceful drain first (--shutdown-timeout), then no more patience.
    for _ in $(seq 150); do
        gateway_alive || break
        sleep 0.1
    done
    kill -KILL "$gateway_pid" 2>/dev/null || true
    wait "$gateway_pid" 2>/dev/null || true
    gateway_pid=""
}
trap stop_gateway EXIT
trap 'exit 130' INT TERM

# start_gateway NAME: starts the gateway and sets $port from its "wsgate listening on" line.
start_gateway() {
    local name=$1
    local stdout_file="$out_dir/gateway-$name.stdout" log_file="$out_dir/gateway-$name.log"
    : >"$stdout_file"
    # taskset execs the gateway, so $! is the gateway's own pid (wsgate-bench reads its RSS).
    taskset -c "$gateway_core" "$gateway" --port 0 --workers 1 --max-connections 1000000 \
        --log-level warn >"$stdout_file" 2>"$log_file" &
    gateway_pid=$!
    port=""
    for _ in $(seq 100); do
        port="$(sed -n 's|^wsgate listening on http://.*:\([0-9][0-9]*\)$|\1|p' "$stdout_file" | head -n 1)"
        [[ -n $port ]] && return 0
        if ! gateway_alive; then
            wait "$gateway_pid" 2>/dev/null || true
            gateway_pid=""
            echo "bench.sh: the gateway exited at start-up:" >&2
            tail -n 20 "$log_file" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "bench.sh: the gateway printed no 'wsgate listening on' line within 10 s" >&2
    stop_gateway
    return 1
}

failed=()

# scenario NAME ARGS...: one benchmark against a fresh gateway.
scenario() {
    local name=$1
    shift
    if [[ -n $only && " $only " != *" $name "* ]]; then return 0; fi
    echo >&2
    echo "=== $name: wsgate-bench $*" >&2
    if ! start_gateway "$name"; then
        failed+=("$name")
        return 0
    fi
    local args=("$@")
    if [[ ${args[0]} == connect ]]; then args+=(--server-pid "$gateway_pid"); fi
    if ! taskset -c "$bench_core" "$bench" --port "$port" --json "$out_dir/$name.json" "${args[@]}"; then
        failed+=("$name")
    fi
    stop_gateway
}

scenario connect connect --connections "$connections" --hold 5
scenario fanout-1x1000 fanout --subscribers 1000 --channels 1 --publishers 1 --payload 64 \
    --find-max --rate 250 --step-duration "$step_duration" --max-rate 1000000
scenario fanout-1000x10 fanout --subscribers 10000 --channels 1000 --publishers 1 --payload 64 \
    --rate 2000 --duration 10
scenario rtt rtt --duration 5

echo >&2
echo "bench.sh: reports in $out_dir" >&2
if (( ${#failed[@]} > 0 )); then
    die "failed: ${failed[*]}"
fi
