// wsgate-bench: the load generator for wsgate. One process, one thread, one epoll loop, so that
// pinned to one core it stays far cheaper per message than the gateway it measures.
// Scenarios: connect, fanout (and fanout --find-max), rtt. A human summary goes to stderr, one
// JSON report to stdout (and to --json FILE).

#include <CLI/CLI.hpp>
#include <boost/json.hpp>

#include <cmath>
#include <cstdio>
#include <exception>
#include <fstream>
#include <iostream>

#include "interrupt.hpp"
#include "scenarios.hpp"

namespace {

using namespace wsgate::bench;

void add_common_options(CLI::App& app, common_options& o) {
    app.add_option("--host", o.host, "gateway host (IPv4)")->capture_default_str();
    app.add_option("--port", o.port, "gateway port")->capture_default_str();
    app.add_option("--path", o.path, "WebSocket path")->capture_default_str();
    app.add_option("--token", o.token,
                   "authenticate with an auth frame carrying this JWT (default: development-mode "
                   "?user_id=bench-<n>)");
    app.add_option("--source-ips", o.source_ips,
                   "spread connections over 127.0.0.1..127.0.0.N (0: one per 10000 connections "
                   "when the target is loopback)")
        ->capture_default_str();
    app.add_option("--concurrency", o.concurrency, "connection set-ups in flight at once")
        ->capture_default_str();
    app.add_option("--connect-timeout", o.connect_timeout_s,
                   "seconds from TCP connect to authenticated (and subscribed)")
        ->capture_default_str();
    app.add_option("--json", o.json_file, "also write the JSON report to this file");
}

// Like boost::json::serialize, but numbers read as people write them (12.5, not 1.25E1).
void append_json(std::string& out, const boost::json::value& v) {
    switch (v.kind()) {
        case boost::json::kind::object: {
            out += '{';
            bool first = true;
            for (const auto& [key, value] : v.get_object()) {
                if (!first) out += ',';
                first = false;
                out += boost::json::serialize(boost::json::value(key));
                out += ':';
                append_json(out, value);
            }
            out += '}';
            return;
        }
        case boost::json::kind::array: {
            out += '[';
            bool first = true;
            for (const auto& value : v.get_array()) {
                if (!first) out += ',';
                first = false;
                append_json(out, value);
            }
            out += ']';
            return;
        }
        case boost::json::kind::double_: {
            const double d = v.get_double();
            if (!std::isfinite(d)) {
                out += "null";
                return;
            }
            char buf[32];
            std::snprintf(buf, sizeof buf, "%.10g", d);
            out += buf;
            return;
        }
        default:
            out += boost::json::serialize(v);
            return;
    }
}

void write_report(const boost::json::object& report, const std::string& json_file) {
    std::string text;
    append_json(text, report);
    std::cout << text << std::endl;
    if (!json_file.empty()) {
        std::ofstream out(json_file);
        out << text << '\n';
        if (!out) std::fprintf(stderr, "warning: cannot write %s\n", json_file.c_str());
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"wsgate-bench: WebSocket load generator for wsgate"};
    app.require_subcommand(1);
    app.fallthrough();  // common options may come before or after the scenario

    common_options common;
    add_common_options(app, common);

    connect_options conn;
    auto* connect_cmd = app.add_subcommand(
        "connect", "open N authenticated idle connections, hold them, report time and memory");
    connect_cmd->add_option("-n,--connections", conn.connections, "connections to open")
        ->capture_default_str();
    connect_cmd->add_option("--hold", conn.hold_s, "seconds to hold them open")
        ->capture_default_str();
    connect_cmd->add_option("--server-pid", conn.server_pid,
                            "gateway process id: report its VmRSS growth per connection");

    fanout_options fan;
    auto* fanout_cmd = app.add_subcommand(
        "fanout", "subscribers over channels, paced publishers; delivery ratio and latency");
    fanout_cmd->add_option("-s,--subscribers", fan.subscribers, "subscriber connections")
        ->capture_default_str();
    fanout_cmd
        ->add_option("-k,--channels", fan.channels,
                     "channels; subscriber i subscribes to channel i % K")
        ->capture_default_str();
    fanout_cmd->add_option("-p,--publishers", fan.publishers, "publisher connections")
        ->capture_default_str();
    fanout_cmd
        ->add_option("-r,--rate", fan.rate,
                     "publishes per second, all publishers together (find-max: first step)")
        ->capture_default_str();
    fanout_cmd
        ->add_option("-b,--payload", fan.payload_bytes, "bytes of the data object of each publish")
        ->capture_default_str();
    fanout_cmd->add_option("-d,--duration", fan.duration_s, "seconds measured")
        ->capture_default_str();
    fanout_cmd->add_option("--warmup", fan.warmup_s, "seconds published but not measured first")
        ->capture_default_str();
    fanout_cmd
        ->add_option("--drain", fan.drain_s,
                     "seconds to wait for in-flight deliveries after publishing stops")
        ->capture_default_str();
    fanout_cmd->add_option("--channel-prefix", fan.channel_prefix, "channels are <prefix>:<i>")
        ->capture_default_str();
    fanout_cmd->add_option("--publish-port", fan.publish_port,
                           "publishers connect to this port (another node of a cluster); "
                           "subscribers to --port");
    fanout_cmd->add_flag("--find-max", fan.find_max,
                         "step the rate up, then bisect, to the highest rate that passes");
    fanout_cmd->add_option("--max-rate", fan.max_rate, "find-max: highest rate tried")
        ->capture_default_str();
    fanout_cmd
        ->add_option("--step-duration", fan.step_duration_s, "find-max: seconds measured per step")
        ->capture_default_str();
    fanout_cmd
        ->add_option("--step-factor", fan.step_factor, "find-max: rate multiplier while steps pass")
        ->capture_default_str();
    fanout_cmd
        ->add_option("--refine-steps", fan.refine_steps,
                     "find-max: bisection steps after the first failure")
        ->capture_default_str();
    fanout_cmd
        ->add_option("--min-ratio", fan.min_ratio, "find-max: delivery ratio a step needs to pass")
        ->capture_default_str();
    fanout_cmd
        ->add_option("--max-p99-ms", fan.max_p99_ms,
                     "find-max: p99 latency (ms) a step must stay under")
        ->capture_default_str();

    rtt_options rtt;
    auto* rtt_cmd = app.add_subcommand("rtt", "ping/pong round trips on one connection");
    rtt_cmd->add_option("-d,--duration", rtt.duration_s, "seconds to run")->capture_default_str();
    rtt_cmd->add_option("-c,--count", rtt.count, "round trips to measure (0: until --duration)")
        ->capture_default_str();
    rtt_cmd->add_option("--warmup", rtt.warmup, "round trips not measured")->capture_default_str();

    CLI11_PARSE(app, argc, argv);

    install_interrupt_handler();
    try {
        boost::json::object report;
        if (*connect_cmd) {
            report = run_connect(common, conn);
        } else if (*fanout_cmd) {
            report = run_fanout(common, fan);
        } else {
            report = run_rtt(common, rtt);
        }
        if (interrupted()) report["interrupted"] = true;
        write_report(report, common.json_file);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "wsgate-bench: %s\n", e.what());
        return 1;
    }
    return 0;
}
