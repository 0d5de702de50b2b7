#!/usr/bin/env bash
# A local wsgate cluster: one redis-server, three wsgate nodes and an nginx load balancer
# (least_conn, WebSocket upgrade headers) in front of them, all on loopback.
#
#   scripts/cluster.sh start     start everything (in the background), print the addresses
#   scripts/cluster.sh demo      two clients through the load balancer land on different nodes
#                                and talk: a channel message and a direct message cross nodes
#   scripts/cluster.sh status    what is running
#   scripts/cluster.sh stop      stop everything and remove the state directory
#   scripts/cluster.sh selftest  start, demo, stop; exit non-zero if the demo fails (used by
#                                the tests, with CLUSTER_BASE_PORT set to free ports)
#
# Ports: nginx on CLUSTER_BASE_PORT (default 8080), nodes on BASE+1..BASE+3, Redis on BASE+10;
# CLUSTER_BASE_PORT=auto picks a base whose ports are all free (the tests use it).
# State (pids, logs, nginx.conf) lives in CLUSTER_DIR (default build/cluster).
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

base="${CLUSTER_BASE_PORT:-8080}"
if [ "$base" = "auto" ]; then
    # Below the ephemeral range: a port there may be some client's source port, which a
    # connect() probe cannot see but which makes bind() fail.
    ephemeral_low=$(cut -f1 /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || echo 32768)
    span=$((ephemeral_low - 10000 - 20))
    for _ in $(seq 1 50); do
        base=$((10000 + RANDOM % span))
        if port_free "$base" && port_free $((base + 1)) && port_free $((base + 2)) &&
            port_free $((base + 3)) && port_free $((base + 10)); then
            break
        fi
    done
fi
dir="${CLUSTER_DIR:-$root/build/cluster}"
wsgate="${WSGATE:-$root/build/wsgate}"
redis_port=$((base + 10))
node_ports=($((base + 1)) $((base + 2)) $((base + 3)))

die() { echo "cluster.sh: $*" >&2; exit 1; }

wait_for_port() {  # port, what
    for _ in $(seq 1 100); do
        if (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; then return 0; fi
        sleep 0.1
    done
    local log
    for log in "$dir"/*.log "$dir"/*.out; do
        [ -s "$log" ] && { echo "--- $log" >&2; tail -n 20 "$log" >&2; }
    done
    die "$2 did not start listening on port $1"
}

start() {
    command -v redis-server >/dev/null || die "redis-server not found: scripts/install-deps.sh cluster"
    command -v nginx >/dev/null || die "nginx not found: scripts/install-deps.sh cluster"
    [ -x "$wsgate" ] || die "$wsgate not built: make build"
    [ -f "$dir/redis.pid" ] && die "already running (scripts/cluster.sh stop first)"
    mkdir -p "$dir"

    redis-server --port "$redis_port" --bind 127.0.0.1 --save "" --appendonly no \
        --daemonize no --dir "$dir" > "$dir/redis.log" 2>&1 &
    echo $! > "$dir/redis.pid"
    wait_for_port "$redis_port" redis-server

    local i=1
    for port in "${node_ports[@]}"; do
        "$wsgate" --host 127.0.0.1 --port "$port" --node-id "n$i" --workers 1 \
            --redis-url "redis://127.0.0.1:$redis_port" > "$dir/n$i.out" 2> "$dir/n$i.log" &
        echo $! > "$dir/n$i.pid"
        i=$((i + 1))
    done
    for port in "${node_ports[@]}"; do wait_for_port "$port" wsgate; done

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
    echo "  redis redis://127.0.0.1:$redis_port   logs and pids in $dir"
}

stop() {
    [ -d "$dir" ] || return 0
    local f
    for f in "$dir"/nginx.run.pid "$dir"/n*.pid "$dir"/redis.pid; do
        [ -f "$f" ] || continue
        kill -TERM "$(cat "$f")" 2>/dev/null || true
    done
    for f in "$dir"/nginx.run.pid "$dir"/n*.pid "$dir"/redis.pid; do
        [ -f "$f" ] || continue
        local pid; pid="$(cat "$f")"
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        rm -f "$f"
    done
    rm -rf "$dir"
    echo "cluster stopped"
}

status() {
    local f
    for f in "$dir"/redis.pid "$dir"/n*.pid "$dir"/nginx.run.pid; do
        [ -f "$f" ] || continue
        if kill -0 "$(cat "$f")" 2>/dev/null; then echo "$(basename "$f" .pid): running"; else echo "$(basename "$f" .pid): dead"; fi
    done
    local port
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
