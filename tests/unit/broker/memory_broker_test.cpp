// memory_broker: per-channel seq, shard bitmask fan-out, user topics, and ordering under
// concurrent publishers. A fake local_delivery records every deliver() call in call order.

#include "broker/memory/memory_broker.hpp"
#include "core/broker.hpp"
#include "core/error.hpp"
#include "protocol/rfc6455/frame.hpp"

#include <gtest/gtest.h>
#include <boost/json.hpp>

#include <algorithm>
#include <mutex>
#include <optional>
#include <regex>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

namespace core = wsgate::core;
namespace rfc = wsgate::protocol::rfc6455;
namespace json = boost::json;
using wsgate::broker::memory_broker;

namespace {

struct delivery_record {
    unsigned shard;
    std::string topic;
    core::frame_ptr frame;
};

class recording_delivery final : public core::local_delivery {
public:
    explicit recording_delivery(unsigned shards) : shards_(shards) {}

    unsigned shard_count() const noexcept override { return shards_; }

    void deliver(unsigned shard, std::string_view topic, core::frame_ptr frame) override {
        std::lock_guard lock(mutex_);
        records_.push_back({shard, std::string(topic), std::move(frame)});
    }

    void post(unsigned, std::function<void()> task) override { task(); }
    std::string node_info_json() const override { return R"({"node_id":"test"})"; }

    std::vector<delivery_record> records() const {
        std::lock_guard lock(mutex_);
        return records_;
    }

    void clear() {
        std::lock_guard lock(mutex_);
        records_.clear();
    }

private:
    unsigned shards_;
    mutable std::mutex mutex_;
    std::vector<delivery_record> records_;
};

// The JSON a recorded frame carries (checking it is one unmasked text frame).
json::value frame_json(const core::frame_ptr& frame) {
    const std::string_view bytes = frame->bytes();
    rfc::frame_header h;
    EXPECT_EQ(
        rfc::parse_header(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), h),
        rfc::header_status::complete);
    EXPECT_EQ(h.op, rfc::opcode::text);
    EXPECT_EQ(h.header_size + h.payload_size, bytes.size());
    return json::parse(bytes.substr(h.header_size));
}

std::uint64_t seq_of(const core::frame_ptr& frame) {
    return frame_json(frame).at("payload").at("seq").to_number<std::uint64_t>();
}

// Publishes and returns the receipt's seq (the memory broker completes inline).
std::uint64_t publish(memory_broker& broker, std::string_view channel,
                      std::string_view data = R"({"text":"hi"})", std::string_view from = "alice",
                      unsigned shard = 0) {
    std::optional<std::uint64_t> seq;
    broker.publish(shard, core::publication{channel, from, data},
                   [&](core::result<core::publish_receipt> r) {
                       ASSERT_TRUE(r.has_value());
                       seq = r->seq;
                   });
    EXPECT_TRUE(seq.has_value()) << "publish did not complete inline";
    return seq.value_or(0);
}

std::vector<unsigned> shards_of(const std::vector<delivery_record>& records) {
    std::vector<unsigned> shards;
    for (const auto& r : records) shards.push_back(r.shard);
    return shards;
}

}  // namespace

TEST(memory_broker, start_refuses_more_than_64_shards) {
    recording_delivery too_many(65);
    memory_broker broker;
    EXPECT_THROW(broker.start(too_many), std::invalid_argument);
    recording_delivery just_right(64);
    memory_broker broker2;
    EXPECT_NO_THROW(broker2.start(just_right));
}

TEST(memory_broker, publish_delivers_the_documented_message_frame) {
    recording_delivery delivery(2);
    memory_broker broker;
    broker.start(delivery);
    broker.subscribe(1, "room:1", {});
    EXPECT_EQ(publish(broker, "room:1", R"({"text":"hi"})", "alice"), 1u);
    const auto records = delivery.records();
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(records[0].shard, 1u);
    EXPECT_EQ(records[0].topic, "room:1");
    const json::value v = frame_json(records[0].frame);
    EXPECT_EQ(v.at("type"), "message");
    const auto& p = v.at("payload").as_object();
    EXPECT_EQ(p.size(), 5u);
    EXPECT_EQ(p.at("channel"), "room:1");
    EXPECT_EQ(p.at("seq"), 1);
    EXPECT_EQ(p.at("from"), "alice");
    EXPECT_EQ(p.at("data"), json::parse(R"({"text":"hi"})"));
    const std::string ts(p.at("ts").as_string());
    EXPECT_TRUE(std::regex_match(ts, std::regex(R"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z)")))
        << ts;
}

TEST(memory_broker, seq_increases_by_one_per_channel_and_independently) {
    recording_delivery delivery(1);
    memory_broker broker;
    broker.start(delivery);
    broker.subscribe(0, "a", {});
    broker.subscribe(0, "b", {});
    EXPECT_EQ(publish(broker, "a"), 1u);
    EXPECT_EQ(publish(broker, "a"), 2u);
    EXPECT_EQ(publish(broker, "b"), 1u);
    EXPECT_EQ(publish(broker, "a"), 3u);
    EXPECT_EQ(publish(broker, "b"), 2u);
    const auto records = delivery.records();
    ASSERT_EQ(records.size(), 5u);
    std::vector<std::pair<std::string, std::uint64_t>> seen;
    for (const auto& r : records) seen.emplace_back(r.topic, seq_of(r.frame));
    EXPECT_EQ(seen, (std::vector<std::pair<std::string, std::uint64_t>>{
                        {"a", 1}, {"a", 2}, {"b", 1}, {"a", 3}, {"b", 2}}));
}

TEST(memory_broker, delivers_only_to_subscribed_shards_sharing_one_frame) {
    recording_delivery delivery(64);
    memory_broker broker;
    broker.start(delivery);
    for (unsigned shard : {0u, 5u, 63u}) broker.subscribe(shard, "room", {});
    broker.subscribe(7, "other", {});
    publish(broker, "room");
    const auto records = delivery.records();
    EXPECT_EQ(shards_of(records), (std::vector<unsigned>{0, 5, 63}));
    for (const auto& r : records) {
        EXPECT_EQ(r.topic, "room");
        EXPECT_EQ(r.frame, records[0].frame) << "encoded once, shared by every shard";
    }
}

TEST(memory_broker, subscribing_twice_from_one_shard_delivers_once) {
    recording_delivery delivery(2);
    memory_broker broker;
    broker.start(delivery);
    broker.subscribe(1, "room", {});
    broker.subscribe(1, "room", {});
    publish(broker, "room");
    EXPECT_EQ(shards_of(delivery.records()), (std::vector<unsigned>{1}));
    EXPECT_EQ(broker.channel_count(), 1u);
}

TEST(memory_broker, unsubscribe_of_one_shard_keeps_the_others) {
    recording_delivery delivery(4);
    memory_broker broker;
    broker.start(delivery);
    broker.subscribe(1, "room", {});
    broker.subscribe(3, "room", {});
    EXPECT_EQ(publish(broker, "room"), 1u);
    broker.unsubscribe(1, "room");
    delivery.clear();
    EXPECT_EQ(publish(broker, "room"), 2u);
    EXPECT_EQ(shards_of(delivery.records()), (std::vector<unsigned>{3}));
    EXPECT_EQ(broker.channel_count(), 1u);
}

TEST(memory_broker, last_unsubscribe_removes_the_channel_and_seq_restarts) {
    recording_delivery delivery(2);
    memory_broker broker;
    broker.start(delivery);
    EXPECT_EQ(broker.channel_count(), 0u);
    broker.subscribe(0, "room", {});
    broker.subscribe(1, "room", {});
    broker.subscribe(0, "lobby", {});
    EXPECT_EQ(broker.channel_count(), 2u);
    EXPECT_EQ(publish(broker, "room"), 1u);
    EXPECT_EQ(publish(broker, "room"), 2u);
    broker.unsubscribe(0, "room");
    EXPECT_EQ(broker.channel_count(), 2u);
    broker.unsubscribe(1, "room");
    EXPECT_EQ(broker.channel_count(), 1u);
    delivery.clear();
    broker.subscribe(1, "room", {});
    EXPECT_EQ(broker.channel_count(), 2u);
    EXPECT_EQ(publish(broker, "room"), 1u);
    const auto records = delivery.records();
    ASSERT_EQ(records.size(), 1u);
    EXPECT_EQ(seq_of(records[0].frame), 1u);
}

TEST(memory_broker, unsubscribe_of_unknown_topic_or_shard_changes_nothing) {
    recording_delivery delivery(4);
    memory_broker broker;
    broker.start(delivery);
    broker.unsubscribe(0, "never");
    EXPECT_EQ(broker.channel_count(), 0u);
    broker.subscribe(2, "room", {});
    broker.unsubscribe(1, "room");  // shard 1 never subscribed
    EXPECT_EQ(broker.channel_count(), 1u);
    publish(broker, "room");
    EXPECT_EQ(shards_of(delivery.records()), (std::vector<unsigned>{2}));
}

TEST(memory_broker, user_topics_are_not_channels) {
    recording_delivery delivery(2);
    memory_broker broker;
    broker.start(delivery);
    const std::string bob = core::user_topic("bob");
    EXPECT_TRUE(core::is_user_topic(bob));
    broker.subscribe(0, bob, {});
    broker.subscribe(1, bob, {});
    EXPECT_EQ(broker.channel_count(), 0u);
    broker.subscribe(0, "room", {});
    EXPECT_EQ(broker.channel_count(), 1u);
    broker.unsubscribe(0, bob);
    broker.unsubscribe(1, bob);
    EXPECT_EQ(broker.channel_count(), 1u);
}

TEST(memory_broker, send_to_a_topic_without_subscribers_is_user_offline) {
    recording_delivery delivery(2);
    memory_broker broker;
    broker.start(delivery);
    std::optional<boost::system::error_code> result;
    auto frame = std::make_shared<core::wire_frame>();
    frame->storage = rfc::make_frame(rfc::opcode::text, R"({"type":"direct"})");
    broker.send(0, core::user_topic("nobody"), frame,
                [&](boost::system::error_code ec) { result = ec; });
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(*result, core::error::user_offline);
    EXPECT_EQ(core::wire_code(*result), "user_offline");
    EXPECT_TRUE(delivery.records().empty());
}

TEST(memory_broker, send_delivers_the_same_frame_to_each_subscribed_shard) {
    recording_delivery delivery(4);
    memory_broker broker;
    broker.start(delivery);
    const std::string bob = core::user_topic("bob");
    broker.subscribe(1, bob, {});
    broker.subscribe(3, bob, {});
    broker.subscribe(2, core::user_topic("carol"), {});
    auto frame = std::make_shared<core::wire_frame>();
    frame->storage = rfc::make_frame(rfc::opcode::text, R"({"type":"direct"})");
    std::optional<boost::system::error_code> result;
    broker.send(0, bob, frame, [&](boost::system::error_code ec) { result = ec; });
    ASSERT_TRUE(result.has_value());
    EXPECT_FALSE(*result) << result->message();
    const auto records = delivery.records();
    EXPECT_EQ(shards_of(records), (std::vector<unsigned>{1, 3}));
    for (const auto& r : records) {
        EXPECT_EQ(r.topic, bob);
        EXPECT_EQ(r.frame.get(), frame.get());
    }
    // Once bob's last shard leaves he is offline again.
    broker.unsubscribe(1, bob);
    broker.unsubscribe(3, bob);
    result.reset();
    broker.send(0, bob, frame, [&](boost::system::error_code ec) { result = ec; });
    ASSERT_TRUE(result.has_value());
    EXPECT_EQ(*result, core::error::user_offline);
}

TEST(memory_broker, publish_without_subscribers_acks_and_delivers_nothing) {
    recording_delivery delivery(2);
    memory_broker broker;
    broker.start(delivery);
    broker.subscribe(0, "other", {});
    EXPECT_EQ(publish(broker, "empty"), 1u);
    EXPECT_EQ(publish(broker, "empty"), 1u);
    EXPECT_TRUE(delivery.records().empty());
    EXPECT_EQ(broker.channel_count(), 1u);
}

TEST(memory_broker, concurrent_publishers_get_unique_seqs_in_order_per_shard) {
    constexpr unsigned shards = 4;
    constexpr int threads = 4;
    constexpr int per_thread = 2000;
    recording_delivery delivery(shards);
    memory_broker broker;
    broker.start(delivery);
    for (unsigned s = 0; s < shards; ++s) broker.subscribe(s, "hot", {});
    broker.subscribe(2, "cold", {});

    std::mutex acks_mutex;
    std::vector<std::uint64_t> acks;
    std::vector<std::thread> publishers;
    for (int t = 0; t < threads; ++t) {
        publishers.emplace_back([&, t] {
            const std::string from = "user" + std::to_string(t);
            std::vector<std::uint64_t> mine;
            for (int i = 0; i < per_thread; ++i) {
                broker.publish(static_cast<unsigned>(t) % shards,
                               core::publication{"hot", from, std::to_string(i)},
                               [&](core::result<core::publish_receipt> r) {
                                   if (r) mine.push_back(r->seq);
                               });
            }
            std::lock_guard lock(acks_mutex);
            acks.insert(acks.end(), mine.begin(), mine.end());
        });
    }
    for (auto& p : publishers) p.join();

    constexpr std::uint64_t total = std::uint64_t{threads} * per_thread;
    ASSERT_EQ(acks.size(), total);
    std::sort(acks.begin(), acks.end());
    for (std::uint64_t i = 0; i < total; ++i) ASSERT_EQ(acks[i], i + 1);

    const auto records = delivery.records();
    ASSERT_EQ(records.size(), total * shards);
    std::vector<std::uint64_t> last(shards, 0);
    std::vector<std::set<std::uint64_t>> seen(shards);
    for (const auto& r : records) {
        ASSERT_EQ(r.topic, "hot");
        ASSERT_LT(r.shard, shards);
        const std::uint64_t seq = seq_of(r.frame);
        ASSERT_GT(seq, last[r.shard])
            << "shard " << r.shard << " got seq " << seq << " after " << last[r.shard];
        last[r.shard] = seq;
        ASSERT_TRUE(seen[r.shard].insert(seq).second) << "duplicate seq " << seq;
    }
    for (unsigned s = 0; s < shards; ++s) {
        EXPECT_EQ(seen[s].size(), total) << "shard " << s;
        EXPECT_EQ(last[s], total) << "shard " << s;
    }
}

TEST(memory_broker, subscribe_is_ready_at_once_and_the_next_publish_reaches_the_shard) {
    recording_delivery delivery(2);
    memory_broker broker;
    broker.start(delivery);
    bool ready = false;
    broker.subscribe(1, "room:ready", [&] {
        ready = true;
        // Ready means a publish issued now reaches the shard.
        broker.publish(0, {"room:ready", "alice", "1"}, [](auto) {});
    });
    EXPECT_TRUE(ready);
    ASSERT_EQ(delivery.records().size(), 1u);
    EXPECT_EQ(delivery.records()[0].shard, 1u);
}
