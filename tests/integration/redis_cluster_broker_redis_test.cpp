// wsgate nodes on a real Redis Cluster (3 masters, 1 replica each, from Debian's redis-server):
// channels go through sharded pub/sub on the master that owns their slot, direct messages and
// presence work across nodes, and a failover, a killed master or a resharding step moves the
// subscriptions without any client noticing more than a short pause.

#include "support/cluster_nodes.hpp"
#include "support/frames.hpp"
#include "support/gateway_process.hpp"
#include "support/http_client.hpp"
#include "support/prometheus_text.hpp"
#include "support/redis_cluster.hpp"
#include "support/ws_client.hpp"

#include <gtest/gtest.h>

#include <boost/json/serialize.hpp>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

using namespace wsgate::test;
namespace json = boost::json;
using std::chrono::milliseconds;

namespace {

std::unique_ptr<gateway_process> start_cluster_node(redis_cluster& redis, std::string node_id,
                                                    std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"--redis-cluster", redis.seed_nodes(), "--node-id",
                                  std::move(node_id)};
    args.insert(args.end(), extra.begin(), extra.end());
    auto node = std::make_unique<gateway_process>(std::move(args));
    EXPECT_TRUE(wait_until([&] { return broker_up(*node); }, milliseconds{10'000}))
        << json::serialize(health(*node));
    return node;
}

// The sharded channels subscribed on the master at `port` (PUBSUB SHARDCHANNELS).
std::set<std::string> shard_channels(redis_cluster& redis, std::uint16_t port) {
    std::set<std::string> out;
    const auto text = redis.cli(port, {"PUBSUB", "SHARDCHANNELS"});
    std::size_t start = 0;
    while (start < text.size()) {
        auto end = text.find('\n', start);
        if (end == std::string::npos) end = text.size();
        if (end > start) out.insert(text.substr(start, end - start));
        start = end + 1;
    }
    return out;
}

// Publishes `count` numbered messages on `channel` from `publisher` (each acked) and checks
// that `subscriber` gets them all, in order, with increasing seq.
void expect_delivered_in_order(ws_client& publisher, ws_client& subscriber,
                               std::string_view channel, int first_id, int count) {
    std::vector<std::int64_t> seqs;
    for (int i = 0; i < count; ++i) {
        publisher.send_json(publish_frame(first_id + i, channel, json::object{{"n", i}}));
        const auto reply = publisher.reply_to(first_id + i);
        ASSERT_EQ(reply.at("type").as_string(), "ack") << json::serialize(reply);
    }
    for (int i = 0; i < count; ++i) {
        seqs.push_back(seq_of(subscriber, channel, json::object{{"n", i}}));
        if (i > 0) {
            EXPECT_GT(seqs[i], seqs[i - 1]);
        }
    }
}

// Channels whose slots land on every master: room:0, room:1, ... until each master has one.
std::vector<std::string> channels_on_every_master(redis_cluster& redis) {
    std::map<std::uint16_t, std::string> by_master;
    const auto masters = redis.master_ports();
    for (int i = 0; by_master.size() < masters.size() && i < 1000; ++i) {
        const std::string channel = "room:" + std::to_string(i);
        by_master.try_emplace(
            redis.master_of_slot(redis_cluster::key_slot("wsgate:ch:{" + channel + "}")), channel);
    }
    std::vector<std::string> out;
    for (const auto& [port, channel] : by_master) out.push_back(channel);
    return out;
}

// Two nodes on `redis`: alice on n1 publishes to `channel`, bob on n2 is subscribed, and the
// first messages went through. `name` is the channel's Redis name, `slot` its hash slot.
struct publisher_and_subscriber {
    publisher_and_subscriber(redis_cluster& redis, std::string channel_name)
        : n1(start_cluster_node(redis, "n1")),
          n2(start_cluster_node(redis, "n2")),
          alice(connect_as(n1->port(), "alice")),
          bob(connect_as(n2->port(), "bob")),
          channel(std::move(channel_name)),
          name("wsgate:ch:{" + channel + "}"),
          slot(redis_cluster::key_slot(name)) {
        subscribe(bob, channel);
        expect_delivered_in_order(alice, bob, channel, 100, 3);
    }

    std::unique_ptr<gateway_process> n1, n2;
    ws_client alice, bob;
    std::string channel, name;
    std::uint16_t slot;
};

}  // namespace

TEST(redis_cluster_broker, channels_cross_nodes_through_sharded_pubsub_on_every_master) {
    redis_cluster redis;
    auto n1 = start_cluster_node(redis, "n1");
    auto n2 = start_cluster_node(redis, "n2");
    EXPECT_EQ(health(*n1).at("broker_kind").as_string(), "redis-cluster");

    auto alice = connect_as(n1->port(), "alice");
    auto bob = connect_as(n2->port(), "bob");
    const auto channels = channels_on_every_master(redis);
    ASSERT_EQ(channels.size(), 3u);
    for (const auto& channel : channels) {
        subscribe(bob, channel);
        // "subscribed" means the subscription is live: no probing needed.
        expect_delivered_in_order(alice, bob, channel, 100, 5);
    }
    // Each channel is a sharded channel on the master that owns its slot, and only there.
    for (const auto& channel : channels) {
        const std::string name = "wsgate:ch:{" + channel + "}";
        const auto owner = redis.master_of_slot(redis_cluster::key_slot(name));
        for (const auto port : redis.master_ports()) {
            EXPECT_EQ(shard_channels(redis, port).count(name), port == owner ? 1u : 0u)
                << name << " on " << port;
        }
    }
    // Leaving a channel unsubscribes it on its master.
    bob.send_json(unsubscribe_frame(50, {channels[0]}));
    EXPECT_EQ(bob.reply_to(50).at("type").as_string(), "unsubscribed");
    const std::string name = "wsgate:ch:{" + channels[0] + "}";
    const auto owner = redis.master_of_slot(redis_cluster::key_slot(name));
    EXPECT_TRUE(wait_until([&] { return shard_channels(redis, owner).count(name) == 0; }));
}

TEST(redis_cluster_broker, direct_messages_and_presence_work_across_nodes) {
    redis_cluster redis;
    const std::vector<std::string> opts{"--presence-prefixes", "room:"};
    auto n1 = start_cluster_node(redis, "n1", opts);
    auto n2 = start_cluster_node(redis, "n2", opts);
    auto alice = connect_as(n1->port(), "alice");
    auto bob = connect_as(n2->port(), "bob");

    alice.send_json(direct_frame(1, "bob", json::string("hi bob")));
    EXPECT_EQ(alice.reply_to(1).at("type").as_string(), "ack");
    bob.expect_json("direct", milliseconds{5000}, [](const json::object& f) {
        return payload_of(f).at("data") == json::string("hi bob");
    });
    bob.send_json(direct_frame(2, "alice", json::string("hi alice")));
    EXPECT_EQ(bob.reply_to(2).at("type").as_string(), "ack");
    alice.expect_json("direct", milliseconds{5000}, [](const json::object& f) {
        return payload_of(f).at("data") == json::string("hi alice");
    });
    alice.send_json(direct_frame(3, "carol", json::string("anyone?")));
    EXPECT_EQ(error_code_of(alice.reply_to(3)), "user_offline");

    // Channel presence keeps its counts on the channel's master.
    alice.send_json(subscribe_frame(4, {"room:p"}));
    EXPECT_EQ(alice.reply_to(4).at("type").as_string(), "subscribed");
    bob.send_json(subscribe_frame(4, {"room:p"}));
    EXPECT_EQ(bob.reply_to(4).at("type").as_string(), "subscribed");
    alice.expect_json("join", milliseconds{5000}, [](const json::object& f) {
        return payload_of(f).at("user_id").as_string() == "bob";
    });
    alice.send_json(make_frame("presence", 5, {{"channel", "room:p"}}));
    const auto members = payload_of(alice.reply_to(5)).at("members").as_array();
    std::set<std::string> names;
    for (const auto& m : members)
        names.insert(std::string(m.as_object().at("user_id").as_string()));
    EXPECT_EQ(names, (std::set<std::string>{"alice", "bob"}));

    // User presence lives on the master of the user's slot; n1 sees bob's connection on n2.
    const auto r = http_get(n1->port(), "/api/users/bob/presence");
    ASSERT_EQ(r.status, 200) << r.body;
    const auto doc = r.json();
    EXPECT_TRUE(doc.as_object().at("online").as_bool());
    const auto& connections = doc.as_object().at("connections").as_array();
    ASSERT_EQ(connections.size(), 1u);
    EXPECT_EQ(connections[0].as_object().at("node_id").as_string(), "n2");
}

TEST(redis_cluster_broker, a_failover_of_the_channels_master_keeps_messages_flowing) {
    redis_cluster redis;
    publisher_and_subscriber t(redis, "room:failover");
    auto& [n1, n2, alice, bob, channel, name, slot] = t;

    const auto old_master = redis.master_of_slot(slot);
    const auto replica = redis.replica_of(old_master);
    redis.failover(replica);
    ASSERT_EQ(redis.master_of_slot(slot), replica);

    // The nodes follow the new topology: bob's subscription moves to the new master (and leaves
    // the old one, now a replica) and alice's publishes go there. A message published during
    // the move itself may be lost (docs/adr/0004-redis-cluster.md); once it is done, none is.
    ASSERT_TRUE(wait_until([&] {
        return shard_channels(redis, replica).count(name) == 1 &&
               shard_channels(redis, old_master).count(name) == 0;
    }));
    await_route(alice, bob, channel);
    expect_delivered_in_order(alice, bob, channel, 200, 5);
    // /metrics shows what happened: a new slot map, three masters in use, all up.
    for (auto* node : {n1.get(), n2.get()}) {
        const auto text = http_get(node->port(), "/metrics").body;
        EXPECT_GE(metric_value(text, "wsgate_redis_topology_changes_total").value_or(0), 1.0);
        EXPECT_EQ(metric_value(text, "wsgate_redis_servers"), 3.0);
        EXPECT_EQ(metric_value(text, "wsgate_redis_servers_up"), 3.0);
    }
    // Direct messages too (the user channels live on the same masters).
    alice.send_json(direct_frame(300, "bob", json::string("after failover")));
    EXPECT_EQ(alice.reply_to(300).at("type").as_string(), "ack");
    bob.expect_json("direct", milliseconds{5000}, [](const json::object& f) {
        return payload_of(f).at("data") == json::string("after failover");
    });
}

TEST(redis_cluster_broker, a_killed_master_degrades_the_nodes_until_its_replica_takes_over) {
    redis_cluster redis;
    publisher_and_subscriber t(redis, "room:killed");
    auto& [n1, n2, alice, bob, channel, name, slot] = t;

    const auto old_master = redis.master_of_slot(slot);
    const auto replica = redis.replica_of(old_master);
    redis.kill(old_master);
    // Visible: both nodes report the broker down while a master they need is gone, and
    // /metrics says how many masters are up.
    EXPECT_TRUE(wait_until([&] { return !broker_up(*n1) && !broker_up(*n2); }));
    EXPECT_TRUE(wait_until([&] {
        const auto text = http_get(n1->port(), "/metrics").body;
        return metric_value(text, "wsgate_redis_servers_up") == 2.0 || broker_up(*n1);
    }));
    redis.wait_for_owner(slot, replica);
    // ... and recover by themselves once the replica took over.
    ASSERT_TRUE(wait_until([&] { return broker_up(*n1) && broker_up(*n2); }, milliseconds{15000}))
        << json::serialize(health(*n1));
    await_route(alice, bob, channel);
    expect_delivered_in_order(alice, bob, channel, 200, 5);
}

TEST(redis_cluster_broker, resharding_a_channels_slot_moves_its_subscription) {
    redis_cluster_options without_replicas;
    without_replicas.replicas = 0;
    redis_cluster redis(without_replicas);
    publisher_and_subscriber t(redis, "room:moving");
    auto& [n1, n2, alice, bob, channel, name, slot] = t;

    const auto from = redis.master_of_slot(slot);
    std::uint16_t to = 0;
    for (const auto port : redis.master_ports()) {
        if (port != from) to = port;
    }
    redis.move_slot(slot, to);
    // Redis drops the shard channel's subscribers when its slot leaves (sunsubscribe); the
    // node subscribes again at the new owner, and the seq key moved with the slot.
    EXPECT_TRUE(wait_until([&] { return shard_channels(redis, to).count(name) == 1; }));
    await_route(alice, bob, channel);
    expect_delivered_in_order(alice, bob, channel, 200, 5);
}
