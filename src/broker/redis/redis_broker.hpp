#pragma once
// The broker for many nodes: Redis pub/sub carries every message between nodes.
//
// Threading: all Redis state (both connections, the topic table) lives on one shard's event
// loop, the "home" io_context; other shards reach it with post(), and completions are posted
// back to the shard that asked. Nothing blocks, and no extra thread exists.
//
// Redis names (prefix configurable, default "wsgate:"). Every name that a script touches
// together carries the same hash tag ({...}), so each script stays within one Redis Cluster slot:
//   <prefix>ch:{<channel>}      pub/sub channel of a client channel
//   <prefix>seq:{<channel>}     the channel's last seq (INCR), shared by all nodes
//   <prefix>user:{<user>}       pub/sub channel of a user: every node with a connection of that
//                               user subscribes to it, so direct messages reach all of them, and
//                               PUBLISH's receiver count tells at once whether the user is online
//   <prefix>pu:{<channel>}      channel presence: user -> connections in the cluster
//   <prefix>pn:{<channel>}      channel presence: "<run>|<user>" -> connections on that run
//   <prefix>presence:{<user>}   user presence: "<run>|<connection>" -> last refresh (ms)
//   <prefix>pnode:{<run>}, <prefix>unode:{<run>}   what a run registered, for its cleanup
//   <prefix>{registry}:nodes / :info / :dead / :runs   the node registry (heartbeats)
// A "run" is one life of a node: "<node id>#<random>". A node restarted with the same id, or
// one the others declared dead while it was cut off, takes a new run, so a cleanup of the old
// one can never erase what the new one registered.
//
// A publish is one EVAL that increments the seq and publishes the message's JSON with the seq
// spliced in: one round trip, and the seq order is the order every node receives. Receiving
// nodes only add the WebSocket header, once per node, and fan the frame out locally. On a Redis
// Cluster the same goes through sharded pub/sub (SPUBLISH/SSUBSCRIBE, see router.hpp).
//
// Subscriptions are reference-counted per node: SUBSCRIBE when the first local session of any
// shard joins a topic, UNSUBSCRIBE when the last one leaves. When Redis goes away the node keeps
// serving local traffic, reports itself unavailable, reconnects by itself and resubscribes
// everything; publishes in the meantime fail with broker_unavailable (never dropped silently).

#include "broker/redis/router.hpp"
#include "core/broker.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

namespace wsgate::broker::redis {

struct broker_settings {
    // One server, or (cluster = true) seed nodes of a Redis Cluster.
    std::vector<endpoint> servers{endpoint{}};
    bool cluster = false;
    std::string node_id;      // this node's name in the registry and in presence entries
    unsigned home_shard = 0;  // the shard whose event loop `home` is
    std::string prefix = "wsgate:";
    std::chrono::seconds seq_ttl{86'400};  // an idle channel's seq is forgotten after this
    // Every node beats (and refreshes its users' presence) every `heartbeat_interval`; a node
    // silent for `node_ttl` is removed, with its presence, by the next beat of any other node.
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
    std::string_view kind() const noexcept override;
    bool available() const noexcept override;
    std::vector<std::string> cluster_nodes() const override;
    std::string metrics_text() const override;
    void set_presence(unsigned shard, std::string_view channel, std::string_view user,
                      std::uint64_t connections) override;
    void presence(unsigned shard, std::string_view channel, core::presence_handler done) override;
    void set_user_connection(unsigned shard, std::string_view user, std::string_view connection_id,
                             bool open) override;
    void user_presence(unsigned shard, std::string_view user,
                       core::user_presence_handler done) override;

    // Deregisters this run from the registry (and hands it to the others' cleanup) once every
    // command queued before it has been answered.
    void leave(std::function<void()> done) override;

    // Stops every connection (on the home thread); used at shutdown.
    void stop();

private:
    struct topic_state {
        std::uint64_t shard_mask = 0;
        bool confirmed = false;  // Redis answered the SUBSCRIBE (or reported itself down)
        std::vector<std::pair<unsigned, std::function<void()>>> waiters;  // until confirmed
    };

    // On the home thread only.
    void on_server_ready();
    void on_message(std::string_view channel, std::string_view payload);
    void update_availability();
    // "<prefix><kind>:{<name>}": see the names above.
    std::string tagged(std::string_view kind, std::string_view name) const;
    std::string registry_key(std::string_view name) const;
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
    // EVALSHA of `script` on the server owning its first key (argv[3]; every script has one,
    // and all its keys share that slot), falling back to EVAL once on NOSCRIPT (an emptied
    // script cache). argv[0..1] are set here; argv[2] is the key count.
    void run_script(std::string_view script, const std::string& sha, std::vector<std::string> argv,
                    reply_handler done);
    void heartbeat();
    void arm_heartbeat();
    // Removes what the dead run `run` registered (declared dead at `dead_at_ms`, Redis clock).
    void forget_run(const std::string& run, const std::string& dead_at_ms);
    // Sends this node's count of `user` in `channel` (the sum over its shards) to Redis.
    void send_presence(const std::string& channel, const std::string& user, std::uint64_t count);
    // Sends set/del of this run's connections of `user` to the user's presence hash.
    void send_user_presence(const std::string& user, std::string_view op,
                            const std::vector<std::string>& connections);
    void refresh_user_presence();
    void refresh_users_from(const std::string& first);
    // After (re)connecting, or with a new run: sends every count and connection this node holds
    // (the calls are absolute, so repeating them is harmless).
    void sync_presence();
    void new_run();

    boost::asio::io_context& home_;
    broker_settings settings_;
    core::local_delivery* delivery_ = nullptr;
    std::unique_ptr<router> redis_;
    std::unordered_map<std::string, topic_state> topics_;  // home thread only
    std::atomic<std::size_t> channels_{0};
    std::atomic<bool> available_{false};
    std::string publish_sha_;
    std::string heartbeat_sha_;
    std::string presence_sha_;
    std::string forget_channel_sha_;
    std::string user_presence_sha_;
    std::string leave_sha_;
    boost::asio::steady_timer heartbeat_timer_;
    mutable std::mutex nodes_mutex_;  // guards nodes_: written on home, read by any shard
    std::vector<std::string> nodes_;
    std::string run_;                               // "<node id>#<random>", see above
    std::set<std::string> forgetting_;              // dead runs whose cleanup is under way
    std::atomic<std::uint64_t> runs_forgotten_{0};  // dead runs cleaned up by this node
    bool refreshing_users_ = false;                 // a round of refresh_users_from() is under way
    // home thread: (channel, user) -> shard -> connections
    std::map<std::pair<std::string, std::string>, std::map<unsigned, std::uint64_t>> presence_;
    // home thread: user -> this node's connection ids of that user
    std::map<std::string, std::set<std::string>, std::less<>> user_connections_;
};

}  // namespace wsgate::broker::redis
