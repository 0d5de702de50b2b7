// wsgate entry point: configuration, logging, wiring of the parts, signals and drain.

#include "app/config.hpp"
#include "auth/jwt_authenticator.hpp"
#include "broker/memory/memory_broker.hpp"
#include "broker/redis/redis_broker.hpp"
#include "net/server.hpp"

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <pthread.h>
#include <signal.h>
#include <sys/resource.h>

#include <cstdio>
#include <future>
#include <memory>

namespace {

// Sockets are file descriptors: take every one the hard limit allows, and say so.
void raise_fd_limit() {
    rlimit limit{};
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return;
    const rlim_t before = limit.rlim_cur;
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) != 0) limit.rlim_cur = before;
    spdlog::info("file descriptors: soft limit {} -> {}, hard limit {}", before, limit.rlim_cur,
                 limit.rlim_max);
}

std::unique_ptr<wsgate::core::authenticator> make_authenticator(const wsgate::app::config& cfg) {
    using wsgate::auth::jwt_authenticator;
    wsgate::auth::jwt_config jwt;
    jwt.leeway = cfg.jwt_leeway;
    if (!cfg.jwt_public_key_file.empty()) {
        jwt.rs256_public_key_pem = jwt_authenticator::read_key_file(cfg.jwt_public_key_file);
        spdlog::info("auth: JWT RS256 with the key in {}", cfg.jwt_public_key_file);
    } else if (!cfg.jwt_secret.empty()) {
        jwt.hs256_secret = cfg.jwt_secret;
        spdlog::info("auth: JWT HS256");
    } else {
        spdlog::warn(
            "auth: INSECURE DEVELOPMENT MODE: no JWT secret or key configured, clients "
            "name themselves with user_id. Set JWT_SECRET or JWT_PUBLIC_KEY_FILE in "
            "production.");
        return nullptr;
    }
    return std::make_unique<jwt_authenticator>(std::move(jwt));
}

}  // namespace

int main(int argc, char** argv) {
    auto parsed = wsgate::app::parse_config(argc, argv);
    if (!parsed.cfg) return parsed.exit_code;
    const auto& cfg = *parsed.cfg;

    auto logger = spdlog::stderr_color_mt("wsgate");
    spdlog::set_default_logger(logger);
    spdlog::set_level(spdlog::level::from_str(cfg.log_level));
    spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");

    // Signals are taken by sigwait() below; every thread inherits the blocked mask.
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &signals, nullptr);
    ::signal(SIGPIPE, SIG_IGN);

    raise_fd_limit();

    std::unique_ptr<wsgate::core::authenticator> auth;
    // Declared before the broker so that it is destroyed after it: the Redis broker's
    // connections live on a shard's io_context.
    std::unique_ptr<wsgate::net::server> server;
    std::unique_ptr<wsgate::core::broker> broker;
    try {
        auth = make_authenticator(cfg);
        server = std::make_unique<wsgate::net::server>(cfg.server, auth.get());
        if (cfg.redis || !cfg.redis_cluster.empty()) {
            wsgate::broker::redis::broker_settings redis;
            redis.cluster = !cfg.redis_cluster.empty();
            redis.servers = redis.cluster
                                ? cfg.redis_cluster
                                : std::vector<wsgate::broker::redis::endpoint>{*cfg.redis};
            redis.prefix = cfg.redis_prefix;
            redis.node_id = cfg.server.node_id;
            redis.heartbeat_interval = cfg.presence_refresh;
            redis.node_ttl = cfg.presence_ttl;
            // Redis I/O runs on shard 0's event loop, like any other connection of that shard.
            broker = std::make_unique<wsgate::broker::redis::redis_broker>(server->shard_context(0),
                                                                           std::move(redis));
        } else {
            broker = std::make_unique<wsgate::broker::memory_broker>(cfg.server.node_id);
        }
        server->start(*broker);
    } catch (const std::exception& e) {
        spdlog::critical("cannot start: {}", e.what());
        return 1;
    }
    spdlog::info("wsgate node={} workers={} broker={} listening on {}:{}", cfg.server.node_id,
                 server->settings().workers, broker->kind(), cfg.server.host, server->port());
    std::printf("wsgate listening on http://%s:%u\n", cfg.server.host.c_str(),
                static_cast<unsigned>(server->port()));
    std::fflush(stdout);

    int received = 0;
    sigwait(&signals, &received);
    spdlog::info("signal {}: shutting down", received);
    std::promise<void> drained;
    server->drain([&drained] { drained.set_value(); });
    drained.get_future().wait();
    // Leave the cluster (and flush the last presence updates) while the event loops still run;
    // a broker that cannot answer in time is left to the others' TTL.
    auto left = std::make_shared<std::promise<void>>();
    broker->leave([left] { left->set_value(); });
    if (left->get_future().wait_for(std::chrono::seconds(2)) != std::future_status::ready) {
        spdlog::warn(
            "broker: leaving the cluster timed out; the others drop this node after "
            "its TTL");
    }
    server->stop();
    // The Redis broker's connections live on a shard's io_context: release them while it exists.
    broker.reset();
    server.reset();
    spdlog::info("stopped");
    return 0;
}
