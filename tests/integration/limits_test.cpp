// Limits and client errors on the real binary (docs/protocol.md, "Errors", "Close codes";
// docs/configuration.md): message size, idle timeout, the node's WebSocket pings, channel and
// connection limits, slow consumers, and every error frame a malformed request gets.

#include "support/frames.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/prometheus_text.hpp"
#include "support/raw_ws_client.hpp"
#include "support/ws_client.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <iostream>
#include <string>
#include <vector>

using namespace wsgate::test;
namespace json = boost::json;
using std::chrono::milliseconds;
using std::chrono::steady_clock;

namespace {

// {"type":"ping","id":ID,"pad":"xxx..."} padded to exactly `size` bytes.
std::string ping_of_size(std::size_t size, int id) {
    const std::string head = R"({"type":"ping","id":)" + std::to_string(id) + R"(,"pad":")";
    const std::string tail = R"("})";
    return head + std::string(size - head.size() - tail.size(), 'x') + tail;
}

void expect_pong(ws_client& c, std::int64_t id) {
    c.send_json(ping_frame(id));
    const auto pong = c.next_json();
    EXPECT_EQ(pong.at("type"), "pong") << json::serialize(pong);
    EXPECT_EQ(pong.at("id"), id) << json::serialize(pong);
}

// Sends `text` and expects an error frame with `code` next; the connection stays open.
void expect_error_reply(ws_client& c, std::string_view text, std::string_view code,
                        std::string_view message_mentions = "") {
    c.send_text(text);
    const auto reply = c.next_json();
    EXPECT_EQ(reply.at("type"), "error") << text << " -> " << json::serialize(reply);
    EXPECT_EQ(error_code_of(reply), code) << text << " -> " << json::serialize(reply);
    if (!message_mentions.empty()) {
        const auto& p = payload_of(reply);
        ASSERT_TRUE(p.contains("message") && p.at("message").is_string()) << json::serialize(reply);
        EXPECT_NE(std::string(p.at("message").as_string()).find(message_mentions),
                  std::string::npos)
            << "the message should say which field: " << json::serialize(reply);
    }
}

double metric(std::uint16_t port, std::string_view name, std::string_view labels = "") {
    const auto r = http_get(port, "/metrics");
    return metric_value(r.body, name, labels).value_or(-1.0);
}

std::int64_t health_connections(std::uint16_t port) {
    const auto r = http_get(port, "/health");
    const auto body = r.json();
    return as_int(body.as_object().at("connections"));
}

}  // namespace

TEST(limits, message_exactly_at_max_message_size_is_accepted) {
    gateway_process gw({"--max-message-size", "256"});
    auto c = connect_dev_user(gw.port(), "alice");
    const auto text = ping_of_size(256, 1);
    ASSERT_EQ(text.size(), 256u);
    c.send_text(text);
    const auto pong = c.next_json();
    EXPECT_EQ(pong.at("type"), "pong") << json::serialize(pong);
    EXPECT_EQ(pong.at("id"), 1);
}

TEST(limits, message_over_max_message_size_closes_1009) {
    gateway_process gw({"--max-message-size", "256"});
    auto c = connect_dev_user(gw.port(), "alice");
    c.send_text(ping_of_size(257, 1));
    const auto closed = c.expect_close();
    ASSERT_EQ(closed.what, ws_event::kind::closed) << closed.describe();
    EXPECT_EQ(closed.close_code, 1009);
    EXPECT_EQ(closed.close_reason, "message too big");
}

TEST(limits, fragmented_message_over_the_limit_closes_1009) {
    gateway_process gw({"--max-message-size", "256"});
    raw_ws_client raw;
    raw.connect(gw.port(), "/ws?user_id=alice");
    // Each fragment is under the limit; the message is not.
    raw.send_frame({opcode::text, std::string(200, ' '), false});
    raw.send_frame({opcode::continuation, std::string(200, ' '), true});
    const auto e = raw.read_until_close();
    ASSERT_EQ(e.what, raw_event::kind::frame) << e.describe();
    EXPECT_EQ(e.frame.close_code(), 1009) << e.describe();
}

TEST(limits, frame_header_announcing_more_than_the_limit_closes_1009) {
    gateway_process gw({"--max-message-size", "256"});
    raw_ws_client raw;
    raw.connect(gw.port(), "/ws?user_id=alice");
    // Announce 1 MiB and send none of it: the node must not wait for (or buffer) the payload.
    raw.send_raw(encode_frame_header(opcode::text, true, 1u << 20));
    const auto e = raw.read_until_close();
    ASSERT_EQ(e.what, raw_event::kind::frame) << e.describe();
    EXPECT_EQ(e.frame.close_code(), 1009) << e.describe();
}

TEST(limits, idle_connection_is_closed_4003_while_a_pinging_one_stays_open) {
    gateway_process gw({"--idle-timeout", "0.5"});
    auto active = connect_dev_user(gw.port(), "active");
    const auto start = steady_clock::now();
    auto idle = connect_dev_user(gw.port(), "idle");

    ws_event closed;
    std::int64_t id = 0;
    while (steady_clock::now() - start < std::chrono::seconds{5}) {
        ASSERT_NO_FATAL_FAILURE(expect_pong(active, ++id));
        // Waiting on the idle client paces the loop: it returns at once when the close comes.
        closed = idle.read(milliseconds{150});
        if (closed.what != ws_event::kind::timeout) break;
    }
    const auto elapsed = steady_clock::now() - start;
    ASSERT_EQ(closed.what, ws_event::kind::closed) << closed.describe();
    EXPECT_EQ(closed.close_code, 4003);
    EXPECT_EQ(closed.close_reason, "idle timeout");
    EXPECT_GE(elapsed, milliseconds{450}) << "closed before the idle timeout";

    // The active client has now been connected longer than the idle timeout.
    ASSERT_GT(elapsed, milliseconds{500});
    expect_pong(active, ++id);
}

TEST(limits, node_sends_websocket_pings_at_the_ping_interval) {
    gateway_process gw({"--ping-interval", "0.3"});
    raw_ws_client raw;
    raw.connect(gw.port(), "/ws?user_id=alice");
    for (int round = 0; round < 2; ++round) {
        raw_event e;
        do {
            e = raw.read_event(milliseconds{3000});
        } while (e.what == raw_event::kind::frame && e.frame.opcode != opcode::ping &&
                 e.frame.opcode != opcode::close);
        ASSERT_EQ(e.what, raw_event::kind::frame) << "no ping within 3 s: " << e.describe();
        ASSERT_EQ(e.frame.opcode, opcode::ping) << e.describe();
        EXPECT_TRUE(e.frame.fin);
        EXPECT_FALSE(e.frame.masked) << "server frames are never masked";
        EXPECT_LE(e.frame.payload.size(), 125u);
        raw.send_frame({opcode::pong, e.frame.payload});
    }
    // Answering pings keeps the connection usable.
    raw.send_text(R"({"type":"ping","id":7})");
    const auto pong = raw.read_text_containing("pong");
    ASSERT_TRUE(pong.has_value());
    EXPECT_EQ(json::parse(pong->payload), json::parse(R"({"type":"pong","id":7})"));
}

TEST(limits, max_channels_counts_distinct_channels_of_one_connection) {
    gateway_process gw({"--max-channels", "2"});
    auto c = connect_dev_user(gw.port(), "alice");
    c.send_json(subscribe_frame(1, {"a", "b"}));
    EXPECT_EQ(c.next_json().at("type"), "subscribed");

    c.send_json(subscribe_frame(2, {"c"}));
    auto reply = c.next_json();
    EXPECT_EQ(error_code_of(reply), "too_many_channels") << json::serialize(reply);
    EXPECT_EQ(reply.at("id"), 2);

    // Already subscribed: no new channel, so not over the limit.
    c.send_json(subscribe_frame(3, {"a"}));
    reply = c.next_json();
    EXPECT_EQ(reply.at("type"), "subscribed") << json::serialize(reply);

    // Unsubscribing frees a slot.
    c.send_json(unsubscribe_frame(4, {"b"}));
    EXPECT_EQ(c.next_json().at("type"), "unsubscribed");
    c.send_json(subscribe_frame(5, {"c"}));
    reply = c.next_json();
    EXPECT_EQ(reply.at("type"), "subscribed") << json::serialize(reply);

    // The limit is per connection: another connection has its own two.
    auto other = connect_dev_user(gw.port(), "bob");
    other.send_json(subscribe_frame(1, {"x", "y"}));
    EXPECT_EQ(other.next_json().at("type"), "subscribed");
}

TEST(limits, upgrades_beyond_max_connections_get_http_503_until_one_closes) {
    gateway_process gw({"--max-connections", "2"});
    auto a = connect_dev_user(gw.port(), "a");
    auto b = connect_dev_user(gw.port(), "b");

    const auto refused = http_upgrade(gw.port(), "/ws?user_id=c");
    EXPECT_EQ(refused.status, 503) << refused.body;
    const auto body = refused.json();
    ASSERT_TRUE(body.is_object() && body.as_object().contains("error")) << refused.body;
    EXPECT_EQ(body.at("error").at("code"), "too_many_connections") << refused.body;
    EXPECT_TRUE(body.at("error").at("message").is_string()) << refused.body;

    // Plain HTTP is still answered at the limit.
    EXPECT_EQ(http_get(gw.port(), "/health").status, 200);

    const auto closed = a.close();
    ASSERT_EQ(closed.what, ws_event::kind::closed) << closed.describe();
    ASSERT_TRUE(wait_until([&] { return health_connections(gw.port()) == 1; }))
        << "/health still counts " << health_connections(gw.port()) << " connections";

    auto c = connect_dev_user(gw.port(), "c");
    expect_pong(c, 1);
    expect_pong(b, 1);
}

TEST(limits, slow_consumer_is_closed_4002_and_fast_subscriber_gets_every_message) {
    gateway_process gw({"--max-outbound-bytes", "65536"});
    constexpr std::size_t message_bytes = 4096;
    constexpr int batch = 8;  // 32 KiB: never more than half the limit ahead of a fast reader
    constexpr int max_messages = 2048;

    raw_ws_client slow;
    upgrade_options small_window;
    small_window.receive_buffer = 4096;
    slow.connect(gw.port(), "/ws?user_id=slow", small_window);
    slow.send_text(json::serialize(subscribe_frame(1, {"firehose"})));
    ASSERT_TRUE(slow.read_text_containing("subscribed").has_value());
    // From here on `slow` reads nothing until the node gives up on it.

    auto fast = connect_dev_user(gw.port(), "fast");
    fast.send_json(subscribe_frame(1, {"firehose"}));
    ASSERT_EQ(fast.next_json().at("type"), "subscribed");
    auto publisher = connect_dev_user(gw.port(), "publisher");

    const std::string filler(message_bytes, 'p');
    int published = 0;
    std::int64_t fast_next_seq = 1;
    auto publish_batch = [&] {
        for (int i = 0; i < batch; ++i) {
            json::object data;
            data["n"] = published;
            data["fill"] = filler;
            publisher.send_json(publish_frame(published, "firehose", data));
            ++published;
        }
        for (int i = 0; i < batch; ++i) {
            const auto ack = publisher.next_json();
            ASSERT_EQ(ack.at("type"), "ack") << json::serialize(ack).substr(0, 300);
        }
        for (int i = 0; i < batch; ++i) {
            const auto msg = fast.next_json();
            ASSERT_EQ(msg.at("type"), "message") << json::serialize(msg).substr(0, 300);
            ASSERT_EQ(as_int(payload_of(msg).at("seq")), fast_next_seq++)
                << "the fast subscriber missed a message";
        }
    };

    bool slow_dropped = false;
    const auto started = steady_clock::now();
    while (published < max_messages) {
        ASSERT_NO_FATAL_FAILURE(publish_batch());
        if (health_connections(gw.port()) < 3 ||
            metric(gw.port(), "wsgate_slow_consumer_disconnects_total") > 0) {
            slow_dropped = true;
            break;
        }
    }
    ASSERT_TRUE(slow_dropped) << "the node still holds the slow consumer after " << published
                              << " messages of " << message_bytes << " bytes";
    std::cout << "the slow consumer was dropped after " << published << " messages in "
              << std::chrono::duration_cast<milliseconds>(steady_clock::now() - started).count()
              << " ms\n";
    // The fast subscriber keeps getting everything after the slow one is gone.
    ASSERT_NO_FATAL_FAILURE(publish_batch());
    EXPECT_EQ(fast_next_seq, published + 1);

    EXPECT_GT(metric(gw.port(), "wsgate_slow_consumer_disconnects_total"), 0)
        << "/metrics:\n"
        << http_get(gw.port(), "/metrics").body;

    // The slow client reads again: what it gets ends with close 4002 (or, when the node could
    // not fit the close frame into a full socket, with the connection simply ending).
    std::vector<raw_frame> backlog;
    const auto reading = steady_clock::now();
    const auto end = slow.read_until_close(std::chrono::seconds{10}, &backlog);
    std::cout << "the slow consumer read " << backlog.size() << " frames and " << end.describe()
              << " in "
              << std::chrono::duration_cast<milliseconds>(steady_clock::now() - reading).count()
              << " ms\n";
    ASSERT_NE(end.what, raw_event::kind::timeout)
        << "the slow consumer's connection is still open after " << backlog.size() << " frames";
    if (end.what == raw_event::kind::frame) {
        EXPECT_EQ(end.frame.close_code(), 4002) << end.describe();
        EXPECT_EQ(end.frame.close_reason(), "slow consumer") << end.describe();
    } else {
        std::cout << "note: the slow consumer saw EOF without a close frame after "
                  << backlog.size() << " frames\n";
    }
}

TEST(limits, malformed_json_is_bad_json_and_the_connection_stays_open) {
    gateway_process gw;
    auto c = connect_dev_user(gw.port(), "alice");
    expect_error_reply(c, R"({"type":"ping",)", "bad_json");
    expect_error_reply(c, R"([1,2)", "bad_json");
    expect_error_reply(c, R"({"type":"ping"}})", "bad_json");
    expect_error_reply(c, R"({type:ping})", "bad_json");
    expect_pong(c, 1);
}

TEST(limits, unknown_type_is_unknown_type_with_the_id_echoed) {
    gateway_process gw;
    auto c = connect_dev_user(gw.port(), "alice");
    c.send_text(R"({"type":"frobnicate","id":"req-3","payload":{}})");
    const auto reply = c.next_json();
    EXPECT_EQ(error_code_of(reply), "unknown_type") << json::serialize(reply);
    EXPECT_EQ(reply.at("id"), "req-3") << json::serialize(reply);
    expect_pong(c, 1);
}

TEST(limits, missing_fields_are_missing_field_naming_the_field) {
    gateway_process gw;
    auto c = connect_dev_user(gw.port(), "alice");
    expect_error_reply(c, R"({"type":"publish","id":1,"payload":{"data":1}})", "missing_field",
                       "channel");
    expect_error_reply(c, R"({"type":"publish","id":2,"payload":{"channel":"c"}})", "missing_field",
                       "data");
    expect_error_reply(c, R"({"type":"subscribe","id":3,"payload":{}})", "missing_field");
    expect_error_reply(c, R"({"type":"unsubscribe","id":4,"payload":{}})", "missing_field");
    expect_error_reply(c, R"({"type":"direct","id":5,"payload":{"data":1}})", "missing_field",
                       "to");
    expect_error_reply(c, R"({"type":"direct","id":6,"payload":{"to":"bob"}})", "missing_field",
                       "data");
    expect_pong(c, 7);
}

TEST(limits, wrongly_typed_or_empty_fields_are_invalid_field) {
    gateway_process gw;
    auto c = connect_dev_user(gw.port(), "alice");
    expect_error_reply(c, R"({"type":"publish","id":1,"payload":{"channel":5,"data":1}})",
                       "invalid_field", "channel");
    expect_error_reply(c, R"({"type":"subscribe","id":2,"payload":{"channels":"room"}})",
                       "invalid_field", "channels");
    expect_error_reply(c, R"({"type":"subscribe","id":3,"payload":{"channels":[]}})",
                       "invalid_field", "channels");
    expect_error_reply(c, R"({"type":"direct","id":4,"payload":{"to":"","data":1}})",
                       "invalid_field", "to");
    expect_error_reply(c, R"({"type":"direct","id":5,"payload":{"to":7,"data":1}})",
                       "invalid_field", "to");
    expect_pong(c, 6);
}

TEST(limits, valid_json_that_is_not_a_frame_is_bad_frame) {
    gateway_process gw;
    auto c = connect_dev_user(gw.port(), "alice");
    expect_error_reply(c, R"([1,2,3])", "bad_frame");
    expect_error_reply(c, R"({"type":5})", "bad_frame");
    expect_error_reply(c, R"({"type":null,"id":1})", "bad_frame");
    expect_error_reply(c, R"({"type":"ping","payload":[]})", "bad_frame");
    expect_error_reply(c, R"({"type":"publish","id":2,"payload":"x"})", "bad_frame");
    expect_pong(c, 3);
}

TEST(limits, binary_frame_is_binary_not_supported_and_the_connection_stays_open) {
    gateway_process gw;
    auto c = connect_dev_user(gw.port(), "alice");
    c.send_binary(std::string("\x00\x01\x02\xff", 4));
    const auto reply = c.next_json();
    EXPECT_EQ(reply.at("type"), "error") << json::serialize(reply);
    EXPECT_EQ(error_code_of(reply), "binary_not_supported") << json::serialize(reply);
    expect_pong(c, 1);
}

TEST(limits, unknown_fields_are_ignored_and_any_id_is_echoed) {
    gateway_process gw;
    auto c = connect_dev_user(gw.port(), "alice");
    c.send_text(R"({"type":"ping","id":"abc-1","future_field":{"x":[1,2]}})");
    EXPECT_EQ(c.next_json(), json::parse(R"({"type":"pong","id":"abc-1"})").as_object());
    c.send_text(R"({"type":"ping","id":12.5})");
    EXPECT_EQ(c.next_json(), json::parse(R"({"type":"pong","id":12.5})").as_object());
    c.send_text(R"({"type":"ping"})");
    EXPECT_EQ(c.next_json(), json::parse(R"({"type":"pong"})").as_object())
        << "a frame without id is answered without id";
}
