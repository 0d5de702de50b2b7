#pragma once
// Per-shard counters. Each shard_metrics is written only by its shard's thread and read by
// whichever thread renders /metrics or /stats, so counters are relaxed atomics updated with a
// plain load + store (no locked instruction on the hot path).

#include "core/error.hpp"

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

namespace wsgate::net {

class counter {
public:
    void add(std::uint64_t n = 1) noexcept {
        value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    std::uint64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::uint64_t> value_{0};
};

class gauge {
public:
    void add(std::int64_t n) noexcept {
        value_.store(value_.load(std::memory_order_relaxed) + n, std::memory_order_relaxed);
    }
    std::int64_t get() const noexcept { return value_.load(std::memory_order_relaxed); }

private:
    std::atomic<std::int64_t> value_{0};
};

// Fan-out latency: from the moment a message frame is encoded to the moment it is queued on
// every local subscriber of a shard.
class latency_histogram {
public:
    static constexpr std::array<double, 16> bounds_seconds = {
        0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
        0.005,   0.01,     0.025,   0.05,   0.1,     0.25,   0.5,   1.0};

    void observe(std::int64_t nanoseconds) noexcept;

    std::array<counter, bounds_seconds.size() + 1> buckets;  // last: +Inf
    counter count;
    counter sum_nanoseconds;
};

inline constexpr std::size_t error_code_count =
    static_cast<std::size_t>(core::error::internal_error) + 1;

struct shard_metrics {
    counter frames_in;  // WebSocket frames received, control frames included
    counter bytes_in;
    counter messages_in;   // text/binary messages received
    counter messages_out;  // frames queued to clients
    counter bytes_out;     // bytes written to sockets
    counter publishes;
    counter deliveries;  // message frames queued to subscribers by fan-out
    counter slow_consumer_disconnects;
    counter protocol_closes;  // RFC 6455 violations
    counter connections_opened;
    counter connections_closed;
    std::array<counter, error_code_count> errors;  // by core::error value
    latency_histogram fanout_latency;
    gauge connections;
    gauge subscriptions;  // (session, channel) pairs
    gauge topics;         // distinct topics with local subscribers, user topics included
};

// Prometheus text format for the sum of all shards plus node-wide gauges.
std::string render_prometheus(const std::vector<const shard_metrics*>& shards, std::size_t channels,
                              bool draining, double uptime_seconds, const std::string& node_id);

}  // namespace wsgate::net
