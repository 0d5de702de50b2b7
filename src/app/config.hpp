#pragma once
// Configuration from flags, environment variables and an optional config file
// (docs/configuration.md). Parsing errors are start-up errors: reported, non-zero exit.

#include "broker/redis/endpoint.hpp"
#include "net/settings.hpp"

#include <chrono>
#include <optional>
#include <string>
#include <vector>

namespace wsgate::app {

struct config {
    net::server_settings server;
    std::string jwt_secret;
    std::string jwt_public_key_file;
    std::chrono::seconds jwt_leeway{30};
    std::string log_level = "info";
    // Set: many nodes through this Redis. Unset: the embedded memory broker.
    std::optional<broker::redis::endpoint> redis;        // one Redis server
    std::vector<broker::redis::endpoint> redis_cluster;  // or seed nodes of a Redis Cluster
    std::string redis_prefix = "wsgate:";
    // Cluster registry (and, later, user presence): refreshed every `presence_refresh`,
    // forgotten after `presence_ttl` without a refresh.
    std::chrono::milliseconds presence_refresh{30'000};
    std::chrono::milliseconds presence_ttl{90'000};
};

// Returns the configuration, or an exit code when the program should stop (--help, bad flags).
struct parse_outcome {
    std::optional<config> cfg;
    int exit_code = 0;
};

parse_outcome parse_config(int argc, char** argv);

// Worker threads by default: the cores this process may run on (taskset is honoured).
unsigned default_workers();

}  // namespace wsgate::app
