#!/usr/bin/env bash
# A local wsgate cluster: Redis, three wsgate nodes and an nginx load balancer (least_conn,
# WebSocket upgrade headers) in front of them, all on loopback. REDIS_MODE chooses the Redis:
# `single` (the default) is one redis-server and the nodes get --redis-url; `cluster` is a
# Redis Cluster of three masters without replicas and the nodes get --redis-cluster
# (docs/adr/0004-redis-cluster.md).
#
#   scripts/cluster.sh start     start everything (in the background), print the addresses
#   scripts/cluster.sh demo      two clients through the load balancer land on different nodes
#                                and talk: a channel message and a direct message cross nodes
#   scripts/cluster.sh status    what is running, and which Redis
#   scripts/cluster.sh stop      stop everything and remove the state directory
#   scripts/cluster.sh selftest  start, demo, stop; exit non-zero if the demo fails (used by
#                                the tests, with CLUSTER_BASE_PORT set to free ports)
#
# Ports: nginx on CLUSTER_BASE_PORT (default 8080), nodes on BASE+1..BASE+3, Redis on BASE+10;
# with REDIS_MODE=cluster the masters are on BASE+10..BASE+12 and their cluster bus ports on
# BASE+20..BASE+22 (given explicitly: the default, port + 10000, may be taken or out of range).
# CLUSTER_BASE_PORT=auto picks a base whose ports are all free (the tests use it).
# State (pids, logs, nginx.conf) lives in CLUSTER_DIR (default build/cluster). start records
# the base and the mode there, so demo, status and stop find what it started, even with auto.
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
dir="${CLUSTER_DIR:-$root/build/cluster}"
wsgate="${WSGATE:-$root/build/wsgate}"
state="$dir/state"

die() { echo "cluster.sh: $*" >&2; exit 1; }

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A running cluster's recorded "BASE MODE" wins over the environment.
if [ -f "$state" ]; then
    read -r base redis_mode < "$state"
else
    base="${CLUSTER_BASE_PORT:-8080}"
    redis_mode="${REDIS_MODE:-single}"
fi
case "$redis_mode" in
    single | cluster) ;;
    *) die "REDIS_MODE must be single or cluster, not '$redis_mode'" ;;
esac

set_ports() {  # from $base and $redis_mode
    node_ports=($((base + 1)) $((base + 2)) $((base + 3)))
    if [ "$redis_mode" = cluster ]; then
        redis_ports=($((base + 10)) $((base + 11)) $((base + 12)))
        bus_ports=($((base + 20)) $((base + 21)) $((base + 22)))
    else
        redis_ports=($((base + 10)))
        bus_ports=()
    fi
    redis_seeds="$(IFS=,; echo "${redis_ports[*]/#/127.0.0.1:}")"  # for --redis-cluster
}

if [ "$base" = "auto" ]; then
    # Only start picks a base; the other commands read it from $state.
    if [ "${1:-}" = start ] || [ "${1:-}" = selftest ]; then
        # Below the ephemeral range: a port there may be some client's source port, which a
        # connect() probe cannot see but which makes bind() fail. BASE+22 is the highest port.
        ephemeral_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
        span=$((ephemeral_low - 10000 - 30))
        found=""
        for _ in $(seq 1 50); do
            base=$((10000 + RANDOM % span))
            set_ports
            found=yes
            for port in "$base" "${node_ports[@]}" "${redis_ports[@]}" "${bus_ports[@]}"; do
                port_free "$port" || { found=""; break; }
            done
            [ -n "$found" ] && break
        done
        [ -n "$found" ] || die "found no base port with all its ports free"
    elif [ "${1:-}" = demo ] || [ "${1:-}" = status ]; then
        die "nothing started in $dir (CLUSTER_BASE_PORT=auto)"
    fi
fi
case "$base" in
    auto) ;;  # stop: needs only $dir
    '' | *[!0-9]*) die "CLUSTER_BASE_PORT must be a port number or auto, not '$base'" ;;
    *) set_ports ;;
esac

show_logs() {
    local log
    for log in "$dir"/*.log "$dir"/*.out; do
        [ -s "$log" ] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }
    done
    return 0
}

wait_for_port() {  # port, what
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    show_logs
    die "$2 did not start listening on port $1"
}

# Every master serves all slots and knows the others.
redis_cluster_ok() {
    local port info
    for port in "${redis_ports[@]}"; do
        info="$(redis-cli -h 127.0.0.1 -p "$port" CLUSTER INFO 2>/dev/null | tr -d '\r')" || return 1
        grep -qx 'cluster_state:ok' <<<"$info" || return 1
        grep -qx "cluster_known_nodes:${#redis_ports[@]}" <<<"$info" || return 1
    done
}

start_redis() {
    if [ "$redis_mode" = single ]; then
        redis-server --port "${redis_ports[0]}" --bind 127.0.0.1 --save "" --appendonly no \
            --daemonize no --dir "$dir" > "$dir/redis.log" 2>&1 &
        echo $! > "$dir/redis.pid"
        wait_for_port "${redis_ports[0]}" redis-server
        return
    fi

    local i port
    for i in "${!redis_ports[@]}"; do
        port=${redis_ports[i]}
        redis-server --port "$port" --bind 127.0.0.1 --cluster-enabled yes \
            --cluster-config-file "$dir/nodes-$port.conf" --cluster-port "${bus_ports[i]}" \
            --save "" --appendonly no --daemonize no --dir "$dir" > "$dir/redis-$port.log" 2>&1 &
        echo $! > "$dir/redis-$port.pid"
    done
    for port in "${redis_ports[@]}"; do wait_for_port "$port" redis-server; done

    redis-cli --cluster create "${redis_ports[@]/#/127.0.0.1:}" --cluster-replicas 0 \
        --cluster-yes > "$dir/redis-cluster-create.out" 2>&1 ||
        { show_logs; die "redis-cli --cluster create failed"; }
    local deadline=$((SECONDS + 30))
    until redis_cluster_ok; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            for port in "${redis_ports[@]}"; do
                echo "--- CLUSTER INFO of port $port" >&2
                redis-cli -h 127.0.0.1 -p "$port" CLUSTER INFO >&2 || true
            done
            die "the Redis Cluster did not reach cluster_state:ok within 30 s"
        fi
        sleep 0.1
    done
}

# The nodes listen before their broker is connected; the demo needs it connected.
wait_for_broker() {  # node port
    local deadline=$((SECONDS + 20)) health
    while :; do
        health="$(curl -fsS "http://127.0.0.1:$1/health" 2>/dev/null)" || health=""
        case "$health" in *'"broker":"up"'*) return 0 ;; esac
        if [ "$SECONDS" -ge "$deadline" ]; then
            show_logs
            die "the node on port $1 did not report \"broker\":\"up\" within 20 s"
        fi
        sleep 0.1
    done
}

redis_summary() {
    if [ "$redis_mode" = cluster ]; then
        echo "Redis Cluster of ${#redis_ports[@]} masters (no replicas) $redis_seeds"
    else
        echo "one redis-server redis://127.0.0.1:${redis_ports[0]}"
    fi
}

start() {
    command -v redis-server >/dev/null || die "redis-server not found: scripts/install-deps.sh cluster"
    command -v redis-cli >/dev/null || die "redis-cli not found: scripts/install-deps.sh cluster"
    command -v nginx >/dev/null || die "nginx not found: scripts/install-deps.sh cluster"
    command -v curl >/dev/null || die "curl not found: scripts/install-deps.sh cluster"
    [ -x "$wsgate" ] || die "$wsgate not built: make build"
    if [ -f "$state" ] || compgen -G "$dir/*.pid" >/dev/null; then
        die "already running (scripts/cluster.sh stop first)"
    fi
    mkdir -p "$dir"
    echo "$base $redis_mode" > "$state"

    start_redis
    local broker_args
    if [ "$redis_mode" = cluster ]; then
        broker_args=(--redis-cluster "$redis_seeds")
    else
        broker_args=(--redis-url "redis://127.0.0.1:${redis_ports[0]}")
    fi

    local i=1
    for port in "${node_ports[@]}"; do
        "$wsgate" --host 127.0.0.1 --port "$port" --node-id "n$i" --workers 1 \
            "${broker_args[@]}" > "$dir/n$i.out" 2> "$dir/n$i.log" &
        echo $! > "$dir/n$i.pid"
        i=$((i + 1))
    done
    for port in "${node_ports[@]}"; do wait_for_port "$port" wsgate; done
    for port in "${node_ports[@]}"; do wait_for_broker "$port"; done

    mkdir -p "$dir/nginx"
    cat > "$dir/nginx.conf" <<EOF
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/nginx-error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path $dir/nginx;
    proxy_temp_path $dir/nginx;
    fastcgi_temp_path $dir/nginx;
    uwsgi_temp_path $dir/nginx;
    scgi_temp_path $dir/nginx;
    upstream wsgate_nodes {
        least_conn;
        server 127.0.0.1:${node_ports[0]};
        server 127.0.0.1:${node_ports[1]};
        server 127.0.0.1:${node_ports[2]};
    }
    server {
        listen 127.0.0.1:$base;
        location / {
            proxy_pass http://wsgate_nodes;
            proxy_http_version 1.1;
            proxy_set_header Upgrade \$http_upgrade;
            proxy_set_header Connection "upgrade";
            proxy_set_header Host \$host;
            proxy_read_timeout 3600s;
        }
    }
}
EOF
    nginx -p "$dir" -c "$dir/nginx.conf" -g 'daemon off;' > "$dir/nginx.out" 2>&1 &
    echo $! > "$dir/nginx.run.pid"
    wait_for_port "$base" nginx

    echo "cluster up: load balancer ws://127.0.0.1:$base/ws"
    echo "  nodes ws://127.0.0.1:${node_ports[0]}/ws ws://127.0.0.1:${node_ports[1]}/ws ws://127.0.0.1:${node_ports[2]}/ws"
    echo "  redis: $(redis_summary)"
    echo "  logs and pids in $dir"
}

stop_pids() {  # pid files: TERM them all, wait up to 10 s for each, then KILL
    local f pid
    for f in "$@"; do
        [ -f "$f" ] || continue
        kill -TERM "$(cat "$f")" 2>/dev/null || true
    done
    for f in "$@"; do
        [ -f "$f" ] || continue
        pid="$(cat "$f")"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$f"
    done
}

stop() {
    [ -d "$dir" ] || return 0
    # The nodes first, so they leave Redis while it is still there.
    stop_pids "$dir"/nginx.run.pid "$dir"/n[0-9]*.pid
    stop_pids "$dir"/redis*.pid
    rm -rf "$dir"
    echo "cluster stopped"
}

status() {
    [ -f "$state" ] || echo "nothing started in $dir"
    echo "redis: $(redis_summary)"
    local f
    for f in "$dir"/redis*.pid "$dir"/n[0-9]*.pid "$dir"/nginx.run.pid; do
        [ -f "$f" ] || continue
        if kill -0 "$(cat "$f")" 2>/dev/null; then echo "$(basename "$f" .pid): running"; else echo "$(basename "$f" .pid): dead"; fi
    done
    local port
    if [ "$redis_mode" = cluster ]; then
        for port in "${redis_ports[@]}"; do
            printf 'redis %s: ' "$port"
            redis-cli -h 127.0.0.1 -p "$port" CLUSTER INFO 2>/dev/null | tr -d '\r' |
                grep '^cluster_state:' || echo "no answer"
        done
    fi
    for port in "${node_ports[@]}"; do
        printf '%s: ' "$port"; curl -fsS "http://127.0.0.1:$port/health" 2>/dev/null || echo "no answer"; echo
    done
}

demo() {
    command -v node >/dev/null || die "node not found: scripts/install-deps.sh cluster"
    local client="$root/tools/cluster-demo"
    if [ ! -d "$client/node_modules/ws" ]; then
        (cd "$client" && npm install --no-audit --no-fund --silent) || die "npm install failed"
    fi
    node "$client/demo.mjs" "ws://127.0.0.1:$base/ws"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    status) status ;;
    demo) demo ;;
    selftest)
        trap stop EXIT
        start
        demo
        ;;
    *) die "usage: scripts/cluster.sh start|demo|status|stop|selftest" ;;
esac
