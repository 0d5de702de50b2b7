#pragma once
// The broker for many nodes: Redis pub/sub carries every message between nodes.
//
// Threading: all Redis state (both connections, the topic table) lives on one shard's event
// loop, the "home" io_context; other shards reach it with post(), and completions are posted
// back to the shard that asked. Nothing blocks, and no extra thread exists.
//
// Redis names (prefix configurable, default "wsgate:"):
//   <prefix>ch:<channel>   pub/sub channel of a client channel
//   <prefix>user:<user>    pub/sub channel of a user: every node with a connection of that user
//                          subscribes to it, so direct messages reach all of them, and PUBLISH's
//                          receiver count tells at once whether the user is online anywhere
//   <prefix>seq:<channel>  the channel's last seq (INCR), shared by all nodes
// A publish is one EVAL that increments the seq and publishes the message's JSON with the seq
// spliced in: one round trip, and the seq order is the order every node receives. Receiving
// nodes only add the WebSocket header, once per node, and fan the frame out locally.
//
// Subscriptions are reference-counted per node: SUBSCRIBE when the first local session of any
// shard joins a topic, UNSUBSCRIBE when the last one leaves. When Redis goes away the node keeps
// serving local traffic, reports itself unavailable, reconnects by itself and resubscribes
// everything; publishes in the meantime fail with broker_unavailable (never dropped silently).

#include "broker/redis/redis_connection.hpp"
#include "core/broker.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace wsgate::broker::redis {

struct broker_settings {
    endpoint where;
    std::string node_id;      // keys this node's presence entries
    unsigned home_shard = 0;  // the shard whose event loop `home` is
    std::string prefix = "wsgate:";
    std::chrono::seconds seq_ttl{86'400};  // an idle channel's seq is forgotten after this
    // Node registry: every node beats every `heartbeat_interval`; a node silent for `node_ttl`
    // is removed by the next beat of any other node.
    std::chrono::milliseconds heartbeat_interval{30'000};
    std::chrono::milliseconds node_ttl{90'000};
};

class redis_broker final : public core::broker {
public:
    // `home`: the event loop that runs all Redis I/O (a shard's).
    redis_broker(boost::asio::io_context& home, broker_settings settings);
    ~redis_broker() override;

    void start(core::local_delivery& delivery) override;
    void subscribe(unsigned shard, std::string_view topic, std::function<void()> ready) override;
    void unsubscribe(unsigned shard, std::string_view topic) override;
    void publish(unsigned shard, const core::publication& message,
                 core::publish_handler done) override;
    void send(unsigned shard, std::string_view topic, core::frame_ptr frame,
              core::send_handler done) override;
    std::size_t channel_count() const override;
    std::string_view kind() const noexcept override { return "redis"; }
    bool available() const noexcept override;
    std::vector<std::string> cluster_nodes() const override;
    void set_presence(unsigned shard, std::string_view channel, std::string_view user,
                      std::uint64_t connections) override;
    void presence(unsigned shard, std::string_view channel, core::presence_handler done) override;

    // Stops both connections (on the home thread); used at shutdown.
    void stop();

private:
    struct topic_state {
        std::uint64_t shard_mask = 0;
        bool confirmed = false;  // Redis answered the SUBSCRIBE (or reported itself down)
        std::vector<std::pair<unsigned, std::function<void()>>> waiters;  // until confirmed
    };

    // On the home thread only.
    void on_subscriber_connected();
    void on_message(const reply& message);
    void update_availability();
    std::string redis_channel(std::string_view topic) const;
    // The core topic of a Redis channel name, or nullopt if it is not one of ours.
    std::optional<std::string> topic_of(std::string_view redis_channel) const;
    void deliver(std::string_view topic, std::string_view json);
    // The SUBSCRIBE of `topic` was answered: wake every shard waiting for it.
    void topic_confirmed(const std::string& topic);
    // Runs `task` on the home thread: inline when already there, else posted.
    template <class Task>
    void on_home(Task&& task);
    // Hands a completion back to `shard`: inline when that is the home shard (we are on it).
    void complete_on(unsigned shard, std::function<void()> task);
    void run_publish_script(std::vector<std::string> argv, std::function<void(const reply&)> done);
    // EVALSHA of `script`, falling back to EVAL once on NOSCRIPT (an emptied script cache).
    void run_script(std::string_view script, const std::string& sha, std::vector<std::string> argv,
                    std::function<void(const reply&)> done);
    void heartbeat();
    void arm_heartbeat();
    // Sends this node's count of `user` in `channel` (the sum over its shards) to Redis.
    void send_presence(const std::string& channel, const std::string& user, std::uint64_t count);
    // After (re)connecting: the first time, clear what an earlier run of this node left; then
    // restore every count this node holds (the calls are absolute, so repeating is harmless).
    void sync_presence();

    boost::asio::io_context& home_;
    broker_settings settings_;
    core::local_delivery* delivery_ = nullptr;
    std::unique_ptr<connection> subscriber_;
    std::unique_ptr<connection> commands_;
    std::unordered_map<std::string, topic_state> topics_;  // home thread only
    std::atomic<std::size_t> channels_{0};
    std::atomic<bool> available_{false};
    std::string script_sha_;     // SHA1 of the publish script, for EVALSHA
    std::string heartbeat_sha_;  // SHA1 of the heartbeat script
    std::string presence_sha_;
    std::string reset_sha_;
    boost::asio::steady_timer heartbeat_timer_;
    mutable std::mutex nodes_mutex_;  // guards nodes_: written on home, read by any shard
    std::vector<std::string> nodes_;
    bool presence_reset_done_ = false;
    // home thread: (channel, user) -> shard -> connections
    std::map<std::pair<std::string, std::string>, std::map<unsigned, std::uint64_t>> presence_;
};

}  // namespace wsgate::broker::redis
