// fanout: S subscribers spread over K channels, P publishers publishing round-robin over the
// channels at a paced total rate. Measures delivery ratio, delivery throughput and
// publish-to-delivery latency. With --find-max it steps the rate up, then bisects, to find the
// highest rate the gateway sustains (ratio and p99 within bounds), reusing the connections.
//
// Pacing: the loop wakes at least every millisecond and publishes whatever the schedule
// (rate x elapsed time) says is due, so jitter changes batch sizes, not the rate. Each batch is
// one write per publisher connection.
//
// Accounting without per-message state: every publish carries its send time, so a delivery
// belongs to the measurement window exactly when its stamp does. Warm-up messages and late
// deliveries of an earlier step are "stale", never counted. Expected deliveries are summed at
// publish time from the live subscriber count of the channel.

#include <boost/json.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "bench_message.hpp"
#include "client_pool.hpp"
#include "clock.hpp"
#include "interrupt.hpp"
#include "latency_histogram.hpp"
#include "scenarios.hpp"

namespace wsgate::bench {
namespace {

constexpr double saturated_cpu_percent = 95;
constexpr double min_publish_rate_share = 0.95;  // of the target, for a step to pass
constexpr std::int64_t quiet_ns = 300 * ns_per_ms;
constexpr std::int64_t max_quiet_wait_ns = 10 * ns_per_second;

bool has_type(const char* data, std::size_t len, std::string_view type_field) {
    // The type comes first in everything the gateway sends; look only near the start.
    return std::string_view(data, std::min<std::size_t>(len, 48)).find(type_field) !=
           std::string_view::npos;
}

pool_config make_fanout_config(const common_options& common, const fanout_options& o) {
    if (o.channels == 0) throw std::invalid_argument("--channels must be at least 1");
    if (o.publishers == 0) throw std::invalid_argument("--publishers must be at least 1");
    if (o.rate <= 0) throw std::invalid_argument("--rate must be positive");
    pool_config config = make_pool_config(common, std::uint64_t{o.subscribers} + o.publishers);
    for (std::uint32_t i = 0; i < o.channels; ++i) {
        config.channels.push_back(o.channel_prefix + ":" + std::to_string(i));
    }
    if (o.publish_port != 0) {
        // Publishers take the slots after the subscribers.
        config.second_server_from = o.subscribers;
        config.second_server = config.server;
        config.second_server.sin_port = htons(o.publish_port);
    }
    return config;
}

class fanout_run final : public pool_handler {
public:
    fanout_run(const common_options& common, const fanout_options& options, pool_config config)
        : options_(options),
          parameters_(common_parameters(common, config)),
          channel_names_(config.channels),
          pool_(std::move(config), options.subscribers + options.publishers),
          live_subscribers_(options.channels, 0) {
        for (std::uint32_t s = 0; s < options_.subscribers; ++s) {
            pool_.assign_channel(s, s % options_.channels);
        }
        templates_.reserve(options_.channels);
        for (const auto& name : channel_names_) {
            templates_.emplace_back(name, options_.payload_bytes);
        }
        pool_.set_handler(this);
    }

    boost::json::object run();

    void on_message(std::uint32_t slot, const char* data, std::size_t len,
                    std::int64_t now_ns) override {
        if (slot < options_.subscribers) {
            const std::int64_t stamp = delivered_timestamp(data, len);
            if (stamp >= 0) {
                if (stamp >= window_start_ns_) {
                    ++received_;
                    latency_.record(now_ns > stamp ? static_cast<std::uint64_t>(now_ns - stamp)
                                                   : 0);
                } else {
                    ++stale_;
                }
                return;
            }
        } else if (has_type(data, len, R"("type":"ack")")) {
            ++acked_;
            return;
        }
        if (has_type(data, len, R"("type":"error")")) {
            if (errors_++ == 0) error_sample_.assign(data, std::min<std::size_t>(len, 300));
        } else {
            if (other_++ == 0) other_sample_.assign(data, std::min<std::size_t>(len, 300));
        }
    }

    void on_closed(std::uint32_t slot, std::string_view) override {
        if (slot < options_.subscribers && live_subscribers_[slot % options_.channels] > 0) {
            --live_subscribers_[slot % options_.channels];
        }
    }

private:
    struct step_outcome {
        boost::json::object json;
        bool pass = false;
        bool generator_saturated = false;
        double deliveries_per_second = 0;
    };

    establish_result connect_missing();
    void count_live_subscribers();
    std::uint64_t live_subscriber_count() const {
        return std::accumulate(live_subscribers_.begin(), live_subscribers_.end(),
                               std::uint64_t{0});
    }
    step_outcome run_step(double rate, double duration_s);
    void publish(std::uint64_t count, std::int64_t now_ns);
    void wait_quiet();

    fanout_options options_;
    boost::json::object parameters_;
    std::vector<std::string> channel_names_;
    client_pool pool_;
    std::vector<publish_frame_template> templates_;
    std::vector<std::uint32_t> live_subscribers_;  // ready subscribers per channel
    std::uint64_t publish_seq_ = 0;

    // The step in progress.
    std::int64_t window_start_ns_ = INT64_MAX;
    std::uint64_t published_total_ = 0;  // including warm-up
    std::uint64_t published_ = 0;        // in the measurement window
    std::uint64_t skipped_ = 0;          // not sent: publisher backlog full or closed
    std::uint64_t expected_ = 0;
    std::uint64_t received_ = 0;
    std::uint64_t stale_ = 0;
    std::uint64_t acked_ = 0;
    std::uint64_t errors_ = 0;
    std::uint64_t other_ = 0;
    std::string error_sample_;
    std::string other_sample_;
    latency_histogram latency_;
};

establish_result fanout_run::connect_missing() {
    establish_result r = pool_.establish();
    count_live_subscribers();
    return r;
}

void fanout_run::count_live_subscribers() {
    std::fill(live_subscribers_.begin(), live_subscribers_.end(), 0);
    for (std::uint32_t s = 0; s < options_.subscribers; ++s) {
        if (pool_.is_ready(s)) ++live_subscribers_[s % options_.channels];
    }
}

void fanout_run::publish(std::uint64_t count, std::int64_t now_ns) {
    const bool measured = now_ns >= window_start_ns_;
    const std::uint32_t first_publisher = options_.subscribers;
    for (std::uint64_t k = 0; k < count; ++k) {
        const std::uint64_t seq = publish_seq_++;
        const auto channel = static_cast<std::uint32_t>(seq % options_.channels);
        const auto slot = first_publisher + static_cast<std::uint32_t>(seq % options_.publishers);
        if (!pool_.is_ready(slot) ||
            pool_.pending_out_bytes(slot) > options_.publisher_backlog_bytes) {
            ++skipped_;
            continue;
        }
        templates_[channel].append_to(pool_.out_buffer(slot), now_ns);
        ++published_total_;
        if (measured) {
            ++published_;
            expected_ += live_subscribers_[channel];
        }
    }
    for (std::uint32_t p = 0; p < options_.publishers; ++p) {
        if (pool_.pending_out_bytes(first_publisher + p) > 0) pool_.flush(first_publisher + p);
    }
}

void fanout_run::wait_quiet() {
    const std::int64_t give_up = monotonic_ns() + max_quiet_wait_ns;
    for (;;) {
        const std::int64_t now = monotonic_ns();
        if (now - pool_.last_message_ns() >= quiet_ns || now >= give_up || interrupted()) return;
        pool_.poll(10);
    }
}

fanout_run::step_outcome fanout_run::run_step(double rate, double duration_s) {
    published_total_ = published_ = skipped_ = expected_ = received_ = stale_ = acked_ = 0;
    errors_ = other_ = 0;
    error_sample_.clear();
    other_sample_.clear();
    latency_.reset();
    const auto closes_before = pool_.closes();

    const std::int64_t start = monotonic_ns();
    window_start_ns_ = start + seconds_to_ns(options_.warmup_s);
    const std::int64_t window_end = window_start_ns_ + seconds_to_ns(duration_s);
    cpu_meter cpu;
    bool measuring = false;
    std::uint64_t scheduled = 0;
    std::int64_t now = start;
    while (!interrupted()) {
        now = monotonic_ns();
        if (now >= window_end) break;
        if (!measuring && now >= window_start_ns_) {
            measuring = true;
            cpu.start();
        }
        const auto due = static_cast<std::uint64_t>(static_cast<double>(now - start) * rate / 1e9);
        if (due > scheduled) {
            publish(due - scheduled, now);
            scheduled = due;
        }
        pool_.poll(1);
    }
    if (measuring) cpu.stop();
    const std::int64_t window_ns =
        std::max<std::int64_t>(0, std::min(now, window_end) - std::min(now, window_start_ns_));
    const std::uint64_t received_by_window_end = received_;

    const std::int64_t drain_end = monotonic_ns() + seconds_to_ns(options_.drain_s);
    while (!interrupted() && monotonic_ns() < drain_end &&
           (received_ < expected_ || acked_ < published_total_)) {
        pool_.poll(5);
    }

    const double seconds = static_cast<double>(window_ns) / 1e9;
    const double ratio =
        expected_ > 0 ? static_cast<double>(received_) / static_cast<double>(expected_) : 0.0;
    const double publish_rate = seconds > 0 ? static_cast<double>(published_) / seconds : 0.0;
    const double p99_ms = static_cast<double>(latency_.percentile(0.99)) / 1e6;
    const auto closes = count_delta(closes_before, pool_.closes());

    step_outcome out;
    out.deliveries_per_second = seconds > 0 ? static_cast<double>(received_) / seconds : 0.0;
    out.generator_saturated = cpu.percent() >= saturated_cpu_percent;
    out.pass = published_ > 0 && expected_ > 0 && ratio >= options_.min_ratio &&
               p99_ms < options_.max_p99_ms && publish_rate >= min_publish_rate_share * rate;

    boost::json::object& j = out.json;
    j["target_rate"] = rate;
    j["measured_seconds"] = seconds;
    j["published"] = published_;
    j["publish_rate"] = publish_rate;
    j["published_with_warmup"] = published_total_;
    j["publish_skipped"] = skipped_;
    j["acked"] = acked_;
    j["expected_deliveries"] = expected_;
    j["received_deliveries"] = received_;
    j["received_by_window_end"] = received_by_window_end;
    j["delivery_ratio"] = ratio;
    j["deliveries_per_second"] = out.deliveries_per_second;
    j["latency"] = latency_to_json(latency_);
    j["stale_deliveries"] = stale_;
    j["error_frames"] = errors_;
    if (!error_sample_.empty()) j["error_sample"] = error_sample_;
    j["other_frames"] = other_;
    if (!other_sample_.empty()) j["other_sample"] = other_sample_;
    j["closes"] = counts_to_json(closes);
    j["live_subscribers"] = live_subscriber_count();
    j["generator_cpu_percent"] = cpu.percent();
    j["generator_saturated"] = out.generator_saturated;
    j["pass"] = out.pass;

    std::fprintf(stderr,
                 "  rate %.0f/s: published %llu (%.0f/s, %llu skipped), acked %llu/%llu (with "
                 "warm-up), delivered %llu/%llu (%.3f%%) = %.0f/s\n    latency %s; generator "
                 "cpu %.0f%%%s; closes: %s; errors %llu, other %llu -> %s\n",
                 rate, static_cast<unsigned long long>(published_), publish_rate,
                 static_cast<unsigned long long>(skipped_), static_cast<unsigned long long>(acked_),
                 static_cast<unsigned long long>(published_total_),
                 static_cast<unsigned long long>(received_),
                 static_cast<unsigned long long>(expected_), ratio * 100, out.deliveries_per_second,
                 latency_to_text(latency_).c_str(), cpu.percent(),
                 out.generator_saturated ? " (SATURATED)" : "", counts_to_text(closes).c_str(),
                 static_cast<unsigned long long>(errors_), static_cast<unsigned long long>(other_),
                 out.pass ? "pass" : "FAIL");
    if (!error_sample_.empty()) std::fprintf(stderr, "    error e.g. %s\n", error_sample_.c_str());
    if (!other_sample_.empty()) std::fprintf(stderr, "    other e.g. %s\n", other_sample_.c_str());
    return out;
}

boost::json::object fanout_run::run() {
    const fanout_options& o = options_;
    parameters_["subscribers"] = o.subscribers;
    parameters_["channels"] = o.channels;
    parameters_["publishers"] = o.publishers;
    parameters_["publish_port"] = o.publish_port;
    parameters_["rate"] = o.rate;
    parameters_["payload_bytes"] = o.payload_bytes;
    parameters_["publish_frame_bytes"] = templates_.front().frame_bytes();
    parameters_["warmup_s"] = o.warmup_s;
    parameters_["drain_s"] = o.drain_s;
    parameters_["channel_prefix"] = o.channel_prefix;
    parameters_["find_max"] = o.find_max;
    if (o.find_max) {
        parameters_["max_rate"] = o.max_rate;
        parameters_["step_duration_s"] = o.step_duration_s;
        parameters_["step_factor"] = o.step_factor;
        parameters_["refine_steps"] = o.refine_steps;
        parameters_["min_ratio"] = o.min_ratio;
        parameters_["max_p99_ms"] = o.max_p99_ms;
    } else {
        parameters_["duration_s"] = o.duration_s;
    }

    std::fprintf(stderr,
                 "fanout: %u subscribers over %u channel(s), %u publisher(s), %u-byte data, %s\n",
                 o.subscribers, o.channels, o.publishers, o.payload_bytes,
                 parameters_["url"].as_string().c_str());
    const establish_result established = connect_missing();
    print_establish(established);
    boost::json::object results;
    results["connect"] = establish_to_json(established);
    bool any_publisher = false;
    for (std::uint32_t p = 0; p < o.publishers; ++p) {
        any_publisher = any_publisher || pool_.is_ready(o.subscribers + p);
    }
    if (!any_publisher || live_subscriber_count() == 0) {
        pool_.close_all();
        throw std::runtime_error("fanout: no publisher or no subscriber could connect");
    }

    if (!o.find_max) {
        step_outcome step = run_step(o.rate, o.duration_s);
        results["step"] = std::move(step.json);
    } else {
        boost::json::array steps;
        double rate = o.rate;
        double best = 0;
        double best_deliveries = 0;
        double lowest_failing = 0;
        bool failing_saturated = false;
        int refines = 0;
        for (;;) {
            if (pool_.ready_count() < pool_.size()) {
                const establish_result again = connect_missing();
                std::fprintf(stderr, "  reconnected %llu of %llu lost connections\n",
                             static_cast<unsigned long long>(again.connected),
                             static_cast<unsigned long long>(again.attempted));
            }
            step_outcome step = run_step(rate, o.step_duration_s);
            steps.push_back(std::move(step.json));
            if (interrupted()) break;
            if (step.pass) {
                if (rate > best) {
                    best = rate;
                    best_deliveries = step.deliveries_per_second;
                }
            } else if (lowest_failing == 0 || rate < lowest_failing) {
                lowest_failing = rate;
                failing_saturated = step.generator_saturated;
            }
            double next = 0;
            if (lowest_failing == 0) {
                if (rate >= o.max_rate) break;
                next = std::min(rate * o.step_factor, o.max_rate);
            } else {
                if (refines >= o.refine_steps || lowest_failing - best <= 0.02 * lowest_failing) {
                    break;
                }
                next = best > 0 ? (best + lowest_failing) / 2 : lowest_failing / 2;
                ++refines;
            }
            rate = std::max(1.0, std::round(next));
            wait_quiet();
        }
        results["steps"] = std::move(steps);
        results["max_rate"] = best;
        results["max_rate_deliveries_per_second"] = best_deliveries;
        results["lowest_failing_rate"] = lowest_failing;
        const char* limit = lowest_failing == 0 ? "max-rate"
                            : failing_saturated ? "generator (cpu saturated at the failing rate)"
                                                : "gateway";
        results["limited_by"] = limit;
        std::fprintf(stderr,
                     "find-max: highest passing rate %.0f publishes/s = %.0f deliveries/s "
                     "(lowest failing %.0f/s; limited by %s)\n",
                     best, best_deliveries, lowest_failing, limit);
    }
    results["closes_since_connecting"] = counts_to_json(pool_.closes());
    std::fprintf(stderr, "  connections closed by the server or network since connecting: %s\n",
                 counts_to_text(pool_.closes()).c_str());
    pool_.close_all();

    boost::json::object report;
    report["scenario"] = "fanout";
    report["parameters"] = std::move(parameters_);
    report["results"] = std::move(results);
    return report;
}

}  // namespace

boost::json::object run_fanout(const common_options& common, const fanout_options& options) {
    check_open_file_limit(std::uint64_t{options.subscribers} + options.publishers);
    fanout_run run(common, options, make_fanout_config(common, options));
    return run.run();
}

}  // namespace wsgate::bench
