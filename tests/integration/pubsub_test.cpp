// Channels, publish/subscribe and direct messages on the real binary (docs/protocol.md,
// "Channels"). Development mode: clients authenticate with `?user_id=`.

#include "support/frames.hpp"
#include "support/gateway_process.hpp"
#include "support/ws_client.hpp"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <map>
#include <string>
#include <vector>

using namespace wsgate::test;
namespace json = boost::json;

namespace {

// Subscribes and checks the `subscribed` reply echoes the id and the channels.
void subscribe(ws_client& c, std::int64_t id, const std::vector<std::string>& channels) {
    c.send_json(subscribe_frame(id, channels));
    const auto reply = c.expect_json("subscribed");
    ASSERT_EQ(as_int(reply.at("id")), id) << json::serialize(reply);
    EXPECT_EQ(as_strings(payload_of(reply).at("channels")), channels) << json::serialize(reply);
}

// Publishes and returns the seq of the ack, after checking the ack's id and channel.
std::int64_t publish(ws_client& c, std::int64_t id, std::string_view channel, json::value data) {
    c.send_json(publish_frame(id, channel, std::move(data)));
    const auto ack = c.expect_json("ack", default_timeout, [&](const json::object& o) {
        const auto* i = o.if_contains("id");
        return i != nullptr && i->is_number() && as_int(*i) == id;
    });
    const auto& p = payload_of(ack);
    EXPECT_EQ(p.at("channel"), json::value(channel)) << json::serialize(ack);
    return as_int(p.at("seq"));
}

// A dev-mode client whose session is known to be running: one ping round trip. The node
// answers 101 before it registers the session (see the race test at the end), so tests that
// are about something else wait for this before another client addresses the user.
ws_client connect_ready_user(std::uint16_t port, std::string_view user) {
    auto c = connect_dev_user(port, user);
    c.send_json(ping_frame(0));
    c.expect_json("pong");
    return c;
}

}  // namespace

TEST(pubsub, publish_is_acked_with_seq_and_delivered_with_channel_seq_from_ts_and_data) {
    gateway_process gw;
    auto alice = connect_dev_user(gw.port(), "alice");
    auto bob = connect_dev_user(gw.port(), "bob");
    ASSERT_NO_FATAL_FAILURE(subscribe(bob, 1, {"room:1"}));

    alice.send_json(publish_frame(7, "room:1", json::parse(R"({"text":"hi"})")));
    const auto ack = alice.expect_json("ack");
    EXPECT_EQ(as_int(ack.at("id")), 7);
    EXPECT_EQ(payload_of(ack).at("channel"), "room:1");
    const auto seq = as_int(payload_of(ack).at("seq"));
    EXPECT_EQ(seq, 1) << "a fresh channel starts at seq 1";

    const auto msg = bob.next_json();
    EXPECT_EQ(msg.at("type"), "message") << json::serialize(msg);
    EXPECT_FALSE(msg.contains("id")) << "a delivery answers no request: " << json::serialize(msg);
    const auto& p = payload_of(msg);
    EXPECT_EQ(p.at("channel"), "room:1");
    EXPECT_EQ(as_int(p.at("seq")), seq);
    EXPECT_EQ(p.at("from"), "alice");
    ASSERT_TRUE(p.at("ts").is_string()) << json::serialize(msg);
    EXPECT_TRUE(is_rfc3339_utc_millis(p.at("ts").as_string())) << p.at("ts");
    EXPECT_EQ(p.at("data"), json::parse(R"({"text":"hi"})"));
}

TEST(pubsub, data_is_delivered_exactly_as_published) {
    gateway_process gw;
    auto alice = connect_dev_user(gw.port(), "alice");
    auto bob = connect_dev_user(gw.port(), "bob");
    ASSERT_NO_FATAL_FAILURE(subscribe(bob, 1, {"data"}));

    const std::vector<std::string> samples = {
        R"({"text":"hi","nested":{"list":[1,2,{"deep":true}],"none":null},"n":-12.5})",
        R"("just a string with \"quotes\", unicode \u00e9\u2713 and \\ backslash")",
        R"(42)",
        R"(-7)",
        R"(3.25)",
        R"(9007199254740993)",
        R"([1,"two",{"three":3},[4],null,false])",
        R"(true)",
        R"({})",
        R"([])",
        R"("")",
    };
    std::int64_t id = 10;
    for (const auto& text : samples) {
        const auto data = json::parse(text);
        publish(alice, ++id, "data", data);
        const auto msg = bob.expect_json("message");
        EXPECT_EQ(payload_of(msg).at("data"), data)
            << "published " << text << ", delivered " << json::serialize(msg);
    }
}

TEST(pubsub, seq_increases_by_one_per_channel) {
    gateway_process gw;
    auto alice = connect_dev_user(gw.port(), "alice");
    auto bob = connect_dev_user(gw.port(), "bob");
    ASSERT_NO_FATAL_FAILURE(subscribe(bob, 1, {"seq:a", "seq:b"}));

    // Interleave: a, b, a, a, b, a, b, a
    const std::string order = "abaababa";
    std::map<char, std::int64_t> expected_next{{'a', 1}, {'b', 1}};
    std::int64_t id = 100;
    for (const char ch : order) {
        const std::string channel = std::string("seq:") + ch;
        json::object data;
        data["i"] = id;
        const auto seq = publish(alice, ++id, channel, data);
        EXPECT_EQ(seq, expected_next[ch]++) << "ack seq on " << channel;
    }
    std::map<char, std::int64_t> delivered_next{{'a', 1}, {'b', 1}};
    for (std::size_t i = 0; i < order.size(); ++i) {
        const auto msg = bob.expect_json("message");
        const auto& p = payload_of(msg);
        const std::string channel(p.at("channel").as_string());
        ASSERT_EQ(channel.size(), 5u) << json::serialize(msg);
        EXPECT_EQ(as_int(p.at("seq")), delivered_next[channel.back()]++) << json::serialize(msg);
    }
}

TEST(pubsub, subscribed_publisher_receives_its_own_message) {
    gateway_process gw;
    auto alice = connect_dev_user(gw.port(), "alice");
    ASSERT_NO_FATAL_FAILURE(subscribe(alice, 1, {"echo:me"}));
    const auto seq = publish(alice, 2, "echo:me", "hello me");
    const auto msg = alice.expect_json("message");
    EXPECT_EQ(payload_of(msg).at("channel"), "echo:me");
    EXPECT_EQ(as_int(payload_of(msg).at("seq")), seq);
    EXPECT_EQ(payload_of(msg).at("from"), "alice");
    EXPECT_EQ(payload_of(msg).at("data"), "hello me");
}

TEST(pubsub, publisher_need_not_be_subscribed_and_gets_no_copy) {
    gateway_process gw;
    auto alice = connect_dev_user(gw.port(), "alice");
    auto bob = connect_dev_user(gw.port(), "bob");
    ASSERT_NO_FATAL_FAILURE(subscribe(bob, 1, {"one-way"}));
    publish(alice, 2, "one-way", 1);
    EXPECT_EQ(payload_of(bob.expect_json("message")).at("data"), 1);
    // alice's next frame is the pong, not a copy of her message.
    alice.send_json(ping_frame(3));
    const auto next = alice.next_json();
    EXPECT_EQ(next.at("type"), "pong") << json::serialize(next);
}

TEST(pubsub, unsubscribe_stops_delivery) {
    gateway_process gw;
    auto alice = connect_dev_user(gw.port(), "alice");
    auto bob = connect_dev_user(gw.port(), "bob");
    ASSERT_NO_FATAL_FAILURE(subscribe(bob, 1, {"keep", "drop"}));

    bob.send_json(unsubscribe_frame(2, {"drop"}));
    const auto reply = bob.next_json();
    EXPECT_EQ(reply.at("type"), "unsubscribed") << json::serialize(reply);
    EXPECT_EQ(as_int(reply.at("id")), 2);
    EXPECT_EQ(as_strings(payload_of(reply).at("channels")), std::vector<std::string>{"drop"});

    publish(alice, 3, "drop", "must not arrive");
    publish(alice, 4, "keep", "arrives");
    // The server handles alice's frames in order, so had "drop" still been delivered to bob it
    // would come first.
    const auto msg = bob.next_json();
    EXPECT_EQ(msg.at("type"), "message") << json::serialize(msg);
    EXPECT_EQ(payload_of(msg).at("channel"), "keep") << json::serialize(msg);
    EXPECT_EQ(payload_of(msg).at("data"), "arrives");

    // Unsubscribing from a channel not subscribed is not an error.
    bob.send_json(unsubscribe_frame(5, {"never-subscribed"}));
    const auto again = bob.next_json();
    EXPECT_EQ(again.at("type"), "unsubscribed") << json::serialize(again);
    EXPECT_EQ(as_int(again.at("id")), 5);
}

TEST(pubsub, subscribe_accepts_the_single_channel_form) {
    gateway_process gw;
    auto alice = connect_dev_user(gw.port(), "alice");
    auto bob = connect_dev_user(gw.port(), "bob");
    json::object p;
    p["channel"] = "room:single";
    bob.send_json(make_frame("subscribe", 1, p));
    const auto reply = bob.next_json();
    EXPECT_EQ(reply.at("type"), "subscribed") << json::serialize(reply);
    EXPECT_EQ(as_int(reply.at("id")), 1);
    EXPECT_EQ(as_strings(payload_of(reply).at("channels")),
              std::vector<std::string>{"room:single"});
    publish(alice, 2, "room:single", "x");
    EXPECT_EQ(payload_of(bob.expect_json("message")).at("channel"), "room:single");
}

TEST(pubsub, subscribing_twice_is_not_an_error_and_delivers_once) {
    gateway_process gw;
    auto alice = connect_dev_user(gw.port(), "alice");
    auto bob = connect_dev_user(gw.port(), "bob");
    ASSERT_NO_FATAL_FAILURE(subscribe(bob, 1, {"twice"}));
    ASSERT_NO_FATAL_FAILURE(subscribe(bob, 2, {"twice"}));
    publish(alice, 3, "twice", 1);
    publish(alice, 4, "twice", 2);
    const auto first = bob.next_json();
    EXPECT_EQ(payload_of(first).at("data"), 1) << json::serialize(first);
    const auto second = bob.next_json();
    EXPECT_EQ(payload_of(second).at("data"), 2) << "a second copy? " << json::serialize(second);
}

TEST(pubsub, bad_channel_names_are_refused_and_the_connection_stays_open) {
    gateway_process gw;
    auto bob = connect_dev_user(gw.port(), "bob");
    const std::vector<std::string> bad = {
        "has space",           "hash#tag", "star*", "qu\"ote", "caf\xc3\xa9", "new\nline",
        std::string(201, 'x'),
    };
    std::int64_t id = 0;
    for (const auto& name : bad) {
        bob.send_json(subscribe_frame(++id, {name}));
        const auto reply = bob.next_json();
        EXPECT_EQ(reply.at("type"), "error") << json::serialize(reply);
        EXPECT_EQ(error_code_of(reply), "bad_channel") << json::serialize(reply);
        EXPECT_EQ(as_int(reply.at("id")), id) << json::serialize(reply);
    }
    // Every allowed character, and the longest allowed name.
    ASSERT_NO_FATAL_FAILURE(subscribe(bob, ++id, {"AZaz09_-.:@/=,"}));
    ASSERT_NO_FATAL_FAILURE(subscribe(bob, ++id, {std::string(200, 'y')}));

    // Publishing to a bad channel is refused the same way.
    bob.send_json(publish_frame(++id, "bad channel", 1));
    const auto reply = bob.next_json();
    EXPECT_EQ(error_code_of(reply), "bad_channel") << json::serialize(reply);
    EXPECT_EQ(as_int(reply.at("id")), id);
}

TEST(pubsub, subscribe_is_all_or_nothing) {
    gateway_process gw;
    auto alice = connect_dev_user(gw.port(), "alice");
    auto bob = connect_dev_user(gw.port(), "bob");
    bob.send_json(subscribe_frame(1, {"good:1", "bad name", "good:2"}));
    const auto reply = bob.next_json();
    EXPECT_EQ(error_code_of(reply), "bad_channel") << json::serialize(reply);

    ASSERT_NO_FATAL_FAILURE(subscribe(bob, 2, {"probe"}));
    publish(alice, 3, "good:1", "leaked");
    publish(alice, 4, "good:2", "leaked");
    publish(alice, 5, "probe", "expected");
    const auto msg = bob.next_json();
    EXPECT_EQ(payload_of(msg).at("channel"), "probe")
        << "good:1/good:2 must not have been subscribed: " << json::serialize(msg);
}

TEST(pubsub, too_many_channels_is_refused_and_nothing_is_subscribed) {
    gateway_process gw({"--max-channels", "3"});
    auto alice = connect_dev_user(gw.port(), "alice");
    auto bob = connect_dev_user(gw.port(), "bob");
    ASSERT_NO_FATAL_FAILURE(subscribe(bob, 1, {"c1", "c2"}));
    bob.send_json(subscribe_frame(2, {"c3", "c4"}));
    const auto reply = bob.next_json();
    EXPECT_EQ(reply.at("type"), "error") << json::serialize(reply);
    EXPECT_EQ(error_code_of(reply), "too_many_channels") << json::serialize(reply);
    EXPECT_EQ(as_int(reply.at("id")), 2);

    // c3 was not subscribed (all or nothing) and there is still room for exactly one.
    publish(alice, 3, "c3", "leaked");
    ASSERT_NO_FATAL_FAILURE(subscribe(bob, 4, {"c5"}));
    publish(alice, 5, "c5", "expected");
    const auto msg = bob.next_json();
    EXPECT_EQ(payload_of(msg).at("channel"), "c5") << json::serialize(msg);
}

TEST(pubsub, direct_message_reaches_the_user_and_is_acked) {
    gateway_process gw;
    auto alice = connect_dev_user(gw.port(), "alice");
    auto bob = connect_ready_user(gw.port(), "bob");
    alice.send_json(direct_frame(5, "bob", json::parse(R"({"text":"hi bob"})")));
    const auto ack = alice.next_json();
    EXPECT_EQ(ack.at("type"), "ack") << json::serialize(ack);
    EXPECT_EQ(as_int(ack.at("id")), 5);
    EXPECT_EQ(payload_of(ack).at("to"), "bob");

    const auto msg = bob.next_json();
    EXPECT_EQ(msg.at("type"), "direct") << json::serialize(msg);
    const auto& p = payload_of(msg);
    EXPECT_EQ(p.at("from"), "alice");
    ASSERT_TRUE(p.at("ts").is_string()) << json::serialize(msg);
    EXPECT_TRUE(is_rfc3339_utc_millis(p.at("ts").as_string())) << p.at("ts");
    EXPECT_EQ(p.at("data"), json::parse(R"({"text":"hi bob"})"));
}

TEST(pubsub, direct_message_to_an_offline_user_is_user_offline) {
    gateway_process gw;
    auto alice = connect_dev_user(gw.port(), "alice");
    alice.send_json(direct_frame(9, "nobody-here", "hello?"));
    const auto reply = alice.next_json();
    EXPECT_EQ(reply.at("type"), "error") << json::serialize(reply);
    EXPECT_EQ(error_code_of(reply), "user_offline") << json::serialize(reply);
    EXPECT_EQ(as_int(reply.at("id")), 9);

    // A user whose only connection closed is offline again.
    {
        auto carol = connect_ready_user(gw.port(), "carol");
        const auto closed = carol.close();
        ASSERT_EQ(closed.what, ws_event::kind::closed) << closed.describe();
    }
    ASSERT_TRUE(wait_until([&] {
        alice.send_json(direct_frame(10, "carol", 1));
        const auto r = alice.next_json();
        return error_code_of(r) == "user_offline";
    })) << "carol still counted online after her connection closed";
}

TEST(pubsub, direct_message_reaches_every_connection_of_the_user) {
    gateway_process gw({"--workers", "3"});
    auto alice = connect_dev_user(gw.port(), "alice");
    std::vector<ws_client> bobs;
    for (int i = 0; i < 4; ++i) bobs.push_back(connect_ready_user(gw.port(), "bob"));
    alice.send_json(direct_frame(1, "bob", "to all of bob"));
    EXPECT_EQ(alice.next_json().at("type"), "ack");
    for (std::size_t i = 0; i < bobs.size(); ++i) {
        const auto msg = bobs[i].next_json();
        EXPECT_EQ(msg.at("type"), "direct") << "connection " << i << ": " << json::serialize(msg);
        EXPECT_EQ(payload_of(msg).at("data"), "to all of bob") << "connection " << i;
    }
}

TEST(pubsub, every_subscriber_on_every_worker_gets_every_message_in_seq_order) {
    gateway_process gw({"--workers", "4"});
    constexpr int subscriber_count = 20;
    constexpr int message_count = 50;
    std::vector<ws_client> subscribers;
    for (int i = 0; i < subscriber_count; ++i) {
        subscribers.push_back(connect_dev_user(gw.port(), "user" + std::to_string(i)));
        ASSERT_NO_FATAL_FAILURE(subscribe(subscribers.back(), 1, {"fanout"}));
    }
    auto publisher = connect_dev_user(gw.port(), "publisher");
    for (int n = 0; n < message_count; ++n) {
        json::object data;
        data["n"] = n;
        publisher.send_json(publish_frame(1000 + n, "fanout", data));
    }
    for (int n = 0; n < message_count; ++n) {
        const auto ack = publisher.next_json();
        ASSERT_EQ(ack.at("type"), "ack") << json::serialize(ack);
        EXPECT_EQ(as_int(ack.at("id")), 1000 + n);
        EXPECT_EQ(as_int(payload_of(ack).at("seq")), n + 1);
    }
    for (int i = 0; i < subscriber_count; ++i) {
        for (int n = 0; n < message_count; ++n) {
            const auto msg = subscribers[static_cast<std::size_t>(i)].next_json();
            ASSERT_EQ(msg.at("type"), "message")
                << "subscriber " << i << ": " << json::serialize(msg);
            const auto& p = payload_of(msg);
            ASSERT_EQ(as_int(p.at("seq")), n + 1)
                << "subscriber " << i << " got messages out of order: " << json::serialize(msg);
            ASSERT_EQ(as_int(p.at("data").as_object().at("n")), n) << json::serialize(msg);
            EXPECT_EQ(p.at("from"), "publisher");
        }
    }
}

// The upgrade answer means the connection is open and, with `?user_id=`, authenticated; a
// direct message sent to the user right after must reach it (docs/protocol.md: "every
// connection of user bob receives"). Repeated because it is a race when it fails.
TEST(pubsub, direct_message_right_after_the_upgrade_reaches_the_new_connection) {
    gateway_process gw({"--workers", "2"});
    auto alice = connect_ready_user(gw.port(), "alice");
    int missed = 0;
    constexpr int attempts = 1000;
    for (int i = 0; i < attempts; ++i) {
        const std::string user = "fresh" + std::to_string(i);
        auto fresh = connect_dev_user(gw.port(), user);
        alice.send_json(direct_frame(i, user, i));
        const auto reply = alice.next_json();
        if (reply.at("type") != "ack") {
            ++missed;
            continue;
        }
        const auto got = fresh.next_json();
        EXPECT_EQ(payload_of(got).at("data"), i) << json::serialize(got);
    }
    EXPECT_EQ(missed, 0) << missed << " of " << attempts
                         << " direct messages sent right after the user's upgrade completed "
                            "were refused with user_offline";
}
