#include <arpa/inet.h>
#include <netdb.h>
#include <sys/resource.h>

#include <boost/json.hpp>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "clock.hpp"
#include "scenarios.hpp"

namespace wsgate::bench {
namespace {

constexpr std::uint64_t connections_per_source_addr = 10000;
// Sockets the process needs besides the connections: stdio, epoll, the --json file.
constexpr std::uint64_t spare_descriptors = 16;

sockaddr_in resolve(const std::string& host, std::uint16_t port) {
    addrinfo hints{};
    hints.ai_family = AF_INET;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* result = nullptr;
    if (const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &result); rc != 0) {
        throw std::runtime_error("cannot resolve " + host + ": " + gai_strerror(rc));
    }
    sockaddr_in addr{};
    std::memcpy(&addr, result->ai_addr, sizeof addr);
    freeaddrinfo(result);
    addr.sin_port = htons(port);
    return addr;
}

double to_us(std::uint64_t ns) {
    return static_cast<double>(ns) / 1000.0;
}

}  // namespace

pool_config make_pool_config(const common_options& common, std::uint64_t connections) {
    pool_config config;
    config.server = resolve(common.host, common.port);
    config.host_header = common.host + ":" + std::to_string(common.port);
    config.path = common.path;
    config.token = common.token;
    config.concurrency = std::max(1, common.concurrency);
    config.connect_timeout_s = common.connect_timeout_s;

    // Every address of 127.0.0.0/8 is local, so on loopback spreading connections over
    // 127.0.0.1..k multiplies the ephemeral ports available to reach one server port.
    const std::uint32_t server_ip = ntohl(config.server.sin_addr.s_addr);
    const bool loopback = (server_ip >> 24) == 127;
    std::uint64_t sources = 0;
    if (common.source_ips > 0) {
        sources = static_cast<std::uint64_t>(common.source_ips);
    } else if (loopback) {
        sources = (connections + connections_per_source_addr - 1) / connections_per_source_addr;
    }
    if (sources > 254) sources = 254;
    if (sources > 0 && !loopback) {
        throw std::runtime_error("--source-ips needs a loopback target (127.0.0.0/8)");
    }
    for (std::uint64_t i = 0; i < sources; ++i) {
        in_addr a{};
        a.s_addr = htonl((127u << 24) | static_cast<std::uint32_t>(1 + i));
        config.source_addrs.push_back(a);
    }
    return config;
}

boost::json::object common_parameters(const common_options& common, const pool_config& config) {
    boost::json::object p;
    p["url"] = "ws://" + config.host_header + common.path;
    p["auth"] = common.token.empty() ? "user_id query parameter" : "auth frame with token";
    p["source_addresses"] = config.source_addrs.size();
    p["concurrency"] = config.concurrency;
    p["connect_timeout_s"] = config.connect_timeout_s;
    return p;
}

std::uint64_t raise_open_file_limit() {
    rlimit lim{};
    if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 0;
    if (lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        setrlimit(RLIMIT_NOFILE, &lim);
        getrlimit(RLIMIT_NOFILE, &lim);
    }
    return lim.rlim_cur;
}

void check_open_file_limit(std::uint64_t connections) {
    const std::uint64_t limit = raise_open_file_limit();
    if (connections + spare_descriptors > limit) {
        std::fprintf(stderr,
                     "warning: %llu connections need about %llu descriptors but RLIMIT_NOFILE is "
                     "%llu (raise the hard limit: ulimit -Hn); the excess will fail with "
                     "too_many_open_files\n",
                     static_cast<unsigned long long>(connections),
                     static_cast<unsigned long long>(connections + spare_descriptors),
                     static_cast<unsigned long long>(limit));
    }
}

boost::json::object establish_to_json(const establish_result& r) {
    boost::json::object o;
    o["attempted"] = r.attempted;
    o["connected"] = r.connected;
    o["failed"] = r.failed;
    o["seconds"] = static_cast<double>(r.elapsed_ns) / 1e9;
    o["connects_per_second"] = r.elapsed_ns > 0 ? static_cast<double>(r.connected) * 1e9 /
                                                      static_cast<double>(r.elapsed_ns)
                                                : 0.0;
    o["setup_latency"] = latency_to_json(r.setup_latency);
    o["failures"] = counts_to_json(r.failures);
    boost::json::object samples;
    for (const auto& [reason, sample] : r.failure_samples) samples[reason] = sample;
    o["failure_samples"] = std::move(samples);
    return o;
}

void print_establish(const establish_result& r) {
    std::fprintf(stderr, "  connected %llu of %llu in %.2f s (%.0f/s), failed %llu%s%s\n",
                 static_cast<unsigned long long>(r.connected),
                 static_cast<unsigned long long>(r.attempted),
                 static_cast<double>(r.elapsed_ns) / 1e9,
                 r.elapsed_ns > 0
                     ? static_cast<double>(r.connected) * 1e9 / static_cast<double>(r.elapsed_ns)
                     : 0.0,
                 static_cast<unsigned long long>(r.failed), r.failures.empty() ? "" : ": ",
                 r.failures.empty() ? "" : counts_to_text(r.failures).c_str());
    if (r.connected > 0) {
        std::fprintf(stderr, "    per connection, TCP connect to ready: %s\n",
                     latency_to_text(r.setup_latency).c_str());
    }
    for (const auto& [reason, sample] : r.failure_samples) {
        if (!sample.empty())
            std::fprintf(stderr, "    %s e.g. %s\n", reason.c_str(), sample.c_str());
    }
}

boost::json::object counts_to_json(const std::map<std::string, std::uint64_t>& counts) {
    boost::json::object o;
    for (const auto& [key, n] : counts) o[key] = n;
    return o;
}

std::map<std::string, std::uint64_t> count_delta(
    const std::map<std::string, std::uint64_t>& before,
    const std::map<std::string, std::uint64_t>& after) {
    std::map<std::string, std::uint64_t> delta;
    for (const auto& [key, n] : after) {
        const auto it = before.find(key);
        const std::uint64_t was = it == before.end() ? 0 : it->second;
        if (n > was) delta[key] = n - was;
    }
    return delta;
}

std::string counts_to_text(const std::map<std::string, std::uint64_t>& counts) {
    std::string s;
    for (const auto& [key, n] : counts) {
        if (!s.empty()) s += ", ";
        s += key + "=" + std::to_string(n);
    }
    return s.empty() ? "none" : s;
}

boost::json::object latency_to_json(const latency_histogram& h) {
    boost::json::object o;
    o["count"] = h.count();
    o["mean_us"] = h.mean() / 1000.0;
    o["p50_us"] = to_us(h.percentile(0.50));
    o["p90_us"] = to_us(h.percentile(0.90));
    o["p99_us"] = to_us(h.percentile(0.99));
    o["p999_us"] = to_us(h.percentile(0.999));
    o["max_us"] = to_us(h.max());
    return o;
}

std::string latency_to_text(const latency_histogram& h) {
    char buf[200];
    std::snprintf(buf, sizeof buf, "p50 %.0f  p90 %.0f  p99 %.0f  p99.9 %.0f  max %.0f us",
                  to_us(h.percentile(0.50)), to_us(h.percentile(0.90)), to_us(h.percentile(0.99)),
                  to_us(h.percentile(0.999)), to_us(h.max()));
    return buf;
}

}  // namespace wsgate::bench
