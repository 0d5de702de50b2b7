// The HTTP side of the real binary and its life cycle (docs/protocol.md, "HTTP endpoints on the
// same port"; docs/configuration.md): /, /health, /stats, /metrics, 404/405, and the graceful
// drain on SIGTERM.

#include "support/frames.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/prometheus_text.hpp"
#include "support/raw_ws_client.hpp"
#include "support/temp_file.hpp"
#include "support/ws_client.hpp"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <boost/json/serialize.hpp>

#include <signal.h>

#include <optional>
#include <string>
#include <vector>

using namespace wsgate::test;
namespace json = boost::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

json::object get_json(std::uint16_t port, std::string_view target, int expected_status = 200) {
    const auto r = http_get(port, target);
    EXPECT_EQ(r.status, expected_status) << target << ": " << r.body;
    const auto v = r.json();
    if (!v.is_object()) throw std::runtime_error(std::string(target) + ": not an object");
    return v.as_object();
}

std::int64_t stats_value(std::uint16_t port, std::string_view name) {
    return as_int(get_json(port, "/stats").at(name));
}

std::int64_t health_connections(std::uint16_t port) {
    return as_int(get_json(port, "/health").at("connections"));
}

}  // namespace

TEST(ops, root_describes_the_service) {
    gateway_process gw({"--node-id", "ops-node"});
    const auto r = http_get(gw.port(), "/");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_NE(r.header("Content-Type").find("application/json"), std::string::npos)
        << r.header("Content-Type");
    const auto body = r.json().as_object();
    EXPECT_EQ(body.at("service"), "wsgate") << r.body;
    EXPECT_EQ(body.at("status"), "ok") << r.body;
    EXPECT_EQ(body.at("version"), "0.1.0") << r.body;
    EXPECT_EQ(body.at("node_id"), "ops-node") << r.body;
}

TEST(ops, health_counts_open_websocket_connections) {
    gateway_process gw;
    auto health = get_json(gw.port(), "/health");
    EXPECT_EQ(health.at("status"), "ok") << json::serialize(health);
    EXPECT_EQ(as_int(health.at("connections")), 0) << json::serialize(health);

    std::vector<ws_client> clients;
    for (int i = 0; i < 3; ++i)
        clients.push_back(connect_dev_user(gw.port(), "u" + std::to_string(i)));
    EXPECT_TRUE(wait_until([&] { return health_connections(gw.port()) == 3; }))
        << "/health says " << health_connections(gw.port()) << " connections, 3 are open";

    const auto closed = clients.back().close();
    ASSERT_EQ(closed.what, ws_event::kind::closed) << closed.describe();
    EXPECT_TRUE(wait_until([&] { return health_connections(gw.port()) == 2; }))
        << "/health says " << health_connections(gw.port()) << " connections, 2 are open";

    // A dropped TCP connection (no close handshake) is also noticed.
    clients.pop_back();
    clients.pop_back();
    EXPECT_TRUE(wait_until([&] { return health_connections(gw.port()) == 1; }))
        << "/health says " << health_connections(gw.port()) << " connections, 1 is open";
}

TEST(ops, stats_report_node_connections_channels_subscriptions_and_traffic) {
    gateway_process gw({"--node-id", "stats-node"});
    const auto before = get_json(gw.port(), "/stats");
    EXPECT_EQ(before.at("node_id"), "stats-node") << json::serialize(before);
    for (const auto* field : {"connections", "channels", "subscriptions", "messages_in",
                              "messages_out", "uptime_seconds"}) {
        EXPECT_TRUE(before.contains(field) && before.at(field).is_number())
            << field << " missing: " << json::serialize(before);
    }
    const auto in_before = as_int(before.at("messages_in"));
    const auto out_before = as_int(before.at("messages_out"));

    auto a = connect_dev_user(gw.port(), "a");
    auto b = connect_dev_user(gw.port(), "b");
    a.send_json(subscribe_frame(1, {"room:1", "room:2"}));
    ASSERT_EQ(a.next_json().at("type"), "subscribed");
    b.send_json(subscribe_frame(1, {"room:1"}));
    ASSERT_EQ(b.next_json().at("type"), "subscribed");
    a.send_json(publish_frame(2, "room:1", "traffic"));
    a.expect_json("ack");
    a.expect_json("message");
    b.expect_json("message");

    EXPECT_TRUE(wait_until([&] {
        const auto s = get_json(gw.port(), "/stats");
        return as_int(s.at("connections")) == 2 && as_int(s.at("channels")) == 2 &&
               as_int(s.at("subscriptions")) == 3;
    })) << "expected 2 connections, 2 channels, 3 subscriptions: "
        << json::serialize(get_json(gw.port(), "/stats"));
    EXPECT_TRUE(wait_until([&] {
        return stats_value(gw.port(), "messages_in") >= in_before + 3 &&
               stats_value(gw.port(), "messages_out") >= out_before + 5;
    })) << "3 frames in (2 subscribes, 1 publish), 5 out (2 subscribed, 1 ack, 2 deliveries): "
        << json::serialize(get_json(gw.port(), "/stats"));
}

TEST(ops, metrics_expose_prometheus_counters_that_move_with_traffic) {
    gateway_process gw;
    const auto first = http_get(gw.port(), "/metrics");
    ASSERT_EQ(first.status, 200) << first.body;
    EXPECT_EQ(first.header("Content-Type").rfind("text/plain", 0), 0u)
        << first.header("Content-Type");
    for (const auto* name :
         {"wsgate_connections", "wsgate_messages_in_total", "wsgate_messages_out_total",
          "wsgate_publishes_total", "wsgate_deliveries_total",
          "wsgate_slow_consumer_disconnects_total", "wsgate_fanout_latency_seconds_bucket"}) {
        EXPECT_TRUE(metric_value(first.body, name).has_value())
            << "no sample of " << name << " in:\n"
            << first.body;
    }
    const auto value = [&](const std::string& body, std::string_view name,
                           std::string_view labels = "") {
        return metric_value(body, name, labels).value_or(0.0);
    };

    auto a = connect_dev_user(gw.port(), "a");
    auto b = connect_dev_user(gw.port(), "b");
    b.send_json(subscribe_frame(1, {"m"}));
    b.expect_json("subscribed");
    for (int i = 0; i < 3; ++i) {
        a.send_json(publish_frame(10 + i, "m", i));
        a.expect_json("ack");
        b.expect_json("message");
    }
    a.send_text(R"({"broken":)");
    EXPECT_EQ(error_code_of(a.next_json()), "bad_json");

    std::string body;
    EXPECT_TRUE(wait_until([&] {
        body = http_get(gw.port(), "/metrics").body;
        return value(body, "wsgate_publishes_total") >=
                   value(first.body, "wsgate_publishes_total") + 3 &&
               value(body, "wsgate_deliveries_total") >=
                   value(first.body, "wsgate_deliveries_total") + 3 &&
               value(body, "wsgate_messages_in_total") >=
                   value(first.body, "wsgate_messages_in_total") + 5 &&
               value(body, "wsgate_messages_out_total") >
                   value(first.body, "wsgate_messages_out_total") &&
               value(body, "wsgate_connections") == 2 &&
               value(body, "wsgate_errors_total", R"(code="bad_json")") >= 1;
    })) << "after 2 connections, 3 publishes with 3 deliveries and 1 bad_json:\n"
        << body;
    EXPECT_GE(value(body, "wsgate_fanout_latency_seconds_count"), 3) << body;
}

TEST(ops, unknown_path_is_404_json_and_other_methods_are_405) {
    gateway_process gw;
    const auto r = http_get(gw.port(), "/no/such/path");
    EXPECT_EQ(r.status, 404) << r.body;
    const auto body = r.json();
    EXPECT_EQ(body.at("error").at("code"), "not_found") << r.body;

    const auto post = http_request(gw.port(), "POST", "/health");
    EXPECT_EQ(post.status, 405) << post.body;
    const auto del = http_request(gw.port(), "DELETE", "/");
    EXPECT_EQ(del.status, 405) << del.body;
}

TEST(ops, sigterm_closes_clients_with_1001_and_exits_0) {
    gateway_process gw({"--shutdown-timeout", "2"});
    auto a = connect_dev_user(gw.port(), "a");
    auto b = connect_dev_user(gw.port(), "b");
    a.send_json(ping_frame(1));
    ASSERT_EQ(a.next_json().at("type"), "pong");

    const auto start = steady_clock::now();
    gw.send_signal(SIGTERM);
    for (auto* c : {&a, &b}) {
        const auto closed = c->expect_close(std::chrono::seconds{5});
        ASSERT_EQ(closed.what, ws_event::kind::closed) << closed.describe();
        EXPECT_EQ(closed.close_code, 1001);
        EXPECT_EQ(closed.close_reason, "going away");
    }
    const auto status = gw.wait_exit(std::chrono::seconds{5});
    ASSERT_TRUE(status.has_value()) << "still running 5 s after SIGTERM";
    EXPECT_TRUE(status->clean()) << status->describe();
    EXPECT_LT(steady_clock::now() - start, milliseconds{2000})
        << "every client completed the close handshake, so the drain need not wait for the "
           "shutdown timeout";
}

TEST(ops, health_is_503_draining_during_shutdown) {
    gateway_process gw({"--shutdown-timeout", "2"});
    // A client that never answers the close keeps the node draining until the timeout.
    raw_ws_client stubborn;
    stubborn.connect(gw.port(), "/ws?user_id=stubborn");
    ASSERT_TRUE(wait_until([&] { return health_connections(gw.port()) == 1; }));

    const auto start = steady_clock::now();
    gw.send_signal(SIGTERM);

    http_response health;
    EXPECT_TRUE(wait_until(
        [&] {
            health = http_get(gw.port(), "/health");
            return health.status == 503;
        },
        milliseconds{1500}))
        << "last /health during the drain: " << health.status << " " << health.body;
    if (health.status == 503) {
        EXPECT_EQ(health.json().at("status"), "draining") << health.body;
    }

    const auto close = stubborn.read_until_close(std::chrono::seconds{3});
    ASSERT_EQ(close.what, raw_event::kind::frame) << close.describe();
    EXPECT_EQ(close.frame.close_code(), 1001) << close.describe();

    // Not answering: the node gives up at the shutdown timeout and exits normally.
    const auto status = gw.wait_exit(std::chrono::seconds{6});
    ASSERT_TRUE(status.has_value()) << "still running 6 s after SIGTERM with a 2 s drain";
    EXPECT_TRUE(status->clean()) << status->describe();
    const auto took = steady_clock::now() - start;
    EXPECT_LT(took, milliseconds{4000}) << "the drain overran --shutdown-timeout 2";
    EXPECT_TRUE(stubborn.wait_for_eof(std::chrono::seconds{1}));
}

// docs/configuration.md: flags win over the config file, the file over the environment.
TEST(ops, settings_come_from_config_file_environment_and_flags_in_that_order) {
    const temp_file config("node-id = \"from-file\"\nmax-channels = 2\nlog-level = \"warn\"\n",
                           ".ini");
    {
        gateway_process gw({{"--config", config.path()}, {}, std::chrono::milliseconds{10'000}});
        EXPECT_EQ(get_json(gw.port(), "/stats").at("node_id").as_string(),
                  std::string_view("from-file"));
        ws_client c;
        c.connect(gw.port(), "/ws?user_id=alice");
        c.send_json({{"type", "subscribe"},
                     {"id", 1},
                     {"payload", {{"channels", json::array{"a", "b", "c"}}}}});
        c.expect_error("too_many_channels");
    }
    {
        // The environment fills what the file leaves out, and yields where the file speaks.
        gateway_process gw({{"--config", config.path()},
                            {{"NODE_ID", "from-env"}, {"MAX_CHANNELS_PER_CONNECTION", "3"}},
                            std::chrono::milliseconds{10'000}});
        EXPECT_EQ(get_json(gw.port(), "/stats").at("node_id").as_string(),
                  std::string_view("from-file"));
        ws_client c;
        c.connect(gw.port(), "/ws?user_id=alice");
        c.send_json({{"type", "subscribe"},
                     {"id", 1},
                     {"payload", {{"channels", json::array{"a", "b", "c"}}}}});
        c.expect_error("too_many_channels");
    }
    {
        gateway_process gw({{},
                            {{"NODE_ID", "from-env"}, {"MAX_CHANNELS_PER_CONNECTION", "3"}},
                            std::chrono::milliseconds{10'000}});
        EXPECT_EQ(get_json(gw.port(), "/stats").at("node_id").as_string(),
                  std::string_view("from-env"));
        ws_client c;
        c.connect(gw.port(), "/ws?user_id=alice");
        c.send_json({{"type", "subscribe"},
                     {"id", 1},
                     {"payload", {{"channels", json::array{"a", "b", "c"}}}}});
        c.expect_json("subscribed");
    }
    {
        gateway_process gw({{"--config", config.path(), "--node-id", "from-flag"},
                            {{"NODE_ID", "from-env"}},
                            std::chrono::milliseconds{10'000}});
        EXPECT_EQ(get_json(gw.port(), "/stats").at("node_id").as_string(),
                  std::string_view("from-flag"));
    }
}

// HEAD gets GET's headers, Content-Length included, and no body: two pipelined requests on one
// connection, HEAD then GET, must come back as exactly two responses, the second right after
// the first's headers.
TEST(ops, head_is_answered_with_headers_only) {
    gateway_process node;
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket socket(io);
    socket.connect({boost::asio::ip::make_address("127.0.0.1"), node.port()});
    const std::string requests =
        "HEAD /health HTTP/1.1\r\nHost: t\r\n\r\n"
        "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";
    boost::asio::write(socket, boost::asio::buffer(requests));
    std::string received;
    boost::system::error_code ec;
    boost::asio::read(socket, boost::asio::dynamic_buffer(received), ec);
    ASSERT_EQ(ec, boost::asio::error::eof) << ec.message();

    const auto first_end = received.find("\r\n\r\n");
    ASSERT_NE(first_end, std::string::npos) << received;
    const std::string head = received.substr(0, first_end);
    EXPECT_EQ(head.rfind("HTTP/1.1 200", 0), 0u) << head;
    const auto length_at = head.find("Content-Length: ");
    ASSERT_NE(length_at, std::string::npos) << head;
    EXPECT_GT(std::stoul(head.substr(length_at + 16)), 0u) << head;
    // No body: the GET's response starts right after the HEAD's headers.
    const std::string rest = received.substr(first_end + 4);
    EXPECT_EQ(rest.rfind("HTTP/1.1 200", 0), 0u) << rest;
    EXPECT_NE(rest.find("\"status\""), std::string::npos) << rest;
}
