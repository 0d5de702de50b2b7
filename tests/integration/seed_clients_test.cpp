// The frames of the seed clients (docs/protocol.md, "Frames of the seed clients"): clients
// written for earlier gateways must work unchanged against the real binary.

#include "support/frames.hpp"
#include "support/gateway_process.hpp"
#include "support/ws_client.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <string>

using namespace wsgate::test;
namespace json = boost::json;

namespace {

const std::string jwt_args_secret = "seed-test-secret-0123456789abcdef";

json::object exact(std::string_view text) {
    return json::parse(text).as_object();
}

}  // namespace

TEST(seed_000, channel_object_is_published_to_its_channel_and_the_sender_is_subscribed) {
    gateway_process gw;
    auto alice = connect_dev_user(gw.port(), "alice");
    auto bob = connect_dev_user(gw.port(), "bob");
    bob.send_json(subscribe_frame(1, {"chat-channel"}));
    ASSERT_EQ(bob.next_json().at("type"), "subscribed");

    const std::string seed =
        R"({"channel":"chat-channel","message":"Hello!","timestamp":"2026-11-22T10:15:30.123Z"})";
    alice.send_text(seed);

    const auto to_bob = bob.next_json();
    EXPECT_EQ(to_bob.at("type"), "message") << json::serialize(to_bob);
    const auto& p = payload_of(to_bob);
    EXPECT_EQ(p.at("channel"), "chat-channel");
    EXPECT_EQ(p.at("from"), "alice");
    EXPECT_EQ(p.at("data"), json::parse(seed)) << "data is the whole object as sent";
    EXPECT_EQ(as_int(p.at("seq")), 1);
    ASSERT_TRUE(p.at("ts").is_string());
    EXPECT_TRUE(is_rfc3339_utc_millis(p.at("ts").as_string())) << p.at("ts");

    // The sender is subscribed implicitly, and gets no ack: its next frame is the message.
    const auto to_alice = alice.next_json();
    EXPECT_EQ(to_alice.at("type"), "message") << json::serialize(to_alice);
    EXPECT_EQ(payload_of(to_alice).at("data"), json::parse(seed));

    // ... and stays subscribed: bob's native publish reaches alice.
    bob.send_json(publish_frame(2, "chat-channel", "reply from bob"));
    const auto reply = alice.next_json();
    EXPECT_EQ(reply.at("type"), "message") << json::serialize(reply);
    EXPECT_EQ(payload_of(reply).at("data"), "reply from bob");
    EXPECT_EQ(payload_of(reply).at("from"), "bob");
}

TEST(seed_000, plain_text_goes_to_the_broadcast_channel) {
    gateway_process gw;
    auto alice = connect_dev_user(gw.port(), "alice");
    auto bob = connect_dev_user(gw.port(), "bob");
    bob.send_json(subscribe_frame(1, {"broadcast"}));
    ASSERT_EQ(bob.next_json().at("type"), "subscribed");

    alice.send_text("Hello, World!");
    const auto to_bob = bob.next_json();
    EXPECT_EQ(to_bob.at("type"), "message") << json::serialize(to_bob);
    EXPECT_EQ(payload_of(to_bob).at("channel"), "broadcast");
    EXPECT_EQ(payload_of(to_bob).at("data"), "Hello, World!");
    EXPECT_EQ(payload_of(to_bob).at("from"), "alice");

    const auto to_alice = alice.next_json();
    EXPECT_EQ(to_alice.at("type"), "message") << json::serialize(to_alice);
    EXPECT_EQ(payload_of(to_alice).at("channel"), "broadcast");
    EXPECT_EQ(payload_of(to_alice).at("data"), "Hello, World!");
}

TEST(seed_000, frames_need_an_authenticated_connection) {
    gateway_process gw({"--jwt-secret", jwt_args_secret});
    ws_client c;
    c.connect(gw.port());
    c.send_text(R"({"channel":"chat-channel","message":"Hello!","timestamp":"x"})");
    auto reply = c.next_json();
    EXPECT_EQ(error_code_of(reply), "not_authenticated") << json::serialize(reply);
    c.send_text("Hello, World!");
    reply = c.next_json();
    EXPECT_EQ(error_code_of(reply), "not_authenticated") << json::serialize(reply);
}

TEST(seed_002, register_ping_and_direct_message) {
    gateway_process gw;
    ws_client alice;
    alice.connect(gw.port());
    ws_client bob;
    bob.connect(gw.port());

    alice.send_text(R"({"type":"ping"})");
    EXPECT_EQ(alice.next_json(), exact(R"({"type":"pong"})")) << "ping before register";

    alice.send_text(R"({"type":"register","userId":"alice"})");
    EXPECT_EQ(alice.next_json(),
              exact(R"({"type":"registered","content":"Successfully registered"})"));
    bob.send_text(R"({"type":"register","userId":"bob"})");
    EXPECT_EQ(bob.next_json(),
              exact(R"({"type":"registered","content":"Successfully registered"})"));

    alice.send_text(R"({"type":"ping"})");
    EXPECT_EQ(alice.next_json(), exact(R"({"type":"pong"})"));

    alice.send_text(R"({"type":"message","to":"bob","content":"hi"})");
    EXPECT_EQ(bob.next_json(), exact(R"({"type":"message","from":"alice","content":"hi"})"));

    // No ack for the sender: its next frame answers its next request.
    alice.send_text(R"({"type":"ping"})");
    EXPECT_EQ(alice.next_json(), exact(R"({"type":"pong"})"));
}

TEST(seed_002, direct_message_reaches_every_connection_of_the_user) {
    gateway_process gw({"--workers", "2"});
    ws_client alice;
    alice.connect(gw.port());
    alice.send_text(R"({"type":"register","userId":"alice"})");
    ASSERT_EQ(alice.next_json().at("type"), "registered");
    std::vector<ws_client> bobs(3);
    for (auto& bob : bobs) {
        bob.connect(gw.port());
        bob.send_text(R"({"type":"register","userId":"bob"})");
        ASSERT_EQ(bob.next_json().at("type"), "registered");
    }
    alice.send_text(R"({"type":"message","to":"bob","content":"Hello Bob!"})");
    for (auto& bob : bobs) {
        EXPECT_EQ(bob.next_json(),
                  exact(R"({"type":"message","from":"alice","content":"Hello Bob!"})"));
    }
}

TEST(seed_002, message_to_an_offline_user_is_user_offline_with_the_seed_error_string) {
    gateway_process gw;
    ws_client alice;
    alice.connect(gw.port());
    alice.send_text(R"({"type":"register","userId":"alice"})");
    ASSERT_EQ(alice.next_json().at("type"), "registered");

    alice.send_text(R"({"type":"message","to":"carol","content":"anyone?"})");
    const auto reply = alice.next_json();
    EXPECT_EQ(reply.at("type"), "error") << json::serialize(reply);
    EXPECT_EQ(error_code_of(reply), "user_offline") << json::serialize(reply);
    ASSERT_TRUE(reply.contains("error") && reply.at("error").is_string())
        << "seed-002 errors carry a top-level \"error\" string: " << json::serialize(reply);
    EXPECT_FALSE(reply.at("error").as_string().empty());
    const auto& p = payload_of(reply);
    ASSERT_TRUE(p.contains("message") && p.at("message").is_string()) << json::serialize(reply);
    EXPECT_EQ(reply.at("error"), p.at("message")) << json::serialize(reply);
}

TEST(seed_002, dev_query_user_and_seed_direct_interoperate_with_native_frames) {
    gateway_process gw;
    auto alice = connect_dev_user(gw.port(), "alice");
    auto bob = connect_dev_user(gw.port(), "bob");
    bob.send_text(R"({"type":"ping"})");  // bob's session runs (see pubsub's upgrade race test)
    ASSERT_EQ(bob.next_json().at("type"), "pong");
    // A seed-002 message is delivered in the seed shape, even to a native client.
    alice.send_text(R"({"type":"message","to":"bob","content":"seed style"})");
    EXPECT_EQ(bob.next_json(),
              exact(R"({"type":"message","from":"alice","content":"seed style"})"));
}
