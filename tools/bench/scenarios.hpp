#pragma once

// The scenarios wsgate-bench runs, their options and what they share: turning the target and
// auth options into a pool_config, and writing results as JSON. Each run_* function prints a
// human summary to stderr and returns the JSON report ({"scenario", "parameters", "results"}).

#include <boost/json/object.hpp>

#include <cstdint>
#include <map>
#include <string>

#include "client_pool.hpp"
#include "latency_histogram.hpp"

namespace wsgate::bench {

struct common_options {
    std::string host = "127.0.0.1";
    std::uint16_t port = 8080;
    std::string path = "/ws";
    std::string token;      // empty: development-mode auth via ?user_id=
    int source_ips = 0;     // 0: one per 10000 connections when the target is loopback
    int concurrency = 500;  // connection set-ups in flight
    double connect_timeout_s = 10;
    std::string json_file;  // also write the JSON report here
};

struct connect_options {
    std::uint32_t connections = 10000;
    double hold_s = 5;
    int server_pid = 0;  // read the server's VmRSS before and after
};

struct fanout_options {
    std::uint32_t subscribers = 1000;
    std::uint32_t channels = 1;
    std::uint32_t publishers = 1;
    double rate = 10000;  // publishes per second, all publishers together
    std::uint32_t payload_bytes = 64;
    double duration_s = 5;
    double warmup_s = 1;
    double drain_s = 2;
    std::string channel_prefix = "bench";
    std::uint16_t publish_port = 0;  // non-zero: publishers connect to this port (another node)
    std::size_t publisher_backlog_bytes = 8 * 1024 * 1024;  // beyond it publishes are skipped

    bool find_max = false;
    double max_rate = 2'000'000;
    double step_duration_s = 5;
    double step_factor = 2;
    int refine_steps = 3;
    double min_ratio = 0.999;
    double max_p99_ms = 50;
};

struct rtt_options {
    double duration_s = 5;
    std::uint64_t count = 0;     // round trips to measure; 0: until the duration is up
    std::uint64_t warmup = 100;  // round trips not measured
};

boost::json::object run_connect(const common_options& common, const connect_options& options);
boost::json::object run_fanout(const common_options& common, const fanout_options& options);
boost::json::object run_rtt(const common_options& common, const rtt_options& options);

// --- shared by the scenarios ---

// Resolves the target and picks source addresses for `connections` connections.
pool_config make_pool_config(const common_options& common, std::uint64_t connections);

// The common options as report parameters.
boost::json::object common_parameters(const common_options& common, const pool_config& config);

// Raises RLIMIT_NOFILE's soft limit to the hard limit; returns the soft limit now in force.
std::uint64_t raise_open_file_limit();
// Warns on stderr when `connections` sockets will not fit under the open-file limit.
void check_open_file_limit(std::uint64_t connections);

boost::json::object establish_to_json(const establish_result& r);
void print_establish(const establish_result& r);

boost::json::object counts_to_json(const std::map<std::string, std::uint64_t>& counts);
// `after` minus `before`, per key, dropping zeros.
std::map<std::string, std::uint64_t> count_delta(const std::map<std::string, std::uint64_t>& before,
                                                 const std::map<std::string, std::uint64_t>& after);
std::string counts_to_text(const std::map<std::string, std::uint64_t>& counts);

// count, mean and p50/p90/p99/p99.9/max in microseconds.
boost::json::object latency_to_json(const latency_histogram& h);
std::string latency_to_text(const latency_histogram& h);

}  // namespace wsgate::bench
