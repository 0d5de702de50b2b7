#include "app/config.hpp"

#include <CLI/CLI.hpp>

#include <sched.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace wsgate::app {

namespace {

std::chrono::milliseconds to_ms(double seconds) {
    return std::chrono::milliseconds(static_cast<std::int64_t>(std::llround(seconds * 1000.0)));
}

std::string host_name() {
    char name[256] = {};
    if (gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "wsgate";
    return name;
}

// Seeds' alternative variable names, used when the primary one is unset.
void alias_env(const char* primary, const char* alias) {
    if (std::getenv(primary) == nullptr) {
        if (const char* v = std::getenv(alias)) setenv(primary, v, 0);
    }
}

}  // namespace

unsigned default_workers() {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        const int n = CPU_COUNT(&set);
        if (n > 0) return static_cast<unsigned>(n);
    }
    const long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? static_cast<unsigned>(n) : 1;
}

parse_outcome parse_config(int argc, char** argv) {
    alias_env("PORT", "WSGATEWAY_PORT");
    alias_env("LOG_LEVEL", "LOGGER_LEVEL");

    config cfg;
    auto& s = cfg.server;
    s.node_id = host_name();
    s.workers = default_workers();
    double auth_timeout = 10, idle_timeout = 60, ping_interval = 30, shutdown_timeout = 10;
    int leeway = 30;
    unsigned port = s.port;
    std::string redis_url;
    double presence_refresh = 30, presence_ttl = 90;

    CLI::App app{"wsgate: a distributed WebSocket gateway (pub/sub, direct messages, presence)",
                 "wsgate"};
    app.set_config("--config", "", "Config file (INI/TOML, keys are the long flag names)")
        ->envname("WSGATE_CONFIG");
    app.add_option("--host", s.host, "Address to listen on")
        ->envname("HOST")
        ->capture_default_str();
    app.add_option("--port", port,
                   "Port for HTTP and WebSocket (0 picks a free one; env PORT or WSGATEWAY_PORT)")
        ->envname("PORT")
        ->check(CLI::Range(0, 65535))
        ->capture_default_str();
    app.add_option("--node-id", s.node_id, "This node's name (default: host name)")
        ->envname("NODE_ID");
    app.add_option("--workers", s.workers,
                   "Worker threads, one event loop each (default: usable cores)")
        ->envname("WORKERS")
        ->check(CLI::Range(1, 64));
    app.add_option("--jwt-secret", cfg.jwt_secret,
                   "HS256 secret; without secret and key the node runs in development mode")
        ->envname("JWT_SECRET");
    app.add_option("--jwt-public-key", cfg.jwt_public_key_file,
                   "PEM file with the RS256 public key")
        ->envname("JWT_PUBLIC_KEY_FILE");
    app.add_option("--jwt-leeway", leeway, "Clock skew allowed on exp/nbf, seconds")
        ->envname("JWT_LEEWAY_SECONDS")
        ->check(CLI::Range(0, 3600))
        ->capture_default_str();
    app.add_option("--auth-timeout", auth_timeout,
                   "Seconds a connection may stay unauthenticated (close 4001)")
        ->envname("AUTH_TIMEOUT_SECONDS")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--idle-timeout", idle_timeout,
                   "Seconds without any frame from a client before close 4003")
        ->envname("IDLE_TIMEOUT_SECONDS")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--ping-interval", ping_interval,
                   "Seconds between WebSocket pings the node sends")
        ->envname("PING_INTERVAL_SECONDS")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--max-message-size", s.max_message_size,
                   "Largest client message in bytes (close 1009 beyond)")
        ->envname("MAX_MESSAGE_SIZE")
        ->check(CLI::Range(std::size_t{16}, std::size_t{64} << 20))
        ->capture_default_str();
    app.add_option("--max-channels", s.max_channels, "Channels one connection may subscribe")
        ->envname("MAX_CHANNELS_PER_CONNECTION")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 20))
        ->capture_default_str();
    app.add_option("--max-connections", s.max_connections,
                   "WebSocket connections per node (HTTP 503 beyond)")
        ->envname("MAX_CONNECTIONS")
        ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24))
        ->capture_default_str();
    app.add_option("--max-outbound-bytes", s.max_outbound_bytes,
                   "Bytes queued for one client before it is closed as a slow consumer (4002)")
        ->envname("MAX_OUTBOUND_BYTES")
        ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 30))
        ->capture_default_str();
    app.add_flag("--echo", s.echo, "Mount the /echo endpoint for RFC 6455 conformance suites")
        ->envname("ECHO_ENDPOINT");
    app.add_option("--echo-max-message-size", s.echo_max_message_size,
                   "Largest message /echo accepts")
        ->envname("ECHO_MAX_MESSAGE_SIZE")
        ->check(CLI::Range(std::size_t{16}, std::size_t{256} << 20))
        ->capture_default_str();
    app.add_option("--shutdown-timeout", shutdown_timeout,
                   "Seconds to drain connections on SIGTERM/SIGINT")
        ->envname("SHUTDOWN_TIMEOUT_SECONDS")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--redis-url", redis_url,
                   "Redis for many nodes, redis://[[user]:password@]host[:port][/db] (also "
                   "REDIS_ENDPOINT, or REDIS_HOST + REDIS_PASSWORD + REDIS_DATABASE); unset: the "
                   "embedded broker")
        ->envname("REDIS_URL");
    std::vector<std::string> cluster_nodes;
    app.add_option("--redis-cluster", cluster_nodes,
                   "A Redis Cluster instead of one server: some of its nodes (host:port or "
                   "redis:// URLs), comma separated; the rest is discovered. Channels go "
                   "through sharded pub/sub")
        ->envname("REDIS_CLUSTER_NODES")
        ->delimiter(',');
    app.add_option("--presence-refresh", presence_refresh,
                   "Seconds between a node's heartbeats in the cluster registry")
        ->envname("PRESENCE_REFRESH_SECONDS")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--presence-ttl", presence_ttl,
                   "Seconds after which a silent node is dropped from the registry")
        ->envname("PRESENCE_TTL_SECONDS")
        ->check(CLI::PositiveNumber)
        ->capture_default_str();
    app.add_option("--presence-prefixes", s.presence_prefixes,
                   "Channel name prefixes that keep presence (members, join/leave), comma "
                   "separated; * for all")
        ->envname("PRESENCE_PREFIXES")
        ->delimiter(',')
        ->capture_default_str();
    app.add_option("--redis-prefix", cfg.redis_prefix, "Prefix of every Redis key and channel")
        ->envname("REDIS_PREFIX")
        ->capture_default_str();
    app.add_option("--log-level", cfg.log_level, "trace, debug, info, warn, error")
        ->envname("LOG_LEVEL")
        ->check(CLI::IsMember({"trace", "debug", "info", "warn", "error", "critical", "off"}))
        ->capture_default_str();

    try {
        app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return {std::nullopt, app.exit(e)};
    }
    s.port = static_cast<std::uint16_t>(port);
    s.auth_timeout = to_ms(auth_timeout);
    s.idle_timeout = to_ms(idle_timeout);
    s.ping_interval = to_ms(ping_interval);
    s.shutdown_timeout = to_ms(shutdown_timeout);
    cfg.jwt_leeway = std::chrono::seconds(leeway);
    cfg.presence_refresh = to_ms(presence_refresh);
    cfg.presence_ttl = to_ms(presence_ttl);
    if (cfg.presence_ttl <= cfg.presence_refresh) {
        std::fprintf(stderr, "--presence-ttl must be longer than --presence-refresh\n");
        return {std::nullopt, 2};
    }

    // The seeds' variables, when no URL is given: REDIS_HOST=host:port with REDIS_PASSWORD and
    // REDIS_DATABASE (seed 003), or REDIS_ENDPOINT=host (seed 000).
    if (redis_url.empty()) {
        if (const char* host = std::getenv("REDIS_HOST"); host != nullptr && *host != '\0') {
            redis_url = host;
        } else if (const char* ep = std::getenv("REDIS_ENDPOINT"); ep != nullptr && *ep != '\0') {
            redis_url = ep;
        }
    }
    // REDIS_PASSWORD fills in a password the URL leaves out, for one server or a cluster.
    const auto password_from_environment = [](broker::redis::endpoint& where) {
        if (const char* pw = std::getenv("REDIS_PASSWORD");
            pw != nullptr && where.password.empty()) {
            where.password = pw;
        }
    };
    if (!cluster_nodes.empty()) {
        if (!redis_url.empty() && app.count("--redis-url") > 0) {
            std::fprintf(stderr, "--redis-url and --redis-cluster exclude each other\n");
            return {std::nullopt, 2};
        }
        for (const auto& node : cluster_nodes) {
            auto where = broker::redis::parse_endpoint(node);
            if (!where || where->database != 0) {
                std::fprintf(stderr, "--redis-cluster: cannot use \"%s\"%s\n", node.c_str(),
                             where ? " (a cluster has only database 0)" : "");
                return {std::nullopt, 2};
            }
            password_from_environment(*where);
            cfg.redis_cluster.push_back(std::move(*where));
        }
    } else if (!redis_url.empty()) {
        cfg.redis = broker::redis::parse_endpoint(redis_url);
        if (!cfg.redis) {
            std::fprintf(stderr, "--redis-url: cannot parse \"%s\"\n", redis_url.c_str());
            return {std::nullopt, 2};
        }
        password_from_environment(*cfg.redis);
        if (const char* db = std::getenv("REDIS_DATABASE");
            db != nullptr && *db != '\0' && cfg.redis->database == 0) {
            cfg.redis->database = std::atoi(db);
        }
    }
    return {std::move(cfg), 0};
}

}  // namespace wsgate::app
