// RFC 6455 conformance of the real binary, driven by hand-built frames (docs/protocol.md,
// "Close codes"): every violation fails the connection with the listed close code, valid
// fragmentation and interleaved control frames are accepted, and the /echo endpoint.

#include "support/frames.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/raw_ws_client.hpp"
#include "support/ws_client.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include <string>
#include <vector>

using namespace wsgate::test;
namespace json = boost::json;

namespace {

raw_ws_client connect_raw(const gateway_process& gw) {
    raw_ws_client raw;
    raw.connect(gw.port(), "/ws?user_id=raw");
    return raw;
}

// After a violation the node sends one close frame with `code`. The client answers it like a
// well-behaved peer, and the node ends the TCP connection. The reason text and what happens
// when the client does not answer have tests of their own below.
raw_frame expect_failed_with(raw_ws_client& raw, int code) {
    std::vector<raw_frame> before;
    const auto e = raw.read_until_close(std::chrono::seconds{5}, &before);
    EXPECT_EQ(e.what, raw_event::kind::frame)
        << "expected a close frame with " << code << ", got " << e.describe();
    if (e.what != raw_event::kind::frame) return {};
    EXPECT_EQ(e.frame.close_code(), code) << e.describe();
    EXPECT_FALSE(e.frame.masked) << "server frames are never masked";
    EXPECT_TRUE(before.empty()) << "frames before the close, first: "
                                << raw_event{raw_event::kind::frame, before.front(), {}}.describe();
    try {
        raw.send_frame({opcode::close, close_payload(static_cast<std::uint16_t>(code))});
    } catch (const std::exception&) {
        // The node may already have closed the TCP connection: fine.
    }
    EXPECT_TRUE(raw.wait_for_eof(std::chrono::seconds{2}))
        << "the TCP connection stayed open after the close handshake";
    return e.frame;
}

void expect_protocol_error(raw_ws_client& raw) {
    expect_failed_with(raw, 1002);
}

const std::string ping_json = R"({"type":"ping","id":1})";

}  // namespace

TEST(rfc6455, unmasked_client_frame_closes_1002) {
    gateway_process gw;
    auto raw = connect_raw(gw);
    frame_spec f{opcode::text, ping_json};
    f.masked = false;
    raw.send_frame(f);
    expect_protocol_error(raw);
}

TEST(rfc6455, reserved_bits_close_1002) {
    gateway_process gw;
    for (const std::uint8_t rsv : {4, 2, 1}) {
        SCOPED_TRACE("rsv bits " + std::to_string(rsv));
        auto raw = connect_raw(gw);
        frame_spec f{opcode::text, ping_json};
        f.rsv = rsv;
        raw.send_frame(f);
        expect_protocol_error(raw);
    }
}

TEST(rfc6455, fragmented_control_frame_closes_1002) {
    gateway_process gw;
    auto raw = connect_raw(gw);
    raw.send_frame({opcode::ping, "part", false});
    expect_protocol_error(raw);
}

TEST(rfc6455, control_frame_payload_over_125_bytes_closes_1002) {
    gateway_process gw;
    auto raw = connect_raw(gw);
    raw.send_frame({opcode::ping, std::string(126, 'p')});
    expect_protocol_error(raw);
}

TEST(rfc6455, reserved_opcodes_close_1002) {
    gateway_process gw;
    for (const std::uint8_t op : {0x3, 0x7, 0xB, 0xF}) {
        SCOPED_TRACE("opcode " + std::to_string(op));
        auto raw = connect_raw(gw);
        raw.send_frame({op, "x"});
        expect_protocol_error(raw);
    }
}

TEST(rfc6455, continuation_without_a_start_closes_1002) {
    gateway_process gw;
    auto raw = connect_raw(gw);
    raw.send_frame({opcode::continuation, ping_json, true});
    expect_protocol_error(raw);
}

TEST(rfc6455, new_message_inside_a_fragmented_one_closes_1002) {
    gateway_process gw;
    auto raw = connect_raw(gw);
    raw.send_frame({opcode::text, R"({"type":)", false});
    raw.send_frame({opcode::text, R"("ping"})", true});
    expect_protocol_error(raw);
}

TEST(rfc6455, invalid_utf8_in_a_text_frame_closes_1007) {
    gateway_process gw;
    for (const std::string& bad : {std::string("\xff\xfe"), std::string("{\"type\":\"\xc3\x28\"}"),
                                   std::string("\xed\xa0\x80"),  // UTF-16 surrogate
                                   std::string("\xc0\xaf")}) {   // overlong '/'
        auto raw = connect_raw(gw);
        raw.send_text(bad);
        expect_failed_with(raw, 1007);
    }
}

TEST(rfc6455, invalid_utf8_in_a_fragmented_text_message_closes_1007) {
    gateway_process gw;
    auto raw = connect_raw(gw);
    raw.send_frame({opcode::text, R"({"type":"ping","x":")", false});
    raw.send_frame({opcode::continuation, "ok", false});
    raw.send_frame({opcode::continuation, "\xf8\x88\x80\x80\x80\"}", true});
    expect_failed_with(raw, 1007);
}

TEST(rfc6455, utf8_code_point_split_across_fragments_is_accepted) {
    gateway_process gw;
    auto raw = connect_raw(gw);
    // "é" is C3 A9: the two bytes travel in different frames.
    raw.send_frame({opcode::text, "{\"type\":\"ping\",\"id\":\"caf\xc3", false});
    raw.send_frame({opcode::continuation, "\xa9\"}", true});
    const auto pong = raw.read_text_containing("pong");
    ASSERT_TRUE(pong.has_value());
    EXPECT_EQ(json::parse(pong->payload),
              json::parse("{\"type\":\"pong\",\"id\":\"caf\xc3\xa9\"}"));
}

TEST(rfc6455, invalid_close_codes_close_1002) {
    gateway_process gw;
    for (const std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 1016, 2999}) {
        SCOPED_TRACE("close code " + std::to_string(code));
        auto raw = connect_raw(gw);
        raw.send_frame({opcode::close, close_payload(code)});
        expect_protocol_error(raw);
    }
}

TEST(rfc6455, one_byte_close_payload_closes_1002) {
    gateway_process gw;
    auto raw = connect_raw(gw);
    raw.send_frame({opcode::close, std::string(1, '\x03')});
    expect_protocol_error(raw);
}

TEST(rfc6455, invalid_utf8_close_reason_closes_1007) {
    gateway_process gw;
    auto raw = connect_raw(gw);
    raw.send_frame({opcode::close, close_payload(1000, "\xff\xfe")});
    expect_failed_with(raw, 1007);
}

TEST(rfc6455, fragmented_message_with_an_interleaved_ping_is_accepted) {
    gateway_process gw;
    auto raw = connect_raw(gw);
    const std::string publish =
        R"({"type":"publish","id":42,"payload":{"channel":"frag","data":"in three parts"}})";
    const auto third = publish.size() / 3;
    raw.send_frame({opcode::text, publish.substr(0, third), false});
    raw.send_frame({opcode::continuation, publish.substr(third, third), false});
    raw.send_frame({opcode::ping, "between fragments"});
    raw.send_frame({opcode::continuation, publish.substr(2 * third), true});

    std::optional<raw_frame> pong;
    std::optional<raw_frame> ack;
    while (!pong || !ack) {
        const auto e = raw.read_event(std::chrono::seconds{5});
        ASSERT_EQ(e.what, raw_event::kind::frame) << e.describe();
        ASSERT_NE(e.frame.opcode, opcode::close) << e.describe();
        if (e.frame.opcode == opcode::pong) {
            EXPECT_FALSE(ack.has_value()) << "the pong must come before the reply to the "
                                             "message the ping interrupted";
            pong = e.frame;
        } else if (e.frame.opcode == opcode::text) {
            ack = e.frame;
        }
    }
    EXPECT_EQ(pong->payload, "between fragments");
    EXPECT_TRUE(pong->fin);
    const auto reply = json::parse(ack->payload).as_object();
    EXPECT_EQ(reply.at("type"), "ack") << ack->payload;
    EXPECT_EQ(reply.at("id"), 42);
    EXPECT_EQ(payload_of(reply).at("channel"), "frag");
}

TEST(rfc6455, client_close_1000_is_echoed_and_the_connection_ends) {
    gateway_process gw;
    auto raw = connect_raw(gw);
    raw.send_frame({opcode::close, close_payload(1000, "bye")});
    const auto e = raw.read_until_close();
    ASSERT_EQ(e.what, raw_event::kind::frame) << e.describe();
    EXPECT_EQ(e.frame.close_code(), 1000) << e.describe();
    EXPECT_FALSE(e.frame.masked);
    EXPECT_TRUE(raw.wait_for_eof(std::chrono::seconds{5}));
}

TEST(rfc6455, empty_client_close_is_answered_with_a_close) {
    gateway_process gw;
    auto raw = connect_raw(gw);
    raw.send_frame({opcode::close, ""});
    const auto e = raw.read_until_close();
    ASSERT_EQ(e.what, raw_event::kind::frame) << e.describe();
    EXPECT_EQ(e.frame.opcode, opcode::close);
    const auto code = e.frame.close_code();
    EXPECT_TRUE(!code || *code == 1000) << e.describe();
    EXPECT_TRUE(raw.wait_for_eof(std::chrono::seconds{5}));
}

TEST(rfc6455, ping_is_answered_with_a_pong_of_the_same_payload) {
    gateway_process gw;
    auto raw = connect_raw(gw);
    raw.send_frame({opcode::ping, std::string(125, 'z')});
    const auto e = raw.read_event();
    ASSERT_EQ(e.what, raw_event::kind::frame) << e.describe();
    EXPECT_EQ(e.frame.opcode, opcode::pong) << e.describe();
    EXPECT_EQ(e.frame.payload, std::string(125, 'z'));
}

TEST(rfc6455, echo_endpoint_echoes_text_binary_and_large_messages) {
    gateway_process gw({"--echo"});
    ws_client c;
    c.connect(gw.port(), "/echo");

    c.send_text("hello, echo");
    auto e = c.read();
    EXPECT_EQ(e.what, ws_event::kind::text) << e.describe();
    EXPECT_EQ(e.data, "hello, echo");

    const std::string bytes("\x00\x01\xfe\xff binary \x80", 13);
    c.send_binary(bytes);
    e = c.read();
    EXPECT_EQ(e.what, ws_event::kind::binary) << e.describe();
    EXPECT_EQ(e.data, bytes);

    std::string big(1u << 20, '\0');
    for (std::size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>('a' + i % 26);
    c.send_text(big, std::chrono::seconds{10});
    e = c.read(std::chrono::seconds{10});
    EXPECT_EQ(e.what, ws_event::kind::text) << e.describe();
    EXPECT_EQ(e.data.size(), big.size());
    EXPECT_TRUE(e.data == big) << "the 1 MiB message came back altered";

    std::string big_binary(1u << 20, '\0');
    for (std::size_t i = 0; i < big_binary.size(); ++i)
        big_binary[i] = static_cast<char>((i * 7) & 0xFF);
    c.send_binary(big_binary, std::chrono::seconds{10});
    e = c.read(std::chrono::seconds{10});
    EXPECT_EQ(e.what, ws_event::kind::binary) << e.describe();
    EXPECT_TRUE(e.data == big_binary) << "the 1 MiB binary message came back altered";

    const auto closed = c.close(1000);
    EXPECT_EQ(closed.what, ws_event::kind::closed) << closed.describe();
    EXPECT_EQ(closed.close_code, 1000);
}

TEST(rfc6455, echo_endpoint_checks_rfc6455_too) {
    gateway_process gw({"--echo"});
    raw_ws_client raw;
    raw.connect(gw.port(), "/echo");
    raw.send_frame({opcode::text, "frag", false});
    raw.send_frame({opcode::continuation, "mented", true});
    const auto e = raw.read_event();
    ASSERT_EQ(e.what, raw_event::kind::frame) << e.describe();
    EXPECT_EQ(e.frame.opcode, opcode::text);
    EXPECT_EQ(e.frame.payload, "fragmented");
    raw.send_text("\xff");
    expect_failed_with(raw, 1007);
}

TEST(rfc6455, echo_endpoint_is_absent_without_the_flag) {
    gateway_process gw;
    const auto upgrade = http_upgrade(gw.port(), "/echo");
    EXPECT_EQ(upgrade.status, 404) << upgrade.body;
    const auto get = http_get(gw.port(), "/echo");
    EXPECT_EQ(get.status, 404) << get.body;
}

// docs/protocol.md, "Close codes": the reason of a 1002 / 1007 names what was violated.
TEST(rfc6455, failure_close_frames_carry_the_documented_reason_text) {
    gateway_process gw;
    {
        auto raw = connect_raw(gw);
        frame_spec f{opcode::text, ping_json};
        f.masked = false;
        raw.send_frame(f);
        const auto close = expect_failed_with(raw, 1002);
        EXPECT_EQ(close.close_reason(), "client frame not masked");
    }
    {
        auto raw = connect_raw(gw);
        raw.send_text("\xff");
        const auto close = expect_failed_with(raw, 1007);
        EXPECT_EQ(close.close_reason(), "text is not UTF-8");
    }
}

// RFC 6455 7.1.7: after _Fail the WebSocket Connection_ the endpoint closes the TCP connection
// and "MUST NOT continue to attempt to process data (including a responding Close frame)".
TEST(rfc6455, failed_connection_is_dropped_without_waiting_for_a_close_reply) {
    gateway_process gw;
    auto raw = connect_raw(gw);
    raw.send_frame({opcode::ping, "part", false});  // fragmented control frame
    const auto e = raw.read_until_close();
    ASSERT_EQ(e.what, raw_event::kind::frame) << e.describe();
    EXPECT_EQ(e.frame.close_code(), 1002) << e.describe();
    const auto start = std::chrono::steady_clock::now();
    const bool eof = raw.wait_for_eof(std::chrono::milliseconds{1000});
    const auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - start);
    EXPECT_TRUE(eof) << "the TCP connection is still open " << waited.count()
                     << " ms after the close frame: the node waits for a close reply from a "
                        "peer it has failed";
}
