#include "net/metrics.hpp"

#include <cstdio>

namespace wsgate::net {

void latency_histogram::observe(std::int64_t nanoseconds) noexcept {
    const double seconds = static_cast<double>(nanoseconds) * 1e-9;
    std::size_t i = 0;
    while (i < bounds_seconds.size() && seconds > bounds_seconds[i]) ++i;
    buckets[i].add();
    count.add();
    sum_nanoseconds.add(nanoseconds > 0 ? static_cast<std::uint64_t>(nanoseconds) : 0);
}

namespace {

template <class Get>
std::uint64_t sum(const std::vector<const shard_metrics*>& shards, Get get) {
    std::uint64_t total = 0;
    for (const auto* s : shards) total += get(*s);
    return total;
}

void line(std::string& out, const char* name, const char* type, const char* help,
          std::uint64_t value) {
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
    out += name;
    out += ' ';
    out += std::to_string(value);
    out += '\n';
}

}  // namespace

std::string render_prometheus(const std::vector<const shard_metrics*>& shards, std::size_t channels,
                              bool draining, double uptime_seconds, const std::string& node_id) {
    std::string out;
    out.reserve(8192);
    auto total = [&](counter shard_metrics::*field) {
        return sum(shards, [field](const shard_metrics& m) { return (m.*field).get(); });
    };
    auto gauge_total = [&](gauge shard_metrics::*field) {
        std::int64_t v = 0;
        for (const auto* s : shards) v += (s->*field).get();
        return static_cast<std::uint64_t>(v < 0 ? 0 : v);
    };

    out += "# HELP wsgate_info Node identity.\n# TYPE wsgate_info gauge\nwsgate_info{node_id=\"";
    out += node_id;
    out += "\"} 1\n";
    line(out, "wsgate_connections", "gauge", "Open WebSocket connections.",
         gauge_total(&shard_metrics::connections));
    line(out, "wsgate_channels", "gauge", "Channels with at least one subscriber.", channels);
    line(out, "wsgate_subscriptions", "gauge", "Channel subscriptions of local connections.",
         gauge_total(&shard_metrics::subscriptions));
    line(out, "wsgate_draining", "gauge", "1 while the node shuts down.", draining ? 1 : 0);
    char uptime[64];
    std::snprintf(uptime, sizeof uptime, "%.3f", uptime_seconds);
    out +=
        "# HELP wsgate_uptime_seconds Seconds since start.\n# TYPE wsgate_uptime_seconds gauge\n";
    out += "wsgate_uptime_seconds ";
    out += uptime;
    out += '\n';
    line(out, "wsgate_connections_opened_total", "counter", "WebSocket connections accepted.",
         total(&shard_metrics::connections_opened));
    line(out, "wsgate_connections_closed_total", "counter", "WebSocket connections closed.",
         total(&shard_metrics::connections_closed));
    line(out, "wsgate_frames_in_total", "counter", "WebSocket frames received.",
         total(&shard_metrics::frames_in));
    line(out, "wsgate_bytes_in_total", "counter", "Bytes received on WebSocket connections.",
         total(&shard_metrics::bytes_in));
    line(out, "wsgate_messages_in_total", "counter", "Messages received from clients.",
         total(&shard_metrics::messages_in));
    line(out, "wsgate_messages_out_total", "counter", "Frames queued to clients.",
         total(&shard_metrics::messages_out));
    line(out, "wsgate_bytes_out_total", "counter", "Bytes written to WebSocket connections.",
         total(&shard_metrics::bytes_out));
    line(out, "wsgate_publishes_total", "counter", "Messages published by clients.",
         total(&shard_metrics::publishes));
    line(out, "wsgate_deliveries_total", "counter", "Messages queued to subscribers.",
         total(&shard_metrics::deliveries));
    line(out, "wsgate_slow_consumer_disconnects_total", "counter",
         "Connections closed because their outbound queue overflowed.",
         total(&shard_metrics::slow_consumer_disconnects));
    line(out, "wsgate_protocol_closes_total", "counter",
         "Connections closed for RFC 6455 violations or oversized messages.",
         total(&shard_metrics::protocol_closes));

    out +=
        "# HELP wsgate_errors_total Error frames sent, by code.\n# TYPE wsgate_errors_total "
        "counter\n";
    for (std::size_t i = 1; i < error_code_count; ++i) {
        std::uint64_t v = 0;
        for (const auto* s : shards) v += s->errors[i].get();
        out += "wsgate_errors_total{code=\"";
        out += core::wire_code(static_cast<core::error>(i));
        out += "\"} ";
        out += std::to_string(v);
        out += '\n';
    }

    out +=
        "# HELP wsgate_fanout_latency_seconds Time from encoding a message to queueing it on "
        "every local subscriber.\n# TYPE wsgate_fanout_latency_seconds histogram\n";
    std::uint64_t cumulative = 0;
    for (std::size_t i = 0; i <= latency_histogram::bounds_seconds.size(); ++i) {
        for (const auto* s : shards) cumulative += s->fanout_latency.buckets[i].get();
        out += "wsgate_fanout_latency_seconds_bucket{le=\"";
        if (i < latency_histogram::bounds_seconds.size()) {
            char bound[32];
            std::snprintf(bound, sizeof bound, "%g", latency_histogram::bounds_seconds[i]);
            out += bound;
        } else {
            out += "+Inf";
        }
        out += "\"} ";
        out += std::to_string(cumulative);
        out += '\n';
    }
    const auto sum_ns =
        sum(shards, [](const shard_metrics& m) { return m.fanout_latency.sum_nanoseconds.get(); });
    char sum_text[64];
    std::snprintf(sum_text, sizeof sum_text, "%.9f", static_cast<double>(sum_ns) * 1e-9);
    out += "wsgate_fanout_latency_seconds_sum ";
    out += sum_text;
    out += "\nwsgate_fanout_latency_seconds_count ";
    out += std::to_string(
        sum(shards, [](const shard_metrics& m) { return m.fanout_latency.count.get(); }));
    out += '\n';
    return out;
}

}  // namespace wsgate::net
