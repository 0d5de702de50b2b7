// support/redis_cluster against the real thing: a cluster of three masters with
// one replica each (one cluster, one test: forming it takes a couple of
// seconds), its slot hashing checked against CLUSTER KEYSLOT, then a manual
// failover, a resharding step and the loss of a master, with the data checked
// after each. Later tests of the Redis Cluster broker rely on these helpers
// doing what they say.

#include "support/redis_cluster.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

using wsgate::test::redis_cluster;

namespace {

bool contains(const std::vector<std::uint16_t>& ports, std::uint16_t port) {
    return std::find(ports.begin(), ports.end(), port) != ports.end();
}

TEST(redis_cluster_support, slots_failover_resharding_and_a_killed_master) {
    redis_cluster cluster;
    ASSERT_EQ(cluster.all_ports().size(), 6u);
    const auto masters = cluster.master_ports();
    ASSERT_EQ(masters.size(), 3u);
    const auto seeds = cluster.seed_nodes();
    for (const auto port : masters)
        EXPECT_NE(seeds.find("127.0.0.1:" + std::to_string(port)), std::string::npos) << seeds;
    EXPECT_EQ(std::count(seeds.begin(), seeds.end(), ','), 2) << seeds;

    for (const std::string key :
         {"foo", "{room:1}x", "{room:1}y", "room:1", "a{}b", "{}", "a{b", "x{a}{b}", "", "é"}) {
        EXPECT_EQ(std::to_string(redis_cluster::key_slot(key)),
                  cluster.cli(masters.front(), {"CLUSTER", "KEYSLOT", key}))
            << "key \"" << key << '"';
    }
    EXPECT_EQ(redis_cluster::key_slot("{room:1}x"), redis_cluster::key_slot("room:1"));
    EXPECT_EQ(redis_cluster::key_slot("foo"),
              12182);  // the example in the cluster spec

    // More keys in the slot than one GETKEYSINSLOT batch of move_slot() takes.
    const std::string key = "{room:1}greeting";
    const auto slot = redis_cluster::key_slot(key);
    const auto owner = cluster.master_of_slot(slot);
    EXPECT_TRUE(contains(masters, owner));
    EXPECT_EQ(cluster.cli(owner, {"SET", key, "hello"}), "OK");
    std::vector<std::string> fillers = {"MSET"};
    for (int i = 0; i < 150; ++i) {
        fillers.push_back("{room:1}filler:" + std::to_string(i));
        fillers.push_back(std::to_string(i));
    }
    EXPECT_EQ(cluster.cli(owner, fillers), "OK");
    const auto other = masters.front() != owner ? masters.front() : masters.back();
    EXPECT_THROW(cluster.cli(other, {"GET", key}), std::runtime_error);  // -MOVED

    const auto replica = cluster.replica_of(owner);
    EXPECT_FALSE(contains(masters, replica));
    cluster.failover(replica);
    EXPECT_EQ(cluster.master_of_slot(slot), replica);
    EXPECT_EQ(cluster.cli(replica, {"GET", key}), "hello");
    const auto after_failover = cluster.master_ports();
    EXPECT_TRUE(contains(after_failover, replica));
    EXPECT_FALSE(contains(after_failover, owner));
    EXPECT_EQ(cluster.replica_of(replica),
              owner);  // the old master follows the new one

    const auto target =
        after_failover.front() != replica ? after_failover.front() : after_failover.back();
    cluster.move_slot(slot, target);
    EXPECT_EQ(cluster.master_of_slot(slot), target);
    EXPECT_EQ(cluster.cli(target, {"GET", key}), "hello");
    EXPECT_EQ(cluster.cli(target, {"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)}), "151");
    EXPECT_EQ(cluster.cli(replica, {"CLUSTER", "COUNTKEYSINSLOT", std::to_string(slot)}), "0");
    EXPECT_THROW(cluster.cli(replica, {"GET", key}),
                 std::runtime_error);  // -MOVED

    // Losing the slot's master: its replica takes over once the others mark it
    // failed.
    const auto heir = cluster.replica_of(target);
    cluster.kill(target);
    cluster.wait_for_owner(slot, heir);
    EXPECT_EQ(cluster.cli(heir, {"GET", key}), "hello");
    EXPECT_FALSE(contains(cluster.master_ports(), target));
}

}  // namespace
