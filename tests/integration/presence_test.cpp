// Channel presence on one node (docs/protocol.md, "presence"): members with connection counts,
// join when a user's first connection subscribes, leave when the last one goes, only for the
// channel prefixes given by --presence-prefixes.

#include "support/frames.hpp"
#include "support/gateway_process.hpp"
#include "support/ws_client.hpp"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include <map>
#include <string>

using namespace wsgate::test;
namespace json = boost::json;
using std::chrono::milliseconds;

namespace {

std::map<std::string, std::int64_t> members(ws_client& c, std::string_view channel, int id) {
    c.send_json(make_frame("presence", id, {{"channel", channel}}));
    const auto reply = c.reply_to(id);
    EXPECT_EQ(reply.at("type").as_string(), "presence") << json::serialize(reply);
    std::map<std::string, std::int64_t> out;
    for (const auto& m : payload_of(reply).at("members").as_array()) {
        out[std::string(m.as_object().at("user_id").as_string())] =
            as_int(m.as_object().at("connections"));
    }
    return out;
}

json::object event(ws_client& c, std::string_view type, std::string_view user) {
    return c.expect_json(type, milliseconds{5000}, [&](const json::object& f) {
        return payload_of(f).at("user_id").as_string() == user;
    });
}

}  // namespace

TEST(presence, members_join_and_leave_follow_the_users_connections) {
    gateway_process node({"--presence-prefixes", "room:"});
    auto alice = connect_as(node.port(), "alice");
    alice.send_json(subscribe_frame(1, {"room:1"}));
    alice.expect_json("subscribed");
    EXPECT_EQ(payload_of(event(alice, "join", "alice")).at("channel").as_string(), "room:1");

    auto bob = connect_as(node.port(), "bob");
    bob.send_json(subscribe_frame(1, {"room:1"}));
    bob.expect_json("subscribed");
    event(alice, "join", "bob");
    event(bob, "join", "bob");

    // A second connection of alice: counted, but she does not join twice.
    auto alice2 = connect_as(node.port(), "alice");
    alice2.send_json(subscribe_frame(1, {"room:1"}));
    alice2.expect_json("subscribed");
    const auto m = members(bob, "room:1", 10);
    EXPECT_EQ(m, (std::map<std::string, std::int64_t>{{"alice", 2}, {"bob", 1}}));

    alice2.close();  // alice still has a connection: no leave
    bob.send_json(unsubscribe_frame(11, {"room:1"}));
    bob.reply_to(11);
    // Events arrive in order: alice hears bob leave, and nothing about herself before it.
    const auto next = alice.expect_json("leave");
    EXPECT_EQ(payload_of(next).at("user_id").as_string(), "bob");
    EXPECT_EQ(members(alice, "room:1", 12), (std::map<std::string, std::int64_t>{{"alice", 1}}));
}

TEST(presence, channels_outside_the_prefixes_keep_no_presence) {
    gateway_process node({"--presence-prefixes", "room:"});
    auto alice = connect_as(node.port(), "alice");
    alice.send_json(subscribe_frame(1, {"news"}));
    alice.expect_json("subscribed");
    alice.send_json(make_frame("presence", 2, {{"channel", "news"}}));
    EXPECT_EQ(error_code_of(alice.reply_to(2)), "presence_disabled");
    // No join event came for "news": the next frame is the answer to a ping.
    alice.send_json(ping_frame(3));
    EXPECT_EQ(alice.next_json().at("type").as_string(), "pong");
}

TEST(presence, is_off_unless_configured) {
    gateway_process node;
    auto alice = connect_as(node.port(), "alice");
    alice.send_json(make_frame("presence", 1, {{"channel", "room:1"}}));
    EXPECT_EQ(error_code_of(alice.reply_to(1)), "presence_disabled");
}
