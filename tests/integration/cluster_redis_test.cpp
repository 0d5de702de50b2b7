// Several real wsgate nodes through a real redis-server (docs/adr/0003-redis-broker.md): channels
// and direct messages cross nodes, seq is shared by all nodes, and a Redis restart degrades the
// nodes visibly and heals by itself.

#include "support/cluster_nodes.hpp"
#include "support/delay_proxy.hpp"
#include "support/frames.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/prometheus_text.hpp"
#include "support/redis_process.hpp"
#include "support/ws_client.hpp"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include <signal.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace wsgate::test;
namespace json = boost::json;
using std::chrono::milliseconds;

namespace {

std::unique_ptr<gateway_process> start_node(std::string redis_url, std::string node_id,
                                            std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--redis-url", std::move(redis_url), "--node-id",
                                  std::move(node_id)};
    args.insert(args.end(), extra.begin(), extra.end());
    return std::make_unique<gateway_process>(std::move(args));
}

std::unique_ptr<gateway_process> start_node(const redis_process& redis, std::string node_id,
                                            std::vector<std::string> extra = {}) {
    return start_node(redis.url(), std::move(node_id), std::move(extra));
}

// A node that reaches Redis through `link` (a delay_proxy in front of it).
std::unique_ptr<gateway_process> start_node(const delay_proxy& link, std::string node_id) {
    return start_node("redis://127.0.0.1:" + std::to_string(link.port()), std::move(node_id));
}

// n1 and n2 on `redis` with presence kept for "room:" channels (and `extra` flags), both up;
// alice on n1 and bob on n2, both subscribed to `channel`.
struct members_on_two_nodes {
    members_on_two_nodes(const redis_process& redis, std::vector<std::string> extra,
                         std::string_view channel) {
        extra.insert(extra.begin(), {"--presence-prefixes", "room:"});
        n1 = start_node(redis, "n1", extra);
        n2 = start_node(redis, "n2", extra);
        EXPECT_TRUE(wait_until([&] { return broker_up(*n1) && broker_up(*n2); }));
        alice = connect_as(n1->port(), "alice");
        bob = connect_as(n2->port(), "bob");
        subscribe(alice, channel);
        subscribe(bob, channel);
    }

    std::unique_ptr<gateway_process> n1, n2;
    ws_client alice, bob;
};

}  // namespace

TEST(cluster, nodes_report_the_redis_broker_in_health) {
    redis_process redis;
    auto node = start_node(redis, "n1");
    ASSERT_TRUE(wait_until([&] { return broker_up(*node); })) << json::serialize(health(*node));
    const auto h = health(*node);
    EXPECT_EQ(h.at("status").as_string(), "ok");
    EXPECT_EQ(h.at("broker_kind").as_string(), "redis");
    const auto text = http_get(node->port(), "/metrics").body;
    EXPECT_EQ(metric_value(text, "wsgate_redis_servers"), 1.0);
    EXPECT_EQ(metric_value(text, "wsgate_redis_servers_up"), 1.0);
    EXPECT_EQ(metric_value(text, "wsgate_redis_moved_total"), 0.0);
}

TEST(cluster, a_channel_message_reaches_subscribers_on_every_node_with_one_shared_seq) {
    redis_process redis;
    auto n1 = start_node(redis, "n1");
    auto n2 = start_node(redis, "n2");
    auto alice = connect_as(n1->port(), "alice");
    auto bob = connect_as(n2->port(), "bob");
    subscribe(alice, "room:x");
    subscribe(bob, "room:x");
    await_route(alice, bob, "room:x");
    await_route(bob, alice, "room:x");

    // Interleaved publishers on both nodes: both subscribers see every message, and the seq
    // each one carries is the same on both sides and strictly increasing.
    std::vector<std::int64_t> seen_by_alice, seen_by_bob;
    for (int i = 0; i < 10; ++i) {
        auto& publisher = i % 2 == 0 ? alice : bob;
        publisher.send_json(publish_frame(100 + i, "room:x", json::object{{"n", i}}));
    }
    for (int i = 0; i < 10; ++i) {
        seen_by_alice.push_back(seq_of(alice, "room:x", json::object{{"n", i}}));
        seen_by_bob.push_back(seq_of(bob, "room:x", json::object{{"n", i}}));
    }
    EXPECT_EQ(seen_by_alice, seen_by_bob);
    for (std::size_t i = 1; i < seen_by_alice.size(); ++i) {
        EXPECT_NE(seen_by_alice[i], seen_by_alice[i - 1]);
    }
    // Each publisher's own messages arrive in its publishing order (seq increases).
    for (std::size_t i = 2; i < seen_by_alice.size(); ++i) {
        EXPECT_GT(seen_by_alice[i], seen_by_alice[i - 2]);
    }
}

TEST(cluster, direct_messages_cross_nodes_and_reach_every_connection_of_the_user) {
    redis_process redis;
    auto n1 = start_node(redis, "n1");
    auto n2 = start_node(redis, "n2");
    auto n3 = start_node(redis, "n3");
    auto alice = connect_as(n1->port(), "alice");
    auto bob_on_2 = connect_as(n2->port(), "bob");
    auto bob_on_3 = connect_as(n3->port(), "bob");

    ASSERT_TRUE(await_direct_route(alice, "bob", {&bob_on_2, &bob_on_3}));

    alice.send_json(direct_frame(7, "bob", json::object{{"text", "hi bob"}}));
    const auto ack = alice.reply_to(7);
    ASSERT_EQ(ack.at("type").as_string(), "ack") << json::serialize(ack);
    EXPECT_EQ(payload_of(ack).at("to").as_string(), "bob");
    for (auto* bob : {&bob_on_2, &bob_on_3}) {
        const auto m = bob->expect_json("direct", milliseconds{5000}, [](const json::object& f) {
            return f.at("payload").as_object().at("data").is_object();
        });
        EXPECT_EQ(payload_of(m).at("from").as_string(), "alice");
        EXPECT_EQ(payload_of(m).at("data"), (json::object{{"text", "hi bob"}}));
    }

    // Seed 002's frame crosses nodes too.
    alice.send_text(R"({"type":"message","to":"bob","content":"seed hello"})");
    const auto legacy =
        bob_on_2.expect_json("message", milliseconds{5000}, [](const json::object& f) {
            return f.contains("content") && f.at("content") == json::string("seed hello");
        });
    EXPECT_EQ(legacy.at("from").as_string(), "alice");

    // Nobody anywhere: user_offline.
    alice.send_json(direct_frame(8, "carol", json::string("anyone?")));
    EXPECT_EQ(error_code_of(alice.reply_to(8)), "user_offline");
}

TEST(cluster, a_user_who_leaves_every_node_is_offline) {
    redis_process redis;
    auto n1 = start_node(redis, "n1");
    auto n2 = start_node(redis, "n2");
    auto alice = connect_as(n1->port(), "alice");
    {
        auto bob = connect_as(n2->port(), "bob");
        ASSERT_TRUE(await_direct_route(alice, "bob", {&bob}));
        bob.close();
    }
    // n2 unsubscribes bob's channel once his last connection is gone.
    std::int64_t id = 20'000;
    ASSERT_TRUE(wait_until([&] {
        alice.send_json(direct_frame(++id, "bob", json::string("still there?")));
        return error_code_of(alice.reply_to(id)) == "user_offline";
    }));
}

TEST(cluster, redis_restart_degrades_nodes_visibly_and_they_recover_by_themselves) {
    redis_process redis;
    auto n1 = start_node(redis, "n1");
    auto n2 = start_node(redis, "n2");
    auto alice = connect_as(n1->port(), "alice");
    auto bob = connect_as(n2->port(), "bob");
    subscribe(alice, "room:r");
    subscribe(bob, "room:r");
    await_route(alice, bob, "room:r");

    redis.kill();
    ASSERT_TRUE(wait_until([&] { return !broker_up(*n1) && !broker_up(*n2); }));
    EXPECT_EQ(health(*n1).at("status").as_string(), "degraded");

    // A publish that cannot reach Redis is refused, never dropped silently.
    alice.send_json(publish_frame(20, "room:r", json::string("lost?")));
    EXPECT_EQ(error_code_of(alice.reply_to(20)), "broker_unavailable");
    // Local service goes on: the node still answers.
    alice.send_json(ping_frame(21));
    EXPECT_EQ(alice.reply_to(21).at("type").as_string(), "pong");

    redis.restart();
    ASSERT_TRUE(wait_until([&] { return broker_up(*n1) && broker_up(*n2); }, milliseconds{15000}));
    EXPECT_EQ(health(*n1).at("status").as_string(), "ok");

    // Both nodes resubscribed: messages cross again, without any client resubscribing.
    await_route(alice, bob, "room:r");
    bob.send_json(publish_frame(22, "room:r", json::string("after restart")));
    seq_of(alice, "room:r", json::string("after restart"));
}

TEST(cluster, after_a_node_is_killed_its_users_are_reached_where_they_reconnect) {
    redis_process redis;
    auto n1 = start_node(redis, "n1");
    auto n2 = start_node(redis, "n2");
    auto n3 = start_node(redis, "n3");
    auto alice = connect_as(n1->port(), "alice");
    auto bob = connect_as(n2->port(), "bob");
    ASSERT_TRUE(await_direct_route(alice, "bob", {&bob}));
    ASSERT_TRUE(await_direct_route(bob, "alice", {&alice}));

    n1->send_signal(SIGKILL);
    ASSERT_TRUE(n1->wait_exit(milliseconds{5000}).has_value());
    EXPECT_TRUE(alice.expect_close(milliseconds{5000}).ended());

    // Redis dropped n1's subscriptions with its connections: nothing routes to the dead node,
    // and alice, back on n3, gets bob's next direct message.
    auto alice_again = connect_as(n3->port(), "alice");
    ASSERT_TRUE(await_direct_route(bob, "alice", {&alice_again}));
    bob.send_json(direct_frame(40, "alice", json::string("welcome back")));
    EXPECT_EQ(bob.reply_to(40).at("type").as_string(), "ack");
    const auto m = alice_again.expect_json("direct", milliseconds{5000}, [](const json::object& f) {
        return f.at("payload").as_object().at("data") == json::string("welcome back");
    });
    EXPECT_EQ(payload_of(m).at("from").as_string(), "bob");

    // And the other way round, from the node alice moved to.
    alice_again.send_json(direct_frame(41, "bob", json::string("hi from n3")));
    EXPECT_EQ(alice_again.reply_to(41).at("type").as_string(), "ack");
    bob.expect_json("direct", milliseconds{5000}, [](const json::object& f) {
        return f.at("payload").as_object().at("data") == json::string("hi from n3");
    });
}

TEST(cluster, nodes_see_each_other_and_a_dead_node_leaves_the_registry_after_its_ttl) {
    redis_process redis;
    const std::vector<std::string> fast{"--presence-refresh", "0.1", "--presence-ttl", "0.5"};
    auto n1 = start_node(redis, "n1", fast);
    auto n2 = start_node(redis, "n2", fast);
    auto n3 = start_node(redis, "n3", fast);
    auto alice = connect_as(n1->port(), "alice");

    auto node_ids = [&](const gateway_process& node) {
        const auto doc = http_get(node.port(), "/cluster").json();
        std::map<std::string, std::int64_t> ids;  // node id -> connections
        for (const auto& n : doc.as_object().at("nodes").as_array()) {
            const auto& o = n.as_object();
            EXPECT_TRUE(is_rfc3339_utc_millis(o.at("last_seen").as_string()));
            ids[std::string(o.at("node_id").as_string())] = as_int(o.at("connections"));
        }
        return ids;
    };
    ASSERT_TRUE(wait_until([&] { return node_ids(*n2).size() == 3; }))
        << json::serialize(http_get(n2->port(), "/cluster").json());
    // Each node reports its own connection count in its beat.
    ASSERT_TRUE(wait_until([&] { return node_ids(*n2)["n1"] == 1; }));
    EXPECT_EQ(node_ids(*n2)["n2"], 0);

    n1->send_signal(SIGKILL);
    ASSERT_TRUE(n1->wait_exit(milliseconds{5000}).has_value());
    // Nobody removes n1 on its way out: the others drop it once its TTL has passed, and each
    // node's view follows at its next heartbeat.
    for (auto* node : {n2.get(), n3.get()}) {
        ASSERT_TRUE(wait_until([&] {
            const auto ids = node_ids(*node);
            return ids.size() == 2 && ids.count("n1") == 0;
        }));
    }
}

TEST(cluster, a_lone_node_on_the_embedded_broker_lists_itself) {
    gateway_process node({"--node-id", "solo"});
    const auto r = http_get(node.port(), "/cluster").json().as_object();
    const auto& nodes = r.at("nodes").as_array();
    ASSERT_EQ(nodes.size(), 1u);
    EXPECT_EQ(nodes[0].as_object().at("node_id").as_string(), "solo");
}

// "subscribed" is sent once the node's Redis subscription is confirmed, so a message published
// right after it, from any node, arrives: no probing needed. n2 reaches Redis through a proxy
// that holds its commands back 150 ms, so a "subscribed" sent before Redis had the SUBSCRIBE
// would let alice's publish (from n1, straight to Redis) overtake it and be lost.
TEST(cluster, after_subscribed_a_message_from_another_node_is_never_missed) {
    redis_process redis;
    delay_proxy slow_link(redis.port(), milliseconds{150});
    auto n1 = start_node(redis, "n1");
    auto n2 = start_node(slow_link, "n2");
    ASSERT_TRUE(wait_until([&] { return broker_up(*n1) && broker_up(*n2); }));
    auto alice = connect_as(n1->port(), "alice");
    auto bob = connect_as(n2->port(), "bob");
    for (int i = 0; i < 5; ++i) {
        const std::string channel = "fresh:" + std::to_string(i);
        bob.send_json(subscribe_frame(1000 + i, {channel}));
        EXPECT_EQ(bob.reply_to(1000 + i).at("type").as_string(), "subscribed");
        alice.send_json(publish_frame(2000 + i, channel, json::value(i)));
        EXPECT_EQ(alice.reply_to(2000 + i).at("type").as_string(), "ack");
        EXPECT_EQ(seq_of(bob, channel, json::value(i)), 1) << channel;
    }
}

// auth.success is sent once the user's own channel is live across the cluster, so a direct
// message sent to that user right after it is delivered, even when the user's node reaches
// Redis through a slow link.
TEST(cluster, after_auth_success_direct_messages_reach_the_new_connection) {
    redis_process redis;
    delay_proxy slow_link(redis.port(), milliseconds{150});
    auto n1 = start_node(redis, "n1");
    auto n2 = start_node(slow_link, "n2");
    ASSERT_TRUE(wait_until([&] { return broker_up(*n1) && broker_up(*n2); }));
    auto alice = connect_as(n1->port(), "alice");
    for (int i = 0; i < 3; ++i) {
        const std::string user = "bob" + std::to_string(i);
        ws_client bob;
        bob.connect(n2->port(), "/ws");
        bob.send_json(auth_user_frame(1, user));
        EXPECT_EQ(bob.reply_to(1).at("type").as_string(), "auth.success");
        alice.send_json(direct_frame(3000 + i, user, json::string("right away")));
        EXPECT_EQ(alice.reply_to(3000 + i).at("type").as_string(), "ack");
        bob.expect_json("direct");
    }
    // Authenticated by the upgrade itself (?user_id= here, ?token= or a Bearer header with
    // JWT): the 101 is the "auth.success", and it waits for the same confirmation.
    for (int i = 0; i < 3; ++i) {
        const std::string user = "carol" + std::to_string(i);
        auto carol = connect_as(n2->port(), user);
        alice.send_json(direct_frame(4000 + i, user, json::string("right away")));
        EXPECT_EQ(alice.reply_to(4000 + i).at("type").as_string(), "ack");
        carol.expect_json("direct");
    }
}

TEST(cluster, presence_spans_nodes_and_a_dead_nodes_users_leave_after_its_ttl) {
    redis_process redis;
    members_on_two_nodes t(redis, {"--presence-refresh", "0.1", "--presence-ttl", "0.5"}, "room:p");
    auto& [n1, n2, alice, bob] = t;
    // bob joined on n2; alice on n1 hears it through Redis.
    alice.expect_json("join", milliseconds{5000}, [](const json::object& f) {
        return payload_of(f).at("user_id").as_string() == "bob";
    });

    auto members_seen_by = [&](ws_client& c, int id) {
        c.send_json(make_frame("presence", id, {{"channel", "room:p"}}));
        std::map<std::string, std::int64_t> out;
        const auto reply = c.reply_to(id);
        for (const auto& m : payload_of(reply).at("members").as_array()) {
            out[std::string(m.as_object().at("user_id").as_string())] =
                as_int(m.as_object().at("connections"));
        }
        return out;
    };
    const std::map<std::string, std::int64_t> both{{"alice", 1}, {"bob", 1}};
    EXPECT_EQ(members_seen_by(alice, 10), both);
    EXPECT_EQ(members_seen_by(bob, 10), both);

    // n2 dies without a word: the others' heartbeats drop it after its TTL, bob leaves.
    n2->send_signal(SIGKILL);
    ASSERT_TRUE(n2->wait_exit(milliseconds{5000}).has_value());
    alice.expect_json("leave", milliseconds{5000}, [](const json::object& f) {
        return payload_of(f).at("user_id").as_string() == "bob";
    });
    EXPECT_EQ(members_seen_by(alice, 11), (std::map<std::string, std::int64_t>{{"alice", 1}}));
    // n1 did that cleanup, and counts it.
    EXPECT_TRUE(wait_until([&] {
        const auto text = http_get(n1->port(), "/metrics").body;
        return metric_value(text, "wsgate_redis_dead_runs_cleaned_total").value_or(0) >= 1.0;
    }));
}

// Per-user presence (seed 002): every connection of a user, on every node, until the last one
// goes; a killed node's connections are dropped by the others after its TTL.
TEST(cluster, user_presence_spans_nodes_and_a_dead_nodes_connections_go_after_its_ttl) {
    redis_process redis;
    const std::vector<std::string> fast{"--presence-refresh", "0.2", "--presence-ttl", "1"};
    auto n1 = start_node(redis, "n1", fast);
    auto n2 = start_node(redis, "n2", fast);
    auto n3 = start_node(redis, "n3", fast);
    ASSERT_TRUE(wait_until([&] { return broker_up(*n1) && broker_up(*n2) && broker_up(*n3); }));
    auto connections_of_alice = [&] {
        const auto r = http_get(n3->port(), "/api/users/alice/presence");
        EXPECT_EQ(r.status, 200) << r.body;
        std::map<std::string, int> by_node;
        const auto doc = r.json();
        for (const auto& c : doc.as_object().at("connections").as_array()) {
            ++by_node[std::string(c.as_object().at("node_id").as_string())];
        }
        EXPECT_EQ(doc.as_object().at("online").as_bool(), !by_node.empty());
        return by_node;
    };
    auto alice_on_1 = connect_as(n1->port(), "alice");
    auto alice_on_2 = connect_as(n2->port(), "alice");
    auto alice_again_on_2 = connect_as(n2->port(), "alice");
    ASSERT_TRUE(wait_until([&] {
        return connections_of_alice() == std::map<std::string, int>{{"n1", 1}, {"n2", 2}};
    }));
    // For longer than the TTL, polled all along, nothing is lost: the nodes refresh what they
    // hold.
    EXPECT_FALSE(wait_until(
        [&] {
            return connections_of_alice() != std::map<std::string, int>{{"n1", 1}, {"n2", 2}};
        },
        milliseconds{1500}));

    n1->send_signal(SIGKILL);
    ASSERT_TRUE(n1->wait_exit(milliseconds{5000}).has_value());
    ASSERT_TRUE(wait_until([&] {
        return connections_of_alice() == std::map<std::string, int>{{"n2", 2}};
    }));
    alice_on_2.close();
    alice_again_on_2.close();
    ASSERT_TRUE(wait_until([&] { return connections_of_alice().empty(); }));
}

// A node refreshes its users' presence in batches across event-loop turns; every user, not
// just the first batch, stays online for longer than the TTL.
TEST(cluster, every_user_of_a_node_stays_online_past_the_ttl) {
    redis_process redis;
    auto n1 = start_node(redis, "n1", {"--presence-refresh", "0.2", "--presence-ttl", "1"});
    ASSERT_TRUE(wait_until([&] { return broker_up(*n1); }));
    std::vector<ws_client> users;
    constexpr int count = 600;  // more than two batches
    auto name = [](int i) { return "user" + std::to_string(i); };
    for (int i = 0; i < count; ++i) users.push_back(connect_as(n1->port(), name(i)));
    auto online = [&](int i) {
        const auto r = http_get(n1->port(), "/api/users/" + name(i) + "/presence");
        return r.status == 200 && r.json().as_object().at("online").as_bool();
    };
    ASSERT_TRUE(wait_until([&] { return online(count - 1); }));
    // For three TTLs, users asked in turn (each about five times) are all online...
    int next = 0;
    EXPECT_FALSE(wait_until([&] { return !online(next++ % count); }, milliseconds{3000}))
        << name((next - 1) % count) << " went offline";
    // ... and so is every one at the end.
    int offline = 0;
    for (int i = 0; i < count; ++i) offline += online(i) ? 0 : 1;
    EXPECT_EQ(offline, 0);
}

// A node stopped with SIGTERM leaves at once: out of /cluster, its users' presence gone and
// their leaves announced, long before its TTL (30 s here) would have done it.
TEST(cluster, a_node_shut_down_gracefully_leaves_the_cluster_at_once) {
    redis_process redis;
    members_on_two_nodes t(redis, {"--presence-refresh", "0.2", "--presence-ttl", "30"}, "room:g");
    auto& [n1, n2, alice, bob] = t;
    auto cluster_size = [&] {
        const auto doc = http_get(n2->port(), "/cluster").json();
        return doc.as_object().at("nodes").as_array().size();
    };
    ASSERT_TRUE(wait_until([&] { return cluster_size() == 2; }));

    n1->send_signal(SIGTERM);
    ASSERT_TRUE(n1->wait_exit(milliseconds{10000}).has_value());
    bob.expect_json("leave", milliseconds{5000}, [](const json::object& f) {
        return payload_of(f).at("user_id").as_string() == "alice";
    });
    EXPECT_TRUE(wait_until([&] { return cluster_size() == 1; }, milliseconds{3000}));
    const auto r = http_get(n2->port(), "/api/users/alice/presence");
    EXPECT_FALSE(r.json().as_object().at("online").as_bool()) << r.body;
}
