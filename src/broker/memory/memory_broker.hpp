#pragma once
// The embedded, in-process broker: the default when no Redis is configured.
//
// Topics are spread over lock stripes by hash. A stripe maps topic -> (last seq, bitmask of
// shards with local subscribers). publish() takes only its topic's stripe lock: it assigns the
// seq, encodes the frame once and hands it to each subscribed shard while holding that lock,
// so every shard receives a topic's messages in seq order. No lock is shared by all topics.

#include "core/broker.hpp"

#include <array>
#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <unordered_map>

namespace wsgate::broker {

class memory_broker final : public core::broker {
public:
    static constexpr unsigned max_shards = 64;

    // `node_id` names this node in user presence.
    explicit memory_broker(std::string node_id = "wsgate") : node_id_(std::move(node_id)) {}

    void start(core::local_delivery& delivery) override;
    void subscribe(unsigned shard, std::string_view topic, std::function<void()> ready) override;
    void unsubscribe(unsigned shard, std::string_view topic) override;
    void publish(unsigned shard, const core::publication& message,
                 core::publish_handler done) override;
    void send(unsigned shard, std::string_view topic, core::frame_ptr frame,
              core::send_handler done) override;
    void set_presence(unsigned shard, std::string_view channel, std::string_view user,
                      std::uint64_t connections) override;
    void presence(unsigned shard, std::string_view channel, core::presence_handler done) override;
    void set_user_connection(unsigned shard, std::string_view user, std::string_view connection_id,
                             bool open) override;
    void user_presence(unsigned shard, std::string_view user,
                       core::user_presence_handler done) override;
    std::size_t channel_count() const override;
    std::string_view kind() const noexcept override { return "memory"; }
    bool available() const noexcept override { return true; }

private:
    struct topic_state {
        std::uint64_t last_seq = 0;
        std::uint64_t shard_mask = 0;  // bit i: shard i has local subscribers
    };

    struct string_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };

    struct member_count {
        std::uint64_t total = 0;
        std::map<unsigned, std::uint64_t> by_shard;
    };
    using channel_presence = std::map<std::string, member_count, std::less<>>;

    struct alignas(64) stripe {
        std::mutex mutex;
        std::unordered_map<std::string, topic_state, string_hash, std::equal_to<>> topics;
        // Kept apart from `topics`: a leave is announced after the leaver unsubscribed.
        std::unordered_map<std::string, channel_presence, string_hash, std::equal_to<>> presence;
        // User presence: user -> open connection ids.
        std::unordered_map<std::string, std::set<std::string, std::less<>>, string_hash,
                           std::equal_to<>>
            users;
    };

    static constexpr std::size_t stripe_count = 64;

    stripe& stripe_for(std::string_view topic) noexcept;
    void deliver_all(std::uint64_t mask, std::string_view topic, const core::frame_ptr& frame);

    std::string node_id_;
    core::local_delivery* delivery_ = nullptr;
    std::array<stripe, stripe_count> stripes_;
    std::atomic<std::size_t> channels_{0};
};

}  // namespace wsgate::broker
