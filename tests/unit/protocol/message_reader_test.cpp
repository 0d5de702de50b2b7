// message_reader: RFC 6455 server-side message assembly, its violations and close codes.

#include "protocol/rfc6455/message_reader.hpp"
#include "protocol/rfc6455/frame.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace rfc = wsgate::protocol::rfc6455;
using rfc::opcode;

namespace {

// What the handler saw, one entry per callback, in order.
struct event {
    enum kind_t { message, ping, pong, close } kind;
    opcode op = opcode::continuation;  // message only
    std::string payload;               // close: the reason
    std::uint16_t code = 0;            // close only

    bool operator==(const event&) const = default;
};

std::ostream& operator<<(std::ostream& os, const event& e) {
    static constexpr const char* names[] = {"message", "ping", "pong", "close"};
    return os << names[e.kind] << "(op " << static_cast<int>(e.op) << ", code " << e.code << ", \""
              << e.payload << "\")";
}

event msg(opcode op, std::string payload) {
    return {event::message, op, std::move(payload), 0};
}
event ping(std::string payload) {
    return {event::ping, opcode::continuation, std::move(payload), 0};
}
event pong(std::string payload) {
    return {event::pong, opcode::continuation, std::move(payload), 0};
}
event close(std::uint16_t code, std::string reason) {
    return {event::close, opcode::continuation, std::move(reason), code};
}

class recording_handler final : public rfc::message_handler {
public:
    std::vector<event> events;
    // The callback with this index (0-based) returns false; -1: never.
    int stop_at = -1;

    bool on_message(opcode op, std::string_view payload) override {
        return record(msg(op, std::string(payload)));
    }
    bool on_ping(std::string_view payload) override { return record(ping(std::string(payload))); }
    bool on_pong(std::string_view payload) override { return record(pong(std::string(payload))); }
    bool on_close(std::uint16_t code, std::string_view reason) override {
        return record(close(code, std::string(reason)));
    }

private:
    bool record(event e) {
        events.push_back(std::move(e));
        return static_cast<int>(events.size()) - 1 != stop_at;
    }
};

constexpr std::uint8_t default_key[4] = {0x12, 0x34, 0x56, 0x78};

struct frame_options {
    bool fin = true;
    bool masked = true;
    std::uint8_t rsv = 0;  // bits 2..0 -> RSV1..RSV3
};

// A client frame as a browser would send it: masked with a fixed key.
std::string client_frame(std::uint8_t op, std::string_view payload, frame_options o = {}) {
    std::string f;
    f.push_back(static_cast<char>((o.fin ? 0x80 : 0) | (o.rsv << 4) | op));
    const std::uint8_t mask_bit = o.masked ? 0x80 : 0;
    const std::size_t n = payload.size();
    if (n < 126) {
        f.push_back(static_cast<char>(mask_bit | n));
    } else if (n <= 0xFFFF) {
        f.push_back(static_cast<char>(mask_bit | 126));
        f.push_back(static_cast<char>(n >> 8));
        f.push_back(static_cast<char>(n & 0xFF));
    } else {
        f.push_back(static_cast<char>(mask_bit | 127));
        for (int i = 0; i < 8; ++i)
            f.push_back(static_cast<char>(std::uint64_t{n} >> (56 - 8 * i)));
    }
    if (o.masked) {
        f.append(reinterpret_cast<const char*>(default_key), 4);
        for (std::size_t i = 0; i < n; ++i) {
            f.push_back(static_cast<char>(payload[i] ^ static_cast<char>(default_key[i % 4])));
        }
    } else {
        f.append(payload);
    }
    return f;
}

std::string client_frame(opcode op, std::string_view payload, frame_options o = {}) {
    return client_frame(static_cast<std::uint8_t>(op), payload, o);
}

std::string close_payload(std::uint16_t code, std::string_view reason = {}) {
    std::string p;
    p.push_back(static_cast<char>(code >> 8));
    p.push_back(static_cast<char>(code & 0xFF));
    p.append(reason);
    return p;
}

rfc::message_reader::result feed(rfc::message_reader& reader, std::string& wire,
                                 recording_handler& handler) {
    return reader.consume(reinterpret_cast<std::uint8_t*>(wire.data()), wire.size(), handler);
}

// Feeds `wire` to a fresh reader and expects it to fail with `code` and deliver nothing.
void expect_failure(const std::string& wire_in, std::uint16_t code, std::size_t max = 1024) {
    rfc::message_reader reader(max);
    recording_handler handler;
    std::string wire = wire_in;
    const auto r = feed(reader, wire, handler);
    EXPECT_EQ(r.failure.close_code, code);
    EXPECT_TRUE(static_cast<bool>(r.failure));
    EXPECT_FALSE(r.failure.reason.empty());
    EXPECT_FALSE(r.stopped);
    EXPECT_TRUE(handler.events.empty()) << handler.events.front();
}

}  // namespace

// ---------------------------------------------------------------- happy paths

TEST(message_reader, single_text_message) {
    rfc::message_reader reader(1024);
    recording_handler handler;
    std::string wire = client_frame(opcode::text, "Hello");
    const auto r = feed(reader, wire, handler);
    EXPECT_FALSE(r.failure);
    EXPECT_EQ(r.failure.close_code, 0);
    EXPECT_FALSE(r.stopped);
    EXPECT_EQ(r.consumed, wire.size());
    EXPECT_EQ(r.next_frame_size, 0u);
    EXPECT_EQ(handler.events, (std::vector<event>{msg(opcode::text, "Hello")}));
}

TEST(message_reader, single_binary_message_with_any_bytes) {
    rfc::message_reader reader(1024);
    recording_handler handler;
    const std::string payload("\x00\xFF\x80\xC0 binary", 10);
    std::string wire = client_frame(opcode::binary, payload);
    const auto r = feed(reader, wire, handler);
    EXPECT_FALSE(r.failure);
    EXPECT_EQ(r.consumed, wire.size());
    EXPECT_EQ(handler.events, (std::vector<event>{msg(opcode::binary, payload)}));
}

TEST(message_reader, empty_messages_and_16_bit_length) {
    rfc::message_reader reader(1024);
    recording_handler handler;
    const std::string big(300, 'b');
    std::string wire = client_frame(opcode::text, "") + client_frame(opcode::binary, big) +
                       client_frame(opcode::binary, "");
    const auto r = feed(reader, wire, handler);
    EXPECT_FALSE(r.failure);
    EXPECT_EQ(r.consumed, wire.size());
    EXPECT_EQ(handler.events, (std::vector<event>{msg(opcode::text, ""), msg(opcode::binary, big),
                                                  msg(opcode::binary, "")}));
}

TEST(message_reader, several_frames_in_one_buffer) {
    rfc::message_reader reader(1024);
    recording_handler handler;
    std::string wire = client_frame(opcode::text, "one") + client_frame(opcode::ping, "p") +
                       client_frame(opcode::pong, "q") + client_frame(opcode::binary, "two") +
                       client_frame(opcode::close, close_payload(1000, "bye"));
    const auto r = feed(reader, wire, handler);
    EXPECT_FALSE(r.failure);
    EXPECT_EQ(r.consumed, wire.size());
    EXPECT_EQ(handler.events, (std::vector<event>{msg(opcode::text, "one"), ping("p"), pong("q"),
                                                  msg(opcode::binary, "two"), close(1000, "bye")}));
}

TEST(message_reader, message_split_at_every_byte_offset) {
    const std::string first = client_frame(opcode::text, "caf\xC3\xA9 au lait");
    const std::string second = client_frame(opcode::binary, std::string(200, 'z'));
    const std::string all = first + second;
    for (std::size_t split = 0; split <= all.size(); ++split) {
        rfc::message_reader reader(1024);
        recording_handler handler;
        // First read: the bytes up to `split`. The caller keeps what was not consumed and
        // appends the next read to it, as a session does.
        std::string buffer = all.substr(0, split);
        auto r = feed(reader, buffer, handler);
        ASSERT_FALSE(r.failure) << split;
        ASSERT_LE(r.consumed, buffer.size());
        const std::size_t expected_first = split >= first.size() ? first.size() : 0;
        const std::size_t expected_consumed = split == all.size() ? all.size() : expected_first;
        EXPECT_EQ(r.consumed, expected_consumed) << split;
        buffer.erase(0, r.consumed);
        buffer.append(all.substr(split));
        r = feed(reader, buffer, handler);
        ASSERT_FALSE(r.failure) << split;
        EXPECT_EQ(r.consumed, buffer.size()) << split;
        EXPECT_EQ(handler.events, (std::vector<event>{msg(opcode::text, "caf\xC3\xA9 au lait"),
                                                      msg(opcode::binary, std::string(200, 'z'))}))
            << split;
    }
}

TEST(message_reader, fragmented_text_with_interleaved_ping) {
    rfc::message_reader reader(1024);
    recording_handler handler;
    // "κόσμε" split inside a multi-byte character: only the whole message must be UTF-8.
    const std::string text = "\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5";
    std::string wire = client_frame(opcode::text, text.substr(0, 3), {.fin = false}) +
                       client_frame(opcode::continuation, text.substr(3, 4), {.fin = false}) +
                       client_frame(opcode::ping, "are you there") +
                       client_frame(opcode::continuation, text.substr(7));
    const auto r = feed(reader, wire, handler);
    EXPECT_FALSE(r.failure);
    EXPECT_EQ(r.consumed, wire.size());
    EXPECT_EQ(handler.events, (std::vector<event>{ping("are you there"), msg(opcode::text, text)}));
    EXPECT_LE(reader.buffered(), std::string().capacity());  // released once done
}

TEST(message_reader, fragmented_message_across_consume_calls) {
    rfc::message_reader reader(1024);
    recording_handler handler;
    std::string a = client_frame(opcode::binary, "abc", {.fin = false});
    auto r = feed(reader, a, handler);
    EXPECT_EQ(r.consumed, a.size());
    EXPECT_TRUE(handler.events.empty());
    EXPECT_GE(reader.buffered(), 3u);
    std::string b = client_frame(opcode::continuation, "", {.fin = false}) +
                    client_frame(opcode::pong, "") + client_frame(opcode::continuation, "def");
    r = feed(reader, b, handler);
    EXPECT_FALSE(r.failure);
    EXPECT_EQ(r.consumed, b.size());
    EXPECT_EQ(handler.events, (std::vector<event>{pong(""), msg(opcode::binary, "abcdef")}));
    // The reader is ready for the next message.
    std::string c = client_frame(opcode::text, "next");
    r = feed(reader, c, handler);
    EXPECT_FALSE(r.failure);
    EXPECT_EQ(handler.events.back(), msg(opcode::text, "next"));
}

TEST(message_reader, close_frames) {
    {
        rfc::message_reader reader(1024);
        recording_handler handler;
        std::string wire = client_frame(opcode::close, "");
        const auto r = feed(reader, wire, handler);
        EXPECT_FALSE(r.failure);
        EXPECT_EQ(handler.events, (std::vector<event>{close(rfc::close_code::no_status, "")}));
    }
    for (std::uint16_t code : {1000, 1001, 1003, 1007, 1011, 3000, 4999}) {
        rfc::message_reader reader(1024);
        recording_handler handler;
        std::string wire = client_frame(opcode::close, close_payload(code, "r\xC3\xA9"));
        const auto r = feed(reader, wire, handler);
        EXPECT_FALSE(r.failure) << code;
        EXPECT_EQ(handler.events, (std::vector<event>{close(code, "r\xC3\xA9")}));
    }
}

TEST(message_reader, control_frame_of_125_bytes_is_accepted) {
    rfc::message_reader reader(1024);
    recording_handler handler;
    std::string wire = client_frame(opcode::ping, std::string(125, 'p')) +
                       client_frame(opcode::close, close_payload(1000, std::string(123, 'c')));
    const auto r = feed(reader, wire, handler);
    EXPECT_FALSE(r.failure);
    EXPECT_EQ(handler.events, (std::vector<event>{ping(std::string(125, 'p')),
                                                  close(1000, std::string(123, 'c'))}));
}

// ---------------------------------------------------------------- violations

TEST(message_reader, unmasked_frame_is_a_protocol_error) {
    expect_failure(client_frame(opcode::text, "hi", {.masked = false}), 1002);
    expect_failure(client_frame(opcode::ping, "", {.masked = false}), 1002);
}

TEST(message_reader, reserved_bits_are_a_protocol_error) {
    for (std::uint8_t rsv : {1, 2, 4, 7}) {
        SCOPED_TRACE(static_cast<int>(rsv));
        expect_failure(client_frame(opcode::text, "hi", {.rsv = rsv}), 1002);
        expect_failure(client_frame(opcode::ping, "", {.rsv = rsv}), 1002);
    }
}

TEST(message_reader, unknown_opcodes_are_a_protocol_error) {
    for (std::uint8_t op : {0x3, 0x4, 0x5, 0x6, 0x7, 0xB, 0xC, 0xD, 0xE, 0xF}) {
        SCOPED_TRACE(static_cast<int>(op));
        expect_failure(client_frame(op, "x"), 1002);
    }
}

TEST(message_reader, fragmented_control_frames_are_a_protocol_error) {
    expect_failure(client_frame(opcode::ping, "p", {.fin = false}), 1002);
    expect_failure(client_frame(opcode::pong, "p", {.fin = false}), 1002);
    expect_failure(client_frame(opcode::close, close_payload(1000), {.fin = false}), 1002);
}

TEST(message_reader, oversized_control_frames_are_a_protocol_error) {
    expect_failure(client_frame(opcode::ping, std::string(126, 'p')), 1002);
    expect_failure(client_frame(opcode::pong, std::string(126, 'p')), 1002);
    expect_failure(client_frame(opcode::close, close_payload(1000, std::string(124, 'c'))), 1002);
    // Detected from the header alone: the 126 payload bytes need not have arrived.
    std::string header_only = client_frame(opcode::ping, std::string(126, 'p')).substr(0, 8);
    expect_failure(header_only, 1002);
}

TEST(message_reader, continuation_without_a_message_is_a_protocol_error) {
    expect_failure(client_frame(opcode::continuation, "x"), 1002);
    expect_failure(client_frame(opcode::continuation, "x", {.fin = false}), 1002);
}

TEST(message_reader, new_message_inside_a_fragmented_message_is_a_protocol_error) {
    for (const opcode op : {opcode::text, opcode::binary}) {
        rfc::message_reader reader(1024);
        recording_handler handler;
        std::string first = client_frame(opcode::text, "part", {.fin = false});
        std::string second = client_frame(op, "new");
        std::string wire = first + second;
        const auto r = feed(reader, wire, handler);
        EXPECT_EQ(r.failure.close_code, 1002);
        EXPECT_EQ(r.consumed, first.size());
        EXPECT_TRUE(handler.events.empty());
    }
}

TEST(message_reader, invalid_utf8_text_is_invalid_payload) {
    expect_failure(client_frame(opcode::text, "bad \xC0\x80"), 1007);
    expect_failure(client_frame(opcode::text, "\xED\xA0\x80"), 1007);
    expect_failure(client_frame(opcode::text, "trunc \xE2\x82"), 1007);
    // Binary messages are not checked.
    rfc::message_reader reader(1024);
    recording_handler handler;
    std::string wire = client_frame(opcode::binary, "\xC0\x80");
    EXPECT_FALSE(feed(reader, wire, handler).failure);
}

TEST(message_reader, invalid_utf8_fragmented_text_is_invalid_payload) {
    rfc::message_reader reader(1024);
    recording_handler handler;
    // Each fragment alone looks fine as a prefix; the message ends inside a character.
    std::string wire = client_frame(opcode::text, "ok ", {.fin = false}) +
                       client_frame(opcode::continuation, "\xE2\x82");
    const auto r = feed(reader, wire, handler);
    EXPECT_EQ(r.failure.close_code, 1007);
    EXPECT_TRUE(handler.events.empty());

    rfc::message_reader reader2(1024);
    recording_handler handler2;
    std::string wire2 = client_frame(opcode::text, "\xF4\x90", {.fin = false}) +
                        client_frame(opcode::continuation, "\x80\x80");
    EXPECT_EQ(feed(reader2, wire2, handler2).failure.close_code, 1007);
    EXPECT_TRUE(handler2.events.empty());
}

TEST(message_reader, close_payload_of_one_byte_is_a_protocol_error) {
    expect_failure(client_frame(opcode::close, "\x03"), 1002);
}

TEST(message_reader, invalid_close_codes_are_a_protocol_error) {
    for (std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 2999, 5000}) {
        SCOPED_TRACE(code);
        expect_failure(client_frame(opcode::close, close_payload(code)), 1002);
    }
}

TEST(message_reader, close_reason_not_utf8_is_invalid_payload) {
    expect_failure(client_frame(opcode::close, close_payload(1000, "bad \xFF")), 1007);
    expect_failure(client_frame(opcode::close, close_payload(1000, "\xC3")), 1007);
}

TEST(message_reader, bad_length_encoding_is_a_protocol_error) {
    // 16-bit length field holding 5.
    std::string wire("\x81\xFE\x00\x05", 4);
    wire.append(reinterpret_cast<const char*>(default_key), 4);
    wire.append("hello");
    expect_failure(wire, 1002);
}

TEST(message_reader, frames_before_a_violation_are_delivered) {
    rfc::message_reader reader(1024);
    recording_handler handler;
    const std::string good = client_frame(opcode::text, "first");
    std::string wire = good + client_frame(opcode::text, "x", {.masked = false});
    const auto r = feed(reader, wire, handler);
    EXPECT_EQ(r.failure.close_code, 1002);
    EXPECT_EQ(r.consumed, good.size());
    EXPECT_EQ(handler.events, (std::vector<event>{msg(opcode::text, "first")}));
}

// ---------------------------------------------------------------- size limit

TEST(message_reader, message_of_exactly_max_size_is_accepted) {
    rfc::message_reader reader(300);
    recording_handler handler;
    std::string wire = client_frame(opcode::binary, std::string(300, 'm'));
    const auto r = feed(reader, wire, handler);
    EXPECT_FALSE(r.failure);
    EXPECT_EQ(handler.events, (std::vector<event>{msg(opcode::binary, std::string(300, 'm'))}));

    rfc::message_reader fragmented(300);
    recording_handler handler2;
    std::string wire2 = client_frame(opcode::text, std::string(100, 'a'), {.fin = false}) +
                        client_frame(opcode::continuation, std::string(200, 'b'));
    const auto r2 = feed(fragmented, wire2, handler2);
    EXPECT_FALSE(r2.failure);
    EXPECT_EQ(
        handler2.events,
        (std::vector<event>{msg(opcode::text, std::string(100, 'a') + std::string(200, 'b'))}));
}

TEST(message_reader, single_frame_over_max_size_is_message_too_big) {
    expect_failure(client_frame(opcode::text, std::string(301, 'm')), 1009, 300);
    expect_failure(client_frame(opcode::binary, std::string(70000, 'm')), 1009, 65536);
}

TEST(message_reader, oversize_is_detected_from_the_header_alone) {
    // Only the 14-byte header of a frame announcing 1 GiB: no payload has arrived.
    std::string header("\x82\xFF\x00\x00\x00\x00\x40\x00\x00\x00", 10);
    header.append(reinterpret_cast<const char*>(default_key), 4);
    expect_failure(header, 1009, 8192);
    // The same for a 16-bit length.
    expect_failure(client_frame(opcode::text, std::string(8193, 'x')).substr(0, 8), 1009, 8192);
}

TEST(message_reader, fragmented_total_over_max_size_is_message_too_big) {
    rfc::message_reader reader(300);
    recording_handler handler;
    const std::string first = client_frame(opcode::text, std::string(200, 'a'), {.fin = false});
    std::string wire = first + client_frame(opcode::continuation, std::string(101, 'b'));
    const auto r = feed(reader, wire, handler);
    EXPECT_EQ(r.failure.close_code, 1009);
    EXPECT_EQ(r.consumed, first.size());
    EXPECT_TRUE(handler.events.empty());
}

TEST(message_reader, control_frames_do_not_count_towards_the_limit) {
    rfc::message_reader reader(10);
    recording_handler handler;
    std::string wire = client_frame(opcode::text, std::string(10, 'a'), {.fin = false}) +
                       client_frame(opcode::ping, std::string(100, 'p')) +
                       client_frame(opcode::continuation, "");
    const auto r = feed(reader, wire, handler);
    EXPECT_FALSE(r.failure);
    EXPECT_EQ(handler.events, (std::vector<event>{ping(std::string(100, 'p')),
                                                  msg(opcode::text, std::string(10, 'a'))}));
}

// ---------------------------------------------------------------- flow control

TEST(message_reader, handler_returning_false_stops_after_that_frame) {
    rfc::message_reader reader(1024);
    recording_handler handler;
    handler.stop_at = 1;
    const std::string f1 = client_frame(opcode::text, "one");
    const std::string f2 = client_frame(opcode::ping, "two");
    const std::string f3 = client_frame(opcode::text, "three");
    std::string wire = f1 + f2 + f3;
    auto r = feed(reader, wire, handler);
    EXPECT_TRUE(r.stopped);
    EXPECT_FALSE(r.failure);
    EXPECT_EQ(r.consumed, f1.size() + f2.size());
    EXPECT_EQ(handler.events, (std::vector<event>{msg(opcode::text, "one"), ping("two")}));
    // The rest is still there and can be consumed later.
    std::string rest = wire.substr(r.consumed);
    r = feed(reader, rest, handler);
    EXPECT_FALSE(r.stopped);
    EXPECT_EQ(r.consumed, f3.size());
    EXPECT_EQ(handler.events.back(), msg(opcode::text, "three"));
}

TEST(message_reader, close_handler_returning_false_stops) {
    rfc::message_reader reader(1024);
    recording_handler handler;
    handler.stop_at = 0;
    const std::string c = client_frame(opcode::close, close_payload(1001));
    std::string wire = c + client_frame(opcode::text, "after");
    const auto r = feed(reader, wire, handler);
    EXPECT_TRUE(r.stopped);
    EXPECT_EQ(r.consumed, c.size());
    EXPECT_EQ(handler.events, (std::vector<event>{close(1001, "")}));
}

TEST(message_reader, next_frame_size_when_a_frame_is_incomplete) {
    const std::string done = client_frame(opcode::text, "done");
    const std::string big = client_frame(opcode::binary, std::string(1000, 'x'));  // 8 + 1000
    ASSERT_EQ(big.size(), 1008u);
    for (std::size_t have = 0; have < big.size(); ++have) {
        rfc::message_reader reader(4096);
        recording_handler handler;
        std::string wire = done + big.substr(0, have);
        const auto r = feed(reader, wire, handler);
        EXPECT_FALSE(r.failure);
        EXPECT_EQ(r.consumed, done.size());
        // Known once the 8-byte header is complete; unknown (0) before.
        EXPECT_EQ(r.next_frame_size, have >= 8 ? 1008u : 0u) << have;
        EXPECT_EQ(handler.events, (std::vector<event>{msg(opcode::text, "done")}));
    }
}

TEST(message_reader, incomplete_tail_is_left_untouched) {
    rfc::message_reader reader(1024);
    recording_handler handler;
    const std::string whole = client_frame(opcode::text, "payload");
    std::string wire = whole.substr(0, whole.size() - 1);
    const std::string before = wire;
    const auto r = feed(reader, wire, handler);
    EXPECT_EQ(r.consumed, 0u);
    EXPECT_EQ(r.next_frame_size, whole.size());
    EXPECT_EQ(wire, before);  // not unmasked in place: the caller re-feeds these bytes
}

// append_client_frame (the client side used by the load generator) produces frames the server's
// reader accepts, for every length encoding.
TEST(append_client_frame, round_trips_through_the_reader_at_every_length_encoding) {
    for (const std::size_t size : {std::size_t{0}, std::size_t{125}, std::size_t{126},
                                   std::size_t{65535}, std::size_t{65536}}) {
        std::string payload(size, 'x');
        for (std::size_t i = 0; i < size; ++i) payload[i] = static_cast<char>('a' + i % 26);
        std::string wire;
        rfc::append_client_frame(wire, opcode::binary, payload, 0x19a73c5a);
        if (size > 0) {
            EXPECT_NE(wire.substr(wire.size() - size), payload) << "payload must be masked";
        }
        rfc::message_reader reader(1 << 20);
        recording_handler handler;
        const auto r =
            reader.consume(reinterpret_cast<std::uint8_t*>(wire.data()), wire.size(), handler);
        EXPECT_FALSE(r.failure) << r.failure.reason;
        EXPECT_EQ(r.consumed, wire.size());
        ASSERT_EQ(handler.events.size(), 1u) << size;
        EXPECT_EQ(handler.events[0], msg(opcode::binary, payload)) << size;
    }
}
