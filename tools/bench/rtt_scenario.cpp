// rtt: one connection, one {"type":"ping","id":N} in flight at a time, timed until its pong:
// the gateway's per-request floor, without queueing.

#include <boost/json.hpp>

#include <cstdio>
#include <stdexcept>
#include <string_view>

#include "client_pool.hpp"
#include "clock.hpp"
#include "interrupt.hpp"
#include "latency_histogram.hpp"
#include "scenarios.hpp"

namespace wsgate::bench {
namespace {

constexpr std::int64_t pong_timeout_ns = 5 * ns_per_second;

class rtt_run final : public pool_handler {
public:
    void on_message(std::uint32_t, const char* data, std::size_t len,
                    std::int64_t now_ns) override {
        if (!waiting_ ||
            std::string_view(data, len).find(R"("type":"pong")") == std::string_view::npos) {
            ++other_;
            return;
        }
        waiting_ = false;
        if (round_trips_++ >= warmup_) {
            latency_.record(now_ns > sent_ns_ ? static_cast<std::uint64_t>(now_ns - sent_ns_) : 0);
        }
    }

    bool waiting_ = false;
    std::int64_t sent_ns_ = 0;
    std::uint64_t round_trips_ = 0;
    std::uint64_t warmup_ = 0;
    std::uint64_t other_ = 0;
    latency_histogram latency_;
};

}  // namespace

boost::json::object run_rtt(const common_options& common, const rtt_options& options) {
    pool_config config = make_pool_config(common, 1);
    boost::json::object parameters = common_parameters(common, config);
    parameters["duration_s"] = options.duration_s;
    parameters["count"] = options.count;
    parameters["warmup"] = options.warmup;
    client_pool pool(std::move(config), 1);
    rtt_run run;
    run.warmup_ = options.warmup;
    pool.set_handler(&run);

    std::fprintf(stderr, "rtt: ping/pong on one connection to %s\n",
                 parameters["url"].as_string().c_str());
    const establish_result established = pool.establish();
    if (established.connected != 1) {
        print_establish(established);
        throw std::runtime_error("rtt: could not connect");
    }

    cpu_meter cpu;
    cpu.start();
    const std::int64_t start = monotonic_ns();
    const std::int64_t end = start + seconds_to_ns(options.duration_s);
    std::uint64_t timeouts = 0;
    char frame[64];
    for (;;) {
        const std::int64_t now = monotonic_ns();
        if (interrupted() || !pool.is_ready(0)) break;
        if (!run.waiting_) {
            const bool enough = options.count > 0 && run.latency_.count() >= options.count;
            if (enough || (now >= end && run.round_trips_ >= options.warmup)) break;
            if (now >= end + pong_timeout_ns) break;  // still warming up long after the end
            const int n = std::snprintf(frame, sizeof frame, R"({"type":"ping","id":%llu})",
                                        static_cast<unsigned long long>(run.round_trips_ + 1));
            run.waiting_ = true;
            run.sent_ns_ = monotonic_ns();
            pool.send_text(0, std::string_view(frame, static_cast<std::size_t>(n)));
        } else if (now - run.sent_ns_ > pong_timeout_ns) {
            ++timeouts;
            break;
        }
        pool.poll(10);
    }
    const double seconds = static_cast<double>(monotonic_ns() - start) / 1e9;
    cpu.stop();
    const auto closes = pool.closes();
    pool.close_all();

    const auto measured = run.latency_.count();
    boost::json::object results;
    results["round_trips"] = measured;
    results["seconds"] = seconds;
    results["round_trips_per_second"] =
        seconds > 0 ? static_cast<double>(run.round_trips_) / seconds : 0.0;
    results["latency"] = latency_to_json(run.latency_);
    results["pong_timeouts"] = timeouts;
    results["other_frames"] = run.other_;
    results["closes"] = counts_to_json(closes);
    results["generator_cpu_percent"] = cpu.percent();
    std::fprintf(stderr,
                 "  %llu round trips (+%llu warm-up) in %.2f s: %s; timeouts %llu, closes %s\n",
                 static_cast<unsigned long long>(measured),
                 static_cast<unsigned long long>(run.round_trips_ - measured), seconds,
                 latency_to_text(run.latency_).c_str(), static_cast<unsigned long long>(timeouts),
                 counts_to_text(closes).c_str());

    boost::json::object report;
    report["scenario"] = "rtt";
    report["parameters"] = std::move(parameters);
    report["results"] = std::move(results);
    return report;
}

}  // namespace wsgate::bench
