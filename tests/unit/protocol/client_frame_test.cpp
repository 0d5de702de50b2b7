// decode_client_frame: every client frame of docs/protocol.md, the seed clients' frames, and
// every error code the decoder can give.

#include "protocol/v1/client_frame.hpp"
#include "core/error.hpp"
#include "protocol/rfc6455/utf8.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <string>
#include <string_view>
#include <vector>

namespace v1 = wsgate::protocol::v1;
namespace json = boost::json;
using v1::command_kind;
using wsgate::core::error;

namespace {

v1::decode_result decode(std::string_view text) {
    return v1::decode_client_frame(text);
}

// Decodes and expects success.
v1::command ok(std::string_view text) {
    auto r = decode(text);
    EXPECT_TRUE(r.ok()) << text << " -> " << wsgate::core::wire_code(r.error) << ": " << r.detail;
    EXPECT_TRUE(r.detail.empty());
    return r.cmd;
}

// Decodes and expects the given error, with a detail message.
v1::decode_result fails(std::string_view text, error expected) {
    auto r = decode(text);
    EXPECT_FALSE(r.ok()) << text;
    EXPECT_EQ(r.error, expected) << text << " -> " << wsgate::core::wire_code(r.error) << ": "
                                 << r.detail;
    EXPECT_FALSE(r.detail.empty()) << text;
    return r;
}

}  // namespace

// ---------------------------------------------------------------- auth

TEST(client_frame, auth_with_token) {
    const auto c = ok(R"({"type":"auth","id":1,"payload":{"token":"eyJhbGciOiJIUzI1NiJ9.e30.x"}})");
    EXPECT_EQ(c.kind, command_kind::auth);
    EXPECT_EQ(c.id, "1");
    EXPECT_EQ(c.token, "eyJhbGciOiJIUzI1NiJ9.e30.x");
    EXPECT_EQ(c.user_id, "");
    EXPECT_FALSE(c.legacy);
}

TEST(client_frame, auth_with_user_id) {
    const auto c = ok(R"({"type":"auth","id":"a-1","payload":{"user_id":"alice"}})");
    EXPECT_EQ(c.kind, command_kind::auth);
    EXPECT_EQ(c.id, R"("a-1")");
    EXPECT_EQ(c.user_id, "alice");
    EXPECT_EQ(c.token, "");
}

TEST(client_frame, auth_with_bad_fields) {
    auto r = fails(R"({"type":"auth","id":7,"payload":{"token":42}})", error::invalid_field);
    EXPECT_EQ(r.cmd.id, "7");  // the error reply still echoes the id
    EXPECT_EQ(r.cmd.kind, command_kind::auth);
    fails(R"({"type":"auth","payload":{"token":null}})", error::invalid_field);
    fails(R"({"type":"auth","payload":{"user_id":""}})", error::invalid_field);
    fails(R"({"type":"auth","payload":{"user_id":["alice"]}})", error::invalid_field);
}

TEST(client_frame, auth_without_payload_decodes_empty) {
    // Whether that is acceptable (token_missing) is the session's decision.
    const auto c = ok(R"({"type":"auth"})");
    EXPECT_EQ(c.kind, command_kind::auth);
    EXPECT_EQ(c.token, "");
    EXPECT_EQ(c.user_id, "");
    EXPECT_EQ(c.id, "");
}

// ---------------------------------------------------------------- subscribe / unsubscribe

TEST(client_frame, subscribe_channels_array) {
    const auto c = ok(R"({"type":"subscribe","id":2,"payload":{"channels":["room:1","room:2"]}})");
    EXPECT_EQ(c.kind, command_kind::subscribe);
    EXPECT_EQ(c.id, "2");
    EXPECT_EQ(c.channels, (std::vector<std::string>{"room:1", "room:2"}));
}

TEST(client_frame, subscribe_single_channel) {
    const auto c = ok(R"({"type":"subscribe","id":2,"payload":{"channel":"room:1"}})");
    EXPECT_EQ(c.kind, command_kind::subscribe);
    EXPECT_EQ(c.channels, (std::vector<std::string>{"room:1"}));
}

TEST(client_frame, unsubscribe) {
    const auto c = ok(R"({"type":"unsubscribe","id":3,"payload":{"channels":["room:2"]}})");
    EXPECT_EQ(c.kind, command_kind::unsubscribe);
    EXPECT_EQ(c.id, "3");
    EXPECT_EQ(c.channels, (std::vector<std::string>{"room:2"}));
    const auto one = ok(R"({"type":"unsubscribe","payload":{"channel":"a"}})");
    EXPECT_EQ(one.kind, command_kind::unsubscribe);
    EXPECT_EQ(one.channels, (std::vector<std::string>{"a"}));
}

TEST(client_frame, subscribe_errors) {
    auto r = fails(R"({"type":"subscribe","id":9,"payload":{"channels":["ok","bad name"]}})",
                   error::bad_channel);
    EXPECT_EQ(r.cmd.id, "9");
    EXPECT_NE(r.detail.find("bad name"), std::string::npos) << r.detail;
    fails(R"({"type":"subscribe","payload":{"channel":"bad#"}})", error::bad_channel);
    fails(R"({"type":"subscribe","payload":{"channel":""}})", error::invalid_field);
    fails(R"({"type":"subscribe","payload":{"channels":[""]}})", error::bad_channel);
    fails(R"({"type":"subscribe","payload":{"channels":[]}})", error::invalid_field);
    fails(R"({"type":"subscribe","payload":{"channels":["a",1]}})", error::invalid_field);
    fails(R"({"type":"subscribe","payload":{"channels":"room:1"}})", error::invalid_field);
    fails(R"({"type":"subscribe","payload":{"channel":5}})", error::invalid_field);
    fails(R"({"type":"subscribe","payload":{}})", error::missing_field);
    fails(R"({"type":"subscribe"})", error::missing_field);
    const std::string long_name(201, 'x');
    fails(R"({"type":"subscribe","payload":{"channels":[")" + long_name + R"("]}})",
          error::bad_channel);
}

// ---------------------------------------------------------------- publish

TEST(client_frame, publish) {
    const auto c =
        ok(R"({"type":"publish","id":4,"payload":{"channel":"room:1","data":{"text":"hi"}}})");
    EXPECT_EQ(c.kind, command_kind::publish);
    EXPECT_EQ(c.id, "4");
    EXPECT_EQ(c.channel, "room:1");
    EXPECT_EQ(c.data, R"({"text":"hi"})");
    EXPECT_FALSE(c.legacy);
}

TEST(client_frame, publish_data_of_every_json_type) {
    struct row {
        std::string_view in;
        std::string_view out;
    };
    for (const row r :
         {row{R"("hi")", R"("hi")"}, row{R"("line\nquote\"back\\")", R"("line\nquote\"back\\")"},
          row{R"("\u00e9")", "\"\xC3\xA9\""}, row{"42", "42"}, row{"-7", "-7"},
          row{"18446744073709551615", "18446744073709551615"}, row{"true", "true"},
          row{"false", "false"}, row{"null", "null"}, row{"[]", "[]"}, row{"{}", "{}"},
          row{R"([1,"a",null,[true]])", R"([1,"a",null,[true]])"},
          row{R"( { "a" : { "b" : [ 1 , 2 ] } } )", R"({"a":{"b":[1,2]}})"}}) {
        const std::string frame =
            R"({"type":"publish","payload":{"channel":"c","data":)" + std::string(r.in) + "}}";
        const auto c = ok(frame);
        EXPECT_EQ(c.data, r.out) << r.in;
    }
}

TEST(client_frame, publish_data_doubles_stay_equal_json_numbers) {
    // Doubles are re-serialized by Boost.JSON (1.5 -> 1.5E0): same value, valid JSON.
    for (std::string_view in : {"1.5", "-0.25", "1e10", "3.141592653589793"}) {
        const std::string frame =
            R"({"type":"publish","payload":{"channel":"c","data":)" + std::string(in) + "}}";
        const auto c = ok(frame);
        boost::system::error_code ec;
        const json::value v = json::parse(c.data, ec);
        ASSERT_FALSE(ec) << c.data;
        EXPECT_EQ(v, json::parse(in)) << in << " -> " << c.data;
    }
}

// A number too large for a double parses to infinity; Boost.JSON serializes it as `Infinity`,
// which is not JSON, and every subscriber would receive an unparsable message frame.
TEST(client_frame, publish_data_out_of_range_number_is_still_json) {
    for (std::string_view in : {"1e400", "-1e400", R"({"n":1e999})"}) {
        const std::string frame =
            R"({"type":"publish","payload":{"channel":"c","data":)" + std::string(in) + "}}";
        const auto r = decode(frame);
        if (!r.ok()) continue;  // refusing it (invalid_field) is fine too
        boost::system::error_code ec;
        json::parse(r.cmd.data, ec);
        EXPECT_FALSE(ec) << in << " became data " << r.cmd.data << ", which is not JSON";
    }
}

TEST(client_frame, id_out_of_range_number_echoes_as_json) {
    const auto r = decode(R"({"type":"ping","id":1e400})");
    if (!r.ok()) return;
    boost::system::error_code ec;
    json::parse(r.cmd.id, ec);
    EXPECT_FALSE(ec) << "id echoed as " << r.cmd.id << ", which is not JSON";
}

TEST(client_frame, publish_errors) {
    auto r = fails(R"({"type":"publish","id":"x","payload":{"channel":"room:1"}})",
                   error::missing_field);
    EXPECT_EQ(r.cmd.id, R"("x")");
    EXPECT_NE(r.detail.find("data"), std::string::npos) << r.detail;
    fails(R"({"type":"publish","payload":{"data":1}})", error::missing_field);
    fails(R"({"type":"publish","payload":{"channel":"room 1","data":1}})", error::bad_channel);
    fails(R"({"type":"publish","payload":{"channel":7,"data":1}})", error::invalid_field);
    fails(R"({"type":"publish","payload":{"channel":"","data":1}})", error::invalid_field);
    fails(R"({"type":"publish"})", error::missing_field);
}

TEST(client_frame, publish_data_null_is_present) {
    const auto c = ok(R"({"type":"publish","payload":{"channel":"c","data":null}})");
    EXPECT_EQ(c.data, "null");
}

// ---------------------------------------------------------------- direct, ping

TEST(client_frame, direct) {
    const auto c =
        ok(R"({"type":"direct","id":5,"payload":{"to":"bob","data":{"text":"hi bob"}}})");
    EXPECT_EQ(c.kind, command_kind::direct);
    EXPECT_EQ(c.id, "5");
    EXPECT_EQ(c.to, "bob");
    EXPECT_EQ(c.data, R"({"text":"hi bob"})");
    EXPECT_FALSE(c.legacy);
}

TEST(client_frame, direct_errors) {
    fails(R"({"type":"direct","payload":{"data":1}})", error::missing_field);
    fails(R"({"type":"direct","payload":{"to":"bob"}})", error::missing_field);
    fails(R"({"type":"direct","payload":{"to":1,"data":1}})", error::invalid_field);
    fails(R"({"type":"direct","payload":{"to":"","data":1}})", error::invalid_field);
}

TEST(client_frame, ping) {
    const auto c = ok(R"({"type":"ping","id":6})");
    EXPECT_EQ(c.kind, command_kind::ping);
    EXPECT_EQ(c.id, "6");
    const auto seed = ok(R"({"type":"ping"})");
    EXPECT_EQ(seed.kind, command_kind::ping);
    EXPECT_EQ(seed.id, "");
}

// ---------------------------------------------------------------- ids

TEST(client_frame, ids_are_echoed_as_raw_json) {
    EXPECT_EQ(ok(R"({"type":"ping","id":0})").id, "0");
    EXPECT_EQ(ok(R"({"type":"ping","id":-12})").id, "-12");
    EXPECT_EQ(ok(R"({"type":"ping","id":18446744073709551615})").id, "18446744073709551615");
    EXPECT_EQ(ok(R"({"type":"ping","id":"req-1"})").id, R"("req-1")");
    EXPECT_EQ(ok(R"({"type":"ping","id":""})").id, R"("")");
    EXPECT_EQ(ok(R"({"type":"ping","id":"q\"t\\"})").id, R"("q\"t\\")");
    EXPECT_EQ(ok(R"({"type":"ping","id":"a\u0001"})").id, R"("a\u0001")");
    // A double is echoed as an equal JSON number.
    EXPECT_EQ(json::parse(ok(R"({"type":"ping","id":2.5})").id), json::parse("2.5"));
}

TEST(client_frame, id_of_wrong_type_is_invalid_field) {
    for (std::string_view id : {"{}", R"({"a":1})", "[1]", "true", "null"}) {
        const auto r =
            fails(R"({"type":"ping","id":)" + std::string(id) + "}", error::invalid_field);
        EXPECT_EQ(r.cmd.id, "") << id;
    }
}

// ---------------------------------------------------------------- envelope errors

TEST(client_frame, unknown_type) {
    auto r = fails(R"({"type":"fly","id":1})", error::unknown_type);
    EXPECT_EQ(r.cmd.id, "1");
    EXPECT_NE(r.detail.find("fly"), std::string::npos);
    fails(R"({"type":""})", error::unknown_type);
    fails(R"({"type":"PING"})", error::unknown_type);
}

TEST(client_frame, type_not_a_string_is_bad_frame) {
    fails(R"({"type":1})", error::bad_frame);
    fails(R"({"type":null,"channel":"c"})", error::bad_frame);
    fails(R"({"type":["ping"]})", error::bad_frame);
}

TEST(client_frame, payload_not_an_object_is_bad_frame) {
    auto r = fails(R"({"type":"subscribe","id":3,"payload":["room:1"]})", error::bad_frame);
    EXPECT_EQ(r.cmd.id, "3");
    fails(R"({"type":"ping","payload":"x"})", error::bad_frame);
    fails(R"({"type":"ping","payload":null})", error::bad_frame);
}

TEST(client_frame, json_that_is_not_an_object_is_bad_frame) {
    fails("42", error::bad_frame);
    fails("[1]", error::bad_frame);
    fails("[]", error::bad_frame);
    fails(R"("a string")", error::bad_frame);
    fails("null", error::bad_frame);
    fails("true", error::bad_frame);
}

TEST(client_frame, object_without_type_or_channel_is_bad_frame) {
    fails("{}", error::bad_frame);
    fails(R"({"message":"hello"})", error::bad_frame);
}

TEST(client_frame, broken_json_is_bad_json) {
    fails("{bad", error::bad_json);
    fails("[1,", error::bad_json);
    fails(R"({"type":"ping",})", error::bad_json);
    fails("  \n{", error::bad_json);
    fails(R"({"type":"ping"} trailing)", error::bad_json);
}

// ---------------------------------------------------------------- seed 000

TEST(client_frame, plain_text_is_legacy_text_on_broadcast) {
    const auto c = ok("Hello, World!");
    EXPECT_EQ(c.kind, command_kind::legacy_text);
    EXPECT_TRUE(c.legacy);
    EXPECT_EQ(c.channel, "broadcast");
    EXPECT_EQ(c.channel, v1::default_text_channel);
    EXPECT_EQ(c.data, R"("Hello, World!")");
    EXPECT_EQ(c.id, "");
}

TEST(client_frame, legacy_text_is_escaped_as_a_json_string) {
    EXPECT_EQ(ok("say \"hi\"").data, R"("say \"hi\"")");
    EXPECT_EQ(ok("two\nlines\ttab").data, R"("two\nlines\ttab")");
    EXPECT_EQ(ok("back\\slash").data, R"("back\\slash")");
    EXPECT_EQ(ok("bell\x01").data, R"("bell\u0001")");
    EXPECT_EQ(ok("caf\xC3\xA9").data, "\"caf\xC3\xA9\"");
    EXPECT_EQ(ok("1 2 3").data, R"("1 2 3")");
    // The data is itself valid JSON that parses back to the original text.
    const std::string text = "a \"b\" \\ c\nd\x1f";
    EXPECT_EQ(json::parse(ok(text).data).as_string(), text);
}

// docs/protocol.md: bad_json is for text that "starts with `{` or `[`"; any other non-JSON
// text is seed-000 plain text. A quote is not in that list.
TEST(client_frame, plain_text_starting_with_a_quote_is_legacy_text) {
    const auto r = decode(R"("Quoted," she said)");
    ASSERT_TRUE(r.ok()) << wsgate::core::wire_code(r.error) << ": " << r.detail;
    EXPECT_EQ(r.cmd.kind, command_kind::legacy_text);
    EXPECT_EQ(r.cmd.data, R"("\"Quoted,\" she said")");
}

TEST(client_frame, legacy_publish_is_the_whole_object) {
    const auto c = ok(R"({"channel":"chat-channel","message":"Hello!","timestamp":"2026-01-01"})");
    EXPECT_EQ(c.kind, command_kind::legacy_publish);
    EXPECT_TRUE(c.legacy);
    EXPECT_EQ(c.channel, "chat-channel");
    EXPECT_EQ(c.data, R"({"channel":"chat-channel","message":"Hello!","timestamp":"2026-01-01"})");
    EXPECT_EQ(c.id, "");
}

TEST(client_frame, legacy_publish_errors_keep_the_legacy_flag) {
    auto r = fails(R"({"channel":"bad channel","message":"x"})", error::bad_channel);
    EXPECT_TRUE(r.cmd.legacy);
    r = fails(R"({"channel":3,"message":"x"})", error::invalid_field);
    EXPECT_TRUE(r.cmd.legacy);
}

// ---------------------------------------------------------------- seed 002

TEST(client_frame, seed_register) {
    const auto c = ok(R"({"type":"register","userId":"alice"})");
    EXPECT_EQ(c.kind, command_kind::register_user);
    EXPECT_TRUE(c.legacy);
    EXPECT_EQ(c.user_id, "alice");
    auto r = fails(R"({"type":"register"})", error::missing_field);
    EXPECT_TRUE(r.cmd.legacy);
    EXPECT_EQ(r.cmd.kind, command_kind::register_user);
    fails(R"({"type":"register","userId":5})", error::invalid_field);
    fails(R"({"type":"register","userId":""})", error::invalid_field);
}

TEST(client_frame, seed_message_is_legacy_direct) {
    const auto c = ok(R"({"type":"message","to":"bob","content":"Hello Bob!"})");
    EXPECT_EQ(c.kind, command_kind::legacy_direct);
    EXPECT_TRUE(c.legacy);
    EXPECT_EQ(c.to, "bob");
    EXPECT_EQ(c.data, R"("Hello Bob!")");  // content as serialized JSON
    const auto obj = ok(R"({"type":"message","to":"bob","content":{"k":[1]}})");
    EXPECT_EQ(obj.data, R"({"k":[1]})");
}

TEST(client_frame, seed_message_errors) {
    auto r = fails(R"({"type":"message","content":"x"})", error::missing_field);
    EXPECT_TRUE(r.cmd.legacy);
    EXPECT_NE(r.detail.find("to"), std::string::npos);
    r = fails(R"({"type":"message","to":"bob"})", error::missing_field);
    EXPECT_TRUE(r.cmd.legacy);
    EXPECT_NE(r.detail.find("content"), std::string::npos);
    fails(R"({"type":"message","to":["bob"],"content":"x"})", error::invalid_field);
}

// ---------------------------------------------------------------- misc

TEST(client_frame, unknown_fields_are_ignored) {
    const auto c = ok(R"({"type":"ping","v":2,"extra":{"x":[1]},"payload":{"future":true}})");
    EXPECT_EQ(c.kind, command_kind::ping);
}

TEST(client_frame, same_result_with_a_monotonic_resource) {
    unsigned char buffer[4096];
    json::monotonic_resource resource(buffer, sizeof buffer);
    const std::string text =
        R"({"type":"publish","id":"r","payload":{"channel":"room:1","data":{"big":")" +
        std::string(10000, 'x') + R"("}}})";
    const auto with = v1::decode_client_frame(text, json::storage_ptr(&resource));
    const auto without = v1::decode_client_frame(text);
    ASSERT_TRUE(with.ok());
    EXPECT_EQ(with.cmd.data, without.cmd.data);
    EXPECT_EQ(with.cmd.id, R"("r")");
    EXPECT_EQ(with.cmd.channel, "room:1");
    resource.release();
    // The result owns its strings: nothing refers to the released resource.
    EXPECT_EQ(with.cmd.data.size(), without.cmd.data.size());
}

// The detail goes into the error frame, a WebSocket text frame: it must be UTF-8, or the
// client has to fail the connection (RFC 6455 8.1). Echoed names are cut at 64 bytes; the cut
// must not split a character.
TEST(client_frame, error_detail_stays_utf8_when_echoed_names_are_cut) {
    const std::string name = std::string(63, 'a') + "\xC3\xA9";  // 'é' spans bytes 63..64
    const auto unknown = fails(R"({"type":")" + name + R"("})", error::unknown_type);
    EXPECT_TRUE(wsgate::protocol::rfc6455::is_valid_utf8(unknown.detail)) << unknown.detail;
    const auto channel = fails(R"({"type":"subscribe","payload":{"channels":[")" + name + R"("]}})",
                               error::bad_channel);
    EXPECT_TRUE(wsgate::protocol::rfc6455::is_valid_utf8(channel.detail)) << channel.detail;
}
