// connect: N authenticated idle connections, opened at bounded concurrency and held, to measure
// how many the gateway takes, how fast, and (with --server-pid) what each costs it in memory.

#include <boost/json.hpp>

#include <cstdio>
#include <fstream>
#include <string>

#include "client_pool.hpp"
#include "clock.hpp"
#include "scenarios.hpp"

namespace wsgate::bench {
namespace {

// VmRSS of `pid` in KiB, or -1 if it cannot be read.
long long read_rss_kib(int pid) {
    std::ifstream status("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(status, line)) {
        if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
    }
    return -1;
}

}  // namespace

boost::json::object run_connect(const common_options& common, const connect_options& options) {
    check_open_file_limit(options.connections);
    pool_config config = make_pool_config(common, options.connections);
    boost::json::object parameters = common_parameters(common, config);
    client_pool pool(std::move(config), options.connections);
    parameters["connections"] = options.connections;
    parameters["hold_s"] = options.hold_s;
    if (options.server_pid > 0) parameters["server_pid"] = options.server_pid;

    std::fprintf(stderr, "connect: opening %u connections to %s\n", options.connections,
                 parameters["url"].as_string().c_str());
    const long long rss_before = options.server_pid > 0 ? read_rss_kib(options.server_pid) : -1;
    const establish_result established = pool.establish();
    const long long rss_connected = options.server_pid > 0 ? read_rss_kib(options.server_pid) : -1;
    print_establish(established);

    std::fprintf(stderr, "  holding %u connections for %.1f s\n", pool.ready_count(),
                 options.hold_s);
    pool.run_until(monotonic_ns() + seconds_to_ns(options.hold_s));
    const long long rss_held = options.server_pid > 0 ? read_rss_kib(options.server_pid) : -1;
    const std::uint32_t still_open = pool.ready_count();
    const auto closes = pool.closes();
    pool.close_all();

    boost::json::object results;
    results["connect"] = establish_to_json(established);
    results["open_after_hold"] = still_open;
    results["closed_during_hold"] = counts_to_json(closes);
    std::fprintf(stderr, "  open after hold: %u, closed by the server or network: %s\n", still_open,
                 counts_to_text(closes).c_str());

    if (options.server_pid > 0) {
        boost::json::object rss;
        rss["before_kib"] = rss_before;
        rss["after_connect_kib"] = rss_connected;
        rss["after_hold_kib"] = rss_held;
        if (rss_before >= 0 && rss_connected >= 0 && established.connected > 0) {
            const double per_conn_bytes = static_cast<double>(rss_connected - rss_before) * 1024.0 /
                                          static_cast<double>(established.connected);
            rss["delta_kib"] = rss_connected - rss_before;
            rss["per_connection_bytes"] = per_conn_bytes;
            rss["per_connection_kib"] = per_conn_bytes / 1024.0;
            std::fprintf(stderr,
                         "  server RSS %lld KiB -> %lld KiB (after hold %lld KiB): %.0f bytes "
                         "(%.2f KiB) per connection\n",
                         rss_before, rss_connected, rss_held, per_conn_bytes,
                         per_conn_bytes / 1024.0);
        } else {
            std::fprintf(stderr, "  server RSS: cannot read /proc/%d/status\n", options.server_pid);
        }
        results["server_rss"] = std::move(rss);
    }

    boost::json::object report;
    report["scenario"] = "connect";
    report["parameters"] = std::move(parameters);
    report["results"] = std::move(results);
    return report;
}

}  // namespace wsgate::bench
