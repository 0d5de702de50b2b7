// Server frame encoders: each result is one unmasked WebSocket text frame whose payload is the
// exact JSON object of docs/protocol.md.

#include "protocol/v1/server_frame.hpp"
#include "core/error.hpp"
#include "protocol/rfc6455/frame.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

namespace v1 = wsgate::protocol::v1;
namespace rfc = wsgate::protocol::rfc6455;
namespace json = boost::json;
using wsgate::core::error;

namespace {

// Checks the WebSocket framing and returns the JSON text it carries.
std::string payload_of(const wsgate::core::frame_ptr& frame) {
    EXPECT_NE(frame, nullptr);
    if (frame == nullptr) return {};
    const std::string_view bytes = frame->bytes();
    EXPECT_EQ(bytes.size(), frame->size());
    rfc::frame_header h;
    const auto status =
        rfc::parse_header(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), h);
    EXPECT_EQ(status, rfc::header_status::complete);
    if (status != rfc::header_status::complete) return {};
    EXPECT_TRUE(h.fin);
    EXPECT_EQ(h.rsv, 0);
    EXPECT_EQ(h.op, rfc::opcode::text);
    EXPECT_FALSE(h.masked);
    EXPECT_EQ(h.header_size, rfc::header_size_for(h.payload_size));
    EXPECT_EQ(h.header_size + h.payload_size, bytes.size());
    return std::string(bytes.substr(h.header_size));
}

// The payload parsed; fails the test if it is not JSON.
json::value json_of(const wsgate::core::frame_ptr& frame) {
    const std::string text = payload_of(frame);
    boost::system::error_code ec;
    json::value v = json::parse(text, ec);
    EXPECT_FALSE(ec) << text;
    return v;
}

void expect_json(const wsgate::core::frame_ptr& frame, std::string_view expected) {
    const json::value got = json_of(frame);
    EXPECT_EQ(got, json::parse(expected))
        << "got " << json::serialize(got) << "\nwant " << expected;
}

std::chrono::system_clock::time_point utc(int y, unsigned mo, unsigned d, int h, int mi, int s,
                                          int ms) {
    using namespace std::chrono;
    return sys_days{year{y} / month{mo} / day{d}} + hours{h} + minutes{mi} + seconds{s} +
           milliseconds{ms};
}

}  // namespace

// ---------------------------------------------------------------- each encoder

TEST(server_frame, auth_success) {
    expect_json(
        v1::auth_success("1", "alice", "n1-3f9a0c2e41d7b6a8"),
        R"({"type":"auth.success","id":1,"payload":{"user_id":"alice","session_id":"n1-3f9a0c2e41d7b6a8"}})");
    expect_json(v1::auth_success("", "bob", "n1-1"),
                R"({"type":"auth.success","payload":{"user_id":"bob","session_id":"n1-1"}})");
}

TEST(server_frame, registered) {
    const auto f = v1::registered();
    expect_json(f, R"({"type":"registered","content":"Successfully registered"})");
    EXPECT_EQ(payload_of(f), R"({"type":"registered","content":"Successfully registered"})");
}

TEST(server_frame, subscribed_and_unsubscribed) {
    const std::vector<std::string> channels{"room:1", "room:2"};
    expect_json(v1::subscribed("2", channels, true),
                R"({"type":"subscribed","id":2,"payload":{"channels":["room:1","room:2"]}})");
    expect_json(v1::subscribed("3", std::vector<std::string>{"room:2"}, false),
                R"({"type":"unsubscribed","id":3,"payload":{"channels":["room:2"]}})");
    expect_json(v1::subscribed("", std::vector<std::string>{}, true),
                R"({"type":"subscribed","payload":{"channels":[]}})");
}

TEST(server_frame, publish_ack) {
    const auto f = v1::publish_ack("4", "room:1", 17);
    expect_json(f, R"({"type":"ack","id":4,"payload":{"channel":"room:1","seq":17}})");
    EXPECT_EQ(payload_of(f), R"({"type":"ack","id":4,"payload":{"channel":"room:1","seq":17}})");
    expect_json(v1::publish_ack("", "c", 18446744073709551615ULL),
                R"({"type":"ack","payload":{"channel":"c","seq":18446744073709551615}})");
    expect_json(v1::publish_ack(R"("req")", "c", 0),
                R"({"type":"ack","id":"req","payload":{"channel":"c","seq":0}})");
}

TEST(server_frame, direct_ack) {
    expect_json(v1::direct_ack("5", "bob"), R"({"type":"ack","id":5,"payload":{"to":"bob"}})");
}

TEST(server_frame, pong) {
    const auto with_id = v1::pong("6");
    expect_json(with_id, R"({"type":"pong","id":6})");
    EXPECT_EQ(payload_of(with_id), R"({"type":"pong","id":6})");
    const auto seed = v1::pong("");
    EXPECT_EQ(payload_of(seed), R"({"type":"pong"})");
}

TEST(server_frame, error_frame) {
    expect_json(
        v1::error_frame("4", error::bad_channel, "channel name must be 1-200 bytes", false),
        R"({"type":"error","id":4,"payload":{"code":"bad_channel","message":"channel name must be 1-200 bytes"}})");
    expect_json(
        v1::error_frame("", error::user_offline, "user bob is offline", true),
        R"({"type":"error","payload":{"code":"user_offline","message":"user bob is offline"},"error":"user bob is offline"})");
    expect_json(
        v1::error_frame(R"("x")", error::bad_json, "quote \" here", false),
        R"({"type":"error","id":"x","payload":{"code":"bad_json","message":"quote \" here"}})");
}

TEST(server_frame, channel_message) {
    const auto f =
        v1::channel_message("room:1", 17, "alice", "2026-11-22T10:15:30.123Z", R"({"text":"hi"})");
    expect_json(
        f,
        R"({"type":"message","payload":{"channel":"room:1","seq":17,"from":"alice","ts":"2026-11-22T10:15:30.123Z","data":{"text":"hi"}}})");
    EXPECT_EQ(
        payload_of(f),
        R"({"type":"message","payload":{"channel":"room:1","seq":17,"from":"alice","ts":"2026-11-22T10:15:30.123Z","data":{"text":"hi"}}})");
    expect_json(
        v1::channel_message("broadcast", 1, "u", "t", R"("Hello, World!")"),
        R"({"type":"message","payload":{"channel":"broadcast","seq":1,"from":"u","ts":"t","data":"Hello, World!"}})");
}

TEST(server_frame, direct_message) {
    expect_json(
        v1::direct_message("alice", "2026-11-22T10:15:30.123Z", R"({"text":"hi bob"})"),
        R"({"type":"direct","payload":{"from":"alice","ts":"2026-11-22T10:15:30.123Z","data":{"text":"hi bob"}}})");
}

TEST(server_frame, legacy_direct_message) {
    const auto f = v1::legacy_direct_message("alice", R"("Hello Bob!")");
    expect_json(f, R"({"type":"message","from":"alice","content":"Hello Bob!"})");
    EXPECT_EQ(payload_of(f), R"({"type":"message","from":"alice","content":"Hello Bob!"})");
}

TEST(server_frame, strings_from_users_are_escaped) {
    const std::string nasty = "a\"b\\c\nd\x01\xC3\xA9";
    const json::value v = json_of(v1::auth_success("", nasty, "s"));
    EXPECT_EQ(v.at("payload").at("user_id").as_string(), nasty);
    const json::value m = json_of(v1::direct_message(nasty, "t", "null"));
    EXPECT_EQ(m.at("payload").at("from").as_string(), nasty);
    const json::value e = json_of(v1::error_frame("", error::internal_error, nasty, true));
    EXPECT_EQ(e.at("payload").at("message").as_string(), nasty);
    EXPECT_EQ(e.at("error").as_string(), nasty);
}

// ---------------------------------------------------------------- frame_builder

TEST(frame_builder, id_field_is_omitted_when_empty) {
    {
        auto f = v1::frame_builder{}.raw("{").raw(R"("type":"x")").id_field("").raw("}").finish();
        EXPECT_EQ(payload_of(f), R"({"type":"x"})");
    }
    {
        auto f = v1::frame_builder{}.raw(R"({"type":"x")").id_field("42").raw("}").finish();
        EXPECT_EQ(payload_of(f), R"({"type":"x","id":42})");
    }
    {
        auto f = v1::frame_builder{}.raw(R"({"type":"x")").id_field(R"("a")").raw("}").finish();
        EXPECT_EQ(payload_of(f), R"({"type":"x","id":"a"})");
    }
}

TEST(frame_builder, numbers) {
    for (const std::uint64_t n : {std::uint64_t{0}, std::uint64_t{9}, std::uint64_t{10},
                                  std::uint64_t{1234567890}, ~std::uint64_t{0}}) {
        auto f = v1::frame_builder{}.number(n).finish();
        EXPECT_EQ(payload_of(f), std::to_string(n));
    }
}

TEST(frame_builder, payload_sizes_pick_the_header_length) {
    struct row {
        std::size_t payload;
        std::size_t header;
        std::uint8_t length_byte;
    };
    for (const row r : {row{0, 2, 0}, row{2, 2, 2}, row{125, 2, 125}, row{126, 4, 126},
                        row{65535, 4, 126}, row{65536, 10, 127}, row{100000, 10, 127}}) {
        // A JSON string of exactly r.payload bytes (at least the two quotes).
        v1::frame_builder b(r.payload);
        if (r.payload >= 2) {
            b.raw("\"").raw(std::string(r.payload - 2, 'x')).raw("\"");
        }
        const auto f = b.finish();
        const std::string_view bytes = f->bytes();
        ASSERT_EQ(bytes.size(), r.header + r.payload) << r.payload;
        EXPECT_EQ(static_cast<std::uint8_t>(bytes[0]), 0x81);
        EXPECT_EQ(static_cast<std::uint8_t>(bytes[1]), r.length_byte) << r.payload;
        // The header sits right before the payload in the shared storage.
        EXPECT_EQ(f->begin + r.header, rfc::max_header_size) << r.payload;
        EXPECT_EQ(f->storage.size(), rfc::max_header_size + r.payload);
        EXPECT_EQ(payload_of(f).size(), r.payload);
    }
}

TEST(frame_builder, finish_leaves_the_builder_reusable_and_stamps_creation) {
    v1::frame_builder b;
    auto first = b.raw(R"({"a":1})").finish();
    EXPECT_EQ(payload_of(first), R"({"a":1})");
    EXPECT_GT(first->created_ns, 0);
}

// ---------------------------------------------------------------- append_json_string

TEST(append_json_string, escapes) {
    struct row {
        std::string_view in;
        std::string_view out;
    };
    for (const row r : {row{"", R"("")"}, row{"plain", R"("plain")"}, row{"q\"q", R"("q\"q")"},
                        row{"b\\s", R"("b\\s")"}, row{"\n\r\t\b\f", R"("\n\r\t\b\f")"},
                        row{"\x01", R"("\u0001")"}, row{"\x1f", R"("\u001f")"},
                        row{std::string_view("\0", 1), R"("\u0000")"}, row{"\x7f", "\"\x7f\""},
                        row{"/", R"("/")"},
                        row{"caf\xC3\xA9 \xF0\x9F\x98\x80", "\"caf\xC3\xA9 \xF0\x9F\x98\x80\""},
                        row{"\"\"", R"("\"\"")"}, row{"end\\", R"("end\\")"}}) {
        std::string out = "prefix:";
        v1::append_json_string(out, r.in);
        EXPECT_EQ(out, "prefix:" + std::string(r.out)) << r.in;
    }
}

TEST(append_json_string, round_trips_every_byte_below_0x80) {
    std::string all;
    for (int c = 0; c < 0x80; ++c) all.push_back(static_cast<char>(c));
    std::string out;
    v1::append_json_string(out, all);
    EXPECT_EQ(json::parse(out).as_string(), all);
}

// ---------------------------------------------------------------- format_timestamp

TEST(format_timestamp, rfc3339_utc_with_milliseconds) {
    EXPECT_EQ(v1::format_timestamp(utc(2026, 11, 22, 10, 15, 30, 123)), "2026-11-22T10:15:30.123Z");
    EXPECT_EQ(v1::format_timestamp(utc(2026, 11, 22, 10, 15, 30, 7)), "2026-11-22T10:15:30.007Z");
    EXPECT_EQ(v1::format_timestamp(utc(2026, 1, 2, 3, 4, 5, 0)), "2026-01-02T03:04:05.000Z");
    EXPECT_EQ(v1::format_timestamp(utc(1999, 12, 31, 23, 59, 59, 999)), "1999-12-31T23:59:59.999Z");
    EXPECT_EQ(v1::format_timestamp(utc(2024, 2, 29, 0, 0, 0, 50)), "2024-02-29T00:00:00.050Z");
    EXPECT_EQ(v1::format_timestamp(std::chrono::system_clock::time_point{}),
              "1970-01-01T00:00:00.000Z");
}

TEST(format_timestamp, truncates_below_a_millisecond) {
    const auto t = utc(2026, 11, 22, 10, 15, 30, 123) + std::chrono::microseconds{999};
    EXPECT_EQ(v1::format_timestamp(t), "2026-11-22T10:15:30.123Z");
}

// Before the epoch the seconds must round down with the milliseconds: one millisecond before
// 1970 is 1969-12-31T23:59:59.999Z.
TEST(format_timestamp, before_the_epoch) {
    EXPECT_EQ(v1::format_timestamp(std::chrono::system_clock::time_point{} -
                                   std::chrono::milliseconds{1}),
              "1969-12-31T23:59:59.999Z");
    EXPECT_EQ(v1::format_timestamp(utc(1969, 7, 20, 20, 17, 40, 250)), "1969-07-20T20:17:40.250Z");
}
