#!/usr/bin/env bash
# Broker throughput through a Redis Cluster of SHARDS masters: two gateways, A and B, with the
# generator's publishers on A and its subscribers on B, so every message goes
# A -> master owning the channel's slot (one EVALSHA: INCR seq + SPUBLISH) -> B.
#
#   SHARDS redis-server masters (cluster mode, no persistence) are formed into a cluster by hand
#   (CLUSTER MEET + CLUSTER ADDSLOTSRANGE, since redis-cli --cluster create needs 3 masters),
#   then both gateways start with --redis-cluster. Redis and the gateways are pinned to core 1,
#   the generator to core 0. While the generator runs, each master's CPU (INFO CPU,
#   used_cpu_user + used_cpu_sys) and its EVALSHA and SPUBLISH calls (INFO COMMANDSTATS) are
#   sampled every 0.5 s. Printed per master, for the whole run and for the publishing window:
#   publishes handled, CPU seconds, CPU us per publish and each master's share of the publishes,
#   then the busiest master and the Redis-tier ceiling derived from it. Everything the script
#   started is stopped on exit, however it exits.
#
# Usage: scripts/bench-cluster.sh SHARDS [extra wsgate-bench fanout args...]
#   e.g. scripts/bench-cluster.sh 3 -s 10000 -k 1000 -r 4000 -d 5
# Environment:
#   BENCH_OUT            where the JSON report, the samples and the gateway logs go
#                        (default: build/bench-results; files cluster-SHARDS*)
#   WSGATE, WSGATE_BENCH binaries to use instead of build/wsgate, build/wsgate-bench
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
gateway="${WSGATE:-$root/build/wsgate}"
bench="${WSGATE_BENCH:-$root/build/wsgate-bench}"
out_dir="${BENCH_OUT:-$root/build/bench-results}"

server_core=1
bench_core=0
slots=16384

die() { echo "bench-cluster.sh: $*" >&2; exit 1; }

(( $# >= 1 )) || die "usage: scripts/bench-cluster.sh SHARDS [extra wsgate-bench fanout args...]"
shards=$1
shift
if [[ ! $shards =~ ^[1-9][0-9]*$ ]] || (( shards > 64 )); then
    die "SHARDS must be 1..64, not '$shards'"
fi

for bin in "$gateway" "$bench"; do
    [[ -x $bin ]] || die "$bin not found; build first (make build)"
done
for tool in redis-server redis-cli taskset curl; do
    command -v "$tool" >/dev/null || die "$tool not found (scripts/install-deps.sh cluster)"
done
(( $(nproc) >= 2 )) || die "needs 2 cores: the servers and the generator are pinned to one each"
mkdir -p "$out_dir"

# The generator and gateway B each hold one descriptor per subscriber (plus a few).
ulimit -n "$(ulimit -Hn)"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# SHARDS client ports, then SHARDS cluster-bus ports, all free. Below the ephemeral range: a
# port there may be some client's source port, which a connect() probe cannot see but which
# makes bind() fail.
ephemeral_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
span=$((ephemeral_low - 10000 - 2 * shards))
ports=()
bus_ports=()
for _ in $(seq 1 50); do
    base=$((10000 + RANDOM % span))
    all_free=1
    for ((i = 0; i < 2 * shards; i++)); do
        port_free $((base + i)) || { all_free=0; break; }
    done
    if (( all_free )); then
        for ((i = 0; i < shards; i++)); do
            ports+=($((base + i)))
            bus_ports+=($((base + shards + i)))
        done
        break
    fi
done
(( ${#ports[@]} == shards )) || die "found no $((2 * shards)) free consecutive ports"

dir="$(mktemp -d "${TMPDIR:-/tmp}/wsgate-bench-cluster.XXXXXX")"
redis_pids=()
gateway_pids=()
sampler_pid=""

# kill -0 succeeds on a zombie, so ask for the process state instead.
alive() {
    local state
    state="$(ps -o stat= -p "$1" 2>/dev/null)" || return 1
    [[ $state != Z* ]]
}

stop_pid() {  # pid: TERM, up to 15 s of patience (a gateway drains first), then KILL
    kill -TERM "$1" 2>/dev/null || true
    for _ in $(seq 150); do
        alive "$1" || break
        sleep 0.1
    done
    kill -KILL "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

stop_all() {
    local pid
    if [[ -n $sampler_pid ]]; then
        kill -TERM "$sampler_pid" 2>/dev/null || true
        wait "$sampler_pid" 2>/dev/null || true
        sampler_pid=""
    fi
    for pid in "${gateway_pids[@]}"; do stop_pid "$pid"; done
    for pid in "${redis_pids[@]}"; do stop_pid "$pid"; done
    gateway_pids=()
    redis_pids=()
    rm -rf "$dir"
}
trap stop_all EXIT
trap 'exit 130' INT TERM

cli() {  # port, command...: one redis-cli call, carriage returns dropped
    local port=$1
    shift
    redis-cli -h 127.0.0.1 -p "$port" "$@" | tr -d '\r'
}

show_logs() {
    local log
    for log in "$dir"/*.log "$out_dir"/cluster-"$shards"-gateway-*.log; do
        [[ -s $log ]] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }
    done
    return 0
}

# --- the Redis masters ----------------------------------------------------------------------
for ((i = 0; i < shards; i++)); do
    port=${ports[i]}
    # taskset execs redis-server, so $! is the server's own pid.
    taskset -c "$server_core" redis-server --port "$port" --bind 127.0.0.1 \
        --cluster-enabled yes --cluster-config-file "$dir/nodes-$port.conf" \
        --cluster-port "${bus_ports[i]}" --save "" --appendonly no --daemonize no \
        --dir "$dir" >"$dir/redis-$port.log" 2>&1 &
    redis_pids+=($!)
done
for port in "${ports[@]}"; do
    for _ in $(seq 100); do
        [[ "$(cli "$port" PING 2>/dev/null)" == PONG ]] && continue 2
        sleep 0.1
    done
    show_logs
    die "redis-server on port $port did not answer PING within 10 s"
done

# Every node meets the first; each takes an even share of the slots.
for ((i = 1; i < shards; i++)); do
    [[ "$(cli "${ports[i]}" CLUSTER MEET 127.0.0.1 "${ports[0]}" "${bus_ports[0]}")" == OK ]] ||
        die "CLUSTER MEET from port ${ports[i]} failed"
done
for ((i = 0; i < shards; i++)); do
    first=$((i * slots / shards))
    last=$(((i + 1) * slots / shards - 1))
    [[ "$(cli "${ports[i]}" CLUSTER ADDSLOTSRANGE "$first" "$last")" == OK ]] ||
        die "CLUSTER ADDSLOTSRANGE $first $last on port ${ports[i]} failed"
done

# Settled: every node reports cluster_state:ok, all slots served, SHARDS masters known.
cluster_settled() {
    local port info
    for port in "${ports[@]}"; do
        info="$(cli "$port" CLUSTER INFO 2>/dev/null)" || return 1
        grep -qx 'cluster_state:ok' <<<"$info" || return 1
        grep -qx "cluster_slots_ok:$slots" <<<"$info" || return 1
        grep -qx "cluster_known_nodes:$shards" <<<"$info" || return 1
        grep -qx "cluster_size:$shards" <<<"$info" || return 1
    done
}
deadline=$((SECONDS + 30))
until cluster_settled; do
    if (( SECONDS >= deadline )); then
        for port in "${ports[@]}"; do
            echo "--- CLUSTER INFO of port $port" >&2
            cli "$port" CLUSTER INFO >&2 || true
        done
        die "the cluster did not settle within 30 s"
    fi
    sleep 0.1
done
echo "bench-cluster.sh: $shards-master cluster up on ports ${ports[*]}" >&2

# --- the gateways ---------------------------------------------------------------------------
seeds="$(printf '127.0.0.1:%s,' "${ports[@]}")"
seeds=${seeds%,}

# start_gateway NAME: starts a gateway and sets $gateway_port once its broker is up.
start_gateway() {
    local name=$1
    local stdout_file="$dir/gateway-$name.stdout"
    local log_file="$out_dir/cluster-$shards-gateway-$name.log"
    : >"$stdout_file"
    taskset -c "$server_core" "$gateway" --host 127.0.0.1 --port 0 --workers 1 --node-id "$name" \
        --redis-cluster "$seeds" --log-level warn >"$stdout_file" 2>"$log_file" &
    local pid=$!
    gateway_pids+=("$pid")
    gateway_port=""
    local deadline=$((SECONDS + 20))
    while (( SECONDS < deadline )); do
        alive "$pid" || { show_logs; die "gateway $name exited at start-up"; }
        if [[ -z $gateway_port ]]; then
            gateway_port="$(sed -n 's|^wsgate listening on http://.*:\([0-9][0-9]*\)$|\1|p' \
                "$stdout_file" | head -n 1)"
        fi
        if [[ -n $gateway_port ]] &&
            curl -s "http://127.0.0.1:$gateway_port/health" 2>/dev/null | grep -q '"broker":"up"'; then
            return 0
        fi
        sleep 0.1
    done
    show_logs
    die "gateway $name did not report \"broker\":\"up\" within 20 s"
}
start_gateway A
port_a=$gateway_port
start_gateway B
port_b=$gateway_port
echo "bench-cluster.sh: gateway A on $port_a (publishers), B on $port_b (subscribers)" >&2

# --- the run --------------------------------------------------------------------------------
# A sample is one line per master: "round time port evalsha_calls spublish_calls cpu_seconds",
# cpu = used_cpu_user + used_cpu_sys, then "round time gateways cpu_seconds_A cpu_seconds_B". EVALSHA also counts the per-connection presence scripts
# (two per connection: connect and close), so publishes are counted as SPUBLISH calls, which
# Redis counts for commands run by scripts too: the publish script issues exactly one.
clock_ticks="$(getconf CLK_TCK)"
sample_round() {  # round
    local port info
    for port in "${ports[@]}"; do
        info="$(cli "$port" INFO cpu commandstats)" || return 1
        awk -F: -v round="$1" -v time="$(date +%s.%N)" -v port="$port" '
            $1 == "used_cpu_user" || $1 == "used_cpu_sys" { cpu += $2 }
            $1 == "cmdstat_evalsha" { split($2, f, /[=,]/); evalsha = f[2] }
            $1 == "cmdstat_spublish" { split($2, f, /[=,]/); spublish = f[2] }
            END { printf "%d %s %s %d %d %.6f\n", round, time, port, evalsha, spublish, cpu }
        ' <<<"$info"
    done
    # Then the gateways' CPU seconds (utime + stime, fields 14 and 15 of /proc/PID/stat).
    local a b
    a="$(awk -v hz="$clock_ticks" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/${gateway_pids[0]}/stat")"
    b="$(awk -v hz="$clock_ticks" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/${gateway_pids[1]}/stat")"
    echo "$1 $(date +%s.%N) gateways $a $b"
}

# Every 0.5 s while the generator runs, from core 0 (the generator's), so the servers' core
# only pays for the INFO commands themselves.
sampler() {
    local round=1
    while [[ ! -e $dir/stop-sampling ]]; do
        sample_round "$round" || return 0
        round=$((round + 1))
        sleep 0.5
    done
    sample_round "$round"  # the last one, after the generator has finished
}

samples="$dir/samples"
sampler >"$samples" &
sampler_pid=$!
taskset -pc "$bench_core" "$sampler_pid" >/dev/null
sleep 0.2  # round 1 is taken before the first connection

status=0
taskset -c "$bench_core" "$bench" --port "$port_b" --json "$out_dir/cluster-$shards.json" \
    fanout --publish-port "$port_a" "$@" || status=$?
touch "$dir/stop-sampling"
wait "$sampler_pid" || true
sampler_pid=""
cp "$samples" "$out_dir/cluster-$shards.samples"

# Two views per master:
# - the whole run (first sample to last: connecting, warm-up, every step, closing);
# - the publishing window: from the first round in which the cluster's SPUBLISH count rose to
#   the last one in which it did. The interval before that first round is left out, since it
#   may hold the end of connecting and subscribing, which cost the masters CPU too.
# The Redis-tier ceiling is derived, not measured: the busiest master saturates its core when
# (its share x the rate) x (its CPU per publish) reaches one second per second.
echo >&2
awk -v shards="$shards" '
    $3 == "gateways" { ga[$1] = $4; gb[$1] = $5; next }
    { r = $1; t[r] = $2; k = ++n[r]; port[k] = $3
      ev[r, k] = $4; sp[r, k] = $5; cpu[r, k] = $6; tot[r] += $5 }
    END {
        rounds = 0
        for (r = 1; (r in n) && n[r] == shards; r++) rounds = r
        if (rounds < 2) { print "too few samples"; exit }
        first = 0; last = 0
        for (r = 2; r <= rounds; r++)
            if (tot[r] > tot[r - 1]) { if (!first) first = r; last = r }
        print "=== whole run (" sprintf("%.1f", t[rounds] - t[1]) " s: connecting, warm-up, every step, closing)"
        printf "%-8s %10s %10s %9s %14s\n", "master", "EVALSHA", "SPUBLISH", "CPU s", "CPU us/SPUBLISH"
        for (k = 1; k <= shards; k++) {
            e = ev[rounds, k] - ev[1, k]; s = sp[rounds, k] - sp[1, k]; c = cpu[rounds, k] - cpu[1, k]
            printf "%-8s %10d %10d %9.2f %14.1f\n", port[k], e, s, c, (s > 0 ? c * 1e6 / s : 0)
        }
        if (!first || last <= first) { print "no publishing window: nothing was published"; exit }
        secs = t[last] - t[first]
        total = tot[last] - tot[first]
        print "=== publishing window (" sprintf("%.1f", secs) " s, " total " publishes = " sprintf("%.0f", total / secs) "/s)"
        printf "%-8s %10s %9s %7s %14s %7s\n", "master", "publishes", "CPU s", "CPU %", "CPU us/publish", "share"
        busiest = 1
        for (k = 1; k <= shards; k++) {
            s = sp[last, k] - sp[first, k]; c = cpu[last, k] - cpu[first, k]
            calls[k] = s; used[k] = c; masters += c
            if (s > calls[busiest]) busiest = k
            printf "%-8s %10d %9.2f %6.1f%% %14.1f %6.1f%%\n", port[k], s, c, 100 * c / secs,
                (s > 0 ? c * 1e6 / s : 0), 100 * s / total
        }
        a = ga[last] - ga[first]; b = gb[last] - gb[first]
        printf "core 1: masters %.1f%%, gateway A %.1f%%, gateway B %.1f%%, together %.1f%% (of %.1f s)\n",
            100 * masters / secs, 100 * a / secs, 100 * b / secs, 100 * (masters + a + b) / secs, secs
        share = calls[busiest] / total
        per = used[busiest] * 1e6 / calls[busiest]
        printf "busiest master %s: %.1f%% of the publishes, %.1f CPU us per publish it handled\n",
            port[busiest], 100 * share, per
        printf "Redis-tier ceiling (derived, not measured): 1e6 / (%.1f us x %.3f) = %.0f publishes/s\n",
            per, share, 1e6 / (per * share)
    }' "$samples" >&2

# Stopped before the logs are read, so they are complete (a gateway logs its shutdown).
gateway_logs=("$out_dir"/cluster-"$shards"-gateway-*.log)
stop_all

# Lines at level warning or above (the log pattern is "<time> <level> <message>"), but for the
# development-mode warning every gateway without a JWT secret prints.
problem_lines="$(grep -hE '^[^ ]+ (warning|error|critical) ' "${gateway_logs[@]}" |
    grep -v 'INSECURE DEVELOPMENT MODE' || true)"
if [[ -n $problem_lines ]]; then
    echo "bench-cluster.sh: $(wc -l <<<"$problem_lines") warning/error lines in the gateway logs:" >&2
    head -n 10 <<<"$problem_lines" >&2
fi
echo "bench-cluster.sh: report in $out_dir/cluster-$shards.json, gateway logs beside it" >&2
exit "$status"
