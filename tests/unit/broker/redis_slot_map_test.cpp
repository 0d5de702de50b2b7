// hash_slot, parse_cluster_slots and parse_redirect: the pure parts of Redis Cluster routing.
// The slot values are those of the Redis Cluster specification (and CLUSTER KEYSLOT, which
// the cluster integration test compares against a live server).

#include "broker/redis/hash_slot.hpp"
#include "broker/redis/slot_map.hpp"

#include <gtest/gtest.h>

namespace {

using namespace wsgate::broker::redis;

reply integer(long long v) {
    reply r;
    r.type = reply::kind::integer;
    r.integer = v;
    return r;
}

reply string(std::string s) {
    reply r;
    r.type = reply::kind::string;
    r.str = std::move(s);
    return r;
}

reply array(std::vector<reply> elements) {
    reply r;
    r.type = reply::kind::array;
    r.elements = std::move(elements);
    return r;
}

reply range(long long first, long long last, std::string host, long long port) {
    return array({integer(first), integer(last),
                  array({string(std::move(host)), integer(port), string("node-id")}),
                  array({string("127.0.0.1"), integer(port + 100), string("replica-id")})});
}

TEST(hash_slot, matches_the_cluster_specification) {
    EXPECT_EQ(hash_slot("123456789"), 0x31C3 % 16384);  // the spec's CRC16 check value
    EXPECT_EQ(hash_slot("foo"), 12182);
    EXPECT_EQ(hash_slot("bar"), 5061);
    EXPECT_EQ(hash_slot(""), 0);
}

TEST(hash_slot, hashes_only_a_non_empty_tag) {
    EXPECT_EQ(hash_slot("wsgate:seq:{room:1}"), hash_slot("room:1"));
    EXPECT_EQ(hash_slot("wsgate:ch:{room:1}"), hash_slot("wsgate:pu:{room:1}"));
    // An empty tag "{}" does not count: the whole key is hashed.
    EXPECT_EQ(hash_slot("a{}b"), hash_slot(std::string_view("a{}b")));
    EXPECT_NE(hash_slot("a{}b"), hash_slot(""));
    // Only the first '{' and the first '}' after it.
    EXPECT_EQ(hash_slot("x{a}b}"), hash_slot("a"));
    EXPECT_EQ(hash_slot("{user1000}.following"), hash_slot("{user1000}.followers"));
    EXPECT_EQ(hash_slot("foo{"), hash_slot(std::string_view("foo{")));
}

TEST(parse_cluster_slots, reads_and_sorts_the_ranges) {
    const auto r = array({range(10923, 16383, "127.0.0.1", 7002), range(0, 5460, "", 7000),
                          range(5461, 10922, "?", 7001)});
    const auto ranges = parse_cluster_slots(r, "10.0.0.5");
    ASSERT_TRUE(ranges);
    ASSERT_EQ(ranges->size(), 3u);
    EXPECT_EQ((*ranges)[0], (slot_range{0, 5460, "10.0.0.5", 7000}));
    EXPECT_EQ((*ranges)[1], (slot_range{5461, 10922, "10.0.0.5", 7001}));
    EXPECT_EQ((*ranges)[2].address(), "127.0.0.1:7002");
}

TEST(parse_cluster_slots, rejects_malformed_replies) {
    EXPECT_FALSE(parse_cluster_slots(string("nope"), "h"));
    EXPECT_FALSE(parse_cluster_slots(array({range(0, 16384, "h", 1)}), "h"));
    EXPECT_FALSE(parse_cluster_slots(array({range(5, 4, "h", 1)}), "h"));
    EXPECT_FALSE(parse_cluster_slots(array({range(0, 10, "h", 0)}), "h"));
    EXPECT_FALSE(parse_cluster_slots(array({range(0, 10, "h", 70000)}), "h"));
    EXPECT_FALSE(parse_cluster_slots(array({range(0, 10, "h", 1), range(10, 20, "h", 2)}), "h"));
    EXPECT_FALSE(parse_cluster_slots(array({array({integer(0), integer(1)})}), "h"));
    EXPECT_TRUE(parse_cluster_slots(array({}), "h").has_value());
}

TEST(parse_redirect, reads_moved_and_ask) {
    const auto moved = parse_redirect("MOVED 3999 127.0.0.1:6381");
    ASSERT_TRUE(moved);
    EXPECT_FALSE(moved->ask);
    EXPECT_EQ(moved->slot, 3999);
    EXPECT_EQ(moved->host, "127.0.0.1");
    EXPECT_EQ(moved->port, 6381);

    const auto ask = parse_redirect("ASK 12 ::1:7000");
    ASSERT_TRUE(ask);
    EXPECT_TRUE(ask->ask);
    EXPECT_EQ(ask->host, "::1");
    EXPECT_EQ(ask->port, 7000);

    const auto no_host = parse_redirect("MOVED 1 :7001");
    ASSERT_TRUE(no_host);
    EXPECT_EQ(no_host->host, "");
}

TEST(parse_redirect, rejects_other_errors) {
    EXPECT_FALSE(parse_redirect("ERR unknown command"));
    EXPECT_FALSE(parse_redirect("MOVED"));
    EXPECT_FALSE(parse_redirect("MOVED 16384 h:1"));
    EXPECT_FALSE(parse_redirect("MOVED 1 h"));
    EXPECT_FALSE(parse_redirect("MOVED 1 h:0"));
    EXPECT_FALSE(parse_redirect("MOVED x h:1"));
}

}  // namespace
