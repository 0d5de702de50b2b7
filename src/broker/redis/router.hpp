#pragma once
// router: the broker's view of Redis, one server or a Redis Cluster, behind one interface.
//
// - command(key, argv) runs a command on the server that owns `key`'s hash slot. With one
//   server that is always the same pipelined connection. In a cluster each master has its own
//   command connection, and a MOVED or ASK reply is followed (a few times) to the right one.
// - subscribe(channel) keeps `channel` subscribed wherever it is served, across reconnects,
//   failovers and resharding. One server: SUBSCRIBE on the one subscriber connection. A cluster:
//   sharded pub/sub, SSUBSCRIBE on the subscriber connection of the master that owns the
//   channel's slot (publishers use SPUBLISH, see publish_command()), so every message crosses
//   exactly one shard instead of being broadcast to all of them.
//
// Cluster topology comes from CLUSTER SLOTS, asked of the seed nodes first and then of any
// connected master. It is asked again at once after a MOVED, a lost master connection or a
// sunsubscribe push (Redis unsubscribes shard channels whose slot moved away), every 500 ms
// while something is not where it belongs, and every few seconds otherwise. Masters that no
// longer serve a slot are dropped; new ones are connected.
//
// Threading: everything runs on one io_context (the broker's home shard), and so do all the
// callbacks. Nothing blocks.

#include "broker/redis/endpoint.hpp"
#include "broker/redis/redis_connection.hpp"
#include "broker/redis/reply.hpp"
#include "broker/redis/slot_map.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace wsgate::broker::redis {

struct router_settings {
    // One server, or (cluster) any number of the cluster's nodes to learn the topology from.
    // In a cluster every node is reached with the first seed's username and password.
    std::vector<endpoint> seeds;
    bool cluster = false;
    std::chrono::milliseconds refresh_interval{5000};  // topology check when all is well
    std::chrono::milliseconds repair_interval{500};    // ... while something is out of place
    connection::options connection_options{};
};

// Counters and gauges for /metrics, written on the router's thread, read from any.
struct router_stats {
    std::atomic<std::uint64_t> moved{0};             // MOVED replies followed
    std::atomic<std::uint64_t> ask{0};               // ASK replies followed
    std::atomic<std::uint64_t> topology_changes{0};  // slot maps that differed from the last
    std::atomic<unsigned> servers{0};                // servers serving slots (or the one)
    std::atomic<unsigned> servers_up{0};             // ... with both connections up
};

class router {
public:
    struct callbacks {
        // A pub/sub message: the Redis channel and its payload.
        std::function<void(std::string_view channel, std::string_view payload)> on_message;
        // A command connection became ready (first connect or reconnect): the server behind it
        // may have lost state (a restart), so the owner restores what it keeps in Redis.
        std::function<void()> on_server_ready;
        // available() may have changed.
        std::function<void()> on_availability;
    };

    router(boost::asio::io_context& context, router_settings settings, callbacks cb);
    ~router();
    router(const router&) = delete;
    router& operator=(const router&) = delete;

    void start();
    void stop();

    // One server: both connections are up. A cluster: the topology is known and every master
    // serving a slot has both connections up.
    bool available() const noexcept { return available_; }
    bool cluster() const noexcept { return settings_.cluster; }
    // "PUBLISH" or "SPUBLISH": how a script publishes to a channel subscribe() listens to.
    std::string_view publish_command() const noexcept;
    // For logs: "127.0.0.1:6379" or "cluster 127.0.0.1:7000,... (3 masters)".
    std::string describe() const;

    // Runs `argv` on the server owning `key`'s slot (empty key: any connected master). `done`
    // gets the reply, or an error reply when no connection can take it ("ERR not connected",
    // "ERR connection lost", "CLUSTERDOWN ..."). A command that failed with a lost connection
    // is not retried: Redis may or may not have run it.
    void command(std::string_view key, std::vector<std::string> argv, reply_handler done = {});
    // The same with a shared command, which the caller may keep (to run it again) without a copy.
    using shared_command = std::shared_ptr<const std::vector<std::string>>;
    void command_shared(std::string_view key, shared_command argv, reply_handler done);

    // Keeps `channel` subscribed until unsubscribe(). `confirmed` (may be empty) runs once: when
    // Redis confirmed the subscription, or when it cannot be made now (Redis down, topology
    // unknown); the router then makes it as soon as it can.
    void subscribe(const std::string& channel, std::function<void()> confirmed);
    void unsubscribe(const std::string& channel);

    const router_stats& stats() const noexcept { return stats_; }

    // Channels subscribe()d and not unsubscribe()d.
    std::size_t subscription_count() const noexcept { return wanted_.size(); }

private:
    struct server {
        std::string address;  // "host:port", its key in servers_
        endpoint where;
        std::unique_ptr<connection> commands;
        std::unique_ptr<connection> subscriber;
        std::unordered_set<std::string> channels;  // subscribed (or asked) on `subscriber`
        bool seed_only = false;   // a seed we asked for the topology, owning no slot (yet)
        bool ever_ready = false;  // its command connection has been up at least once
        std::chrono::steady_clock::time_point created;
        // Commands for a server not connected yet; run (true) or failed (false) later.
        std::vector<std::function<void(bool ready)>> waiting;
    };

    server* owner_of(std::string_view key);
    server* find(const std::string& address);
    server& ensure(const std::string& host, std::uint16_t port, bool seed_only);
    server* any_ready();
    void fail_soon(reply_handler done, const char* why);
    void run(const std::string& address, std::string key, shared_command argv, reply_handler done,
             int redirects, bool asking);

    // Subscribes `channel` at its owner; `confirmed` runs once as subscribe() describes.
    void place(const std::string& channel, std::function<void()> confirmed, int redirects);
    // Unsubscribes `channel` at the server at `address` (if subscribed there and connected).
    void leave(const std::string& address, const std::string& channel);
    // Every channel placed at `address` is placed nowhere now.
    void unplace_all(const std::string& address);
    // Acts on a MOVED or ASK from a server at `asked_host`; returns where the command goes.
    server& follow(redirect& to, const std::string& asked_host);
    void on_subscriber_ready(const std::string& address);
    void on_subscriber_lost(const std::string& address);
    void on_push(const std::string& address, const reply& r);

    void refresh_now();
    void apply_topology(std::vector<slot_range> ranges);
    void arm_refresh();
    bool healthy() const;
    void update_availability();
    void drop_server(const std::string& address);

    boost::asio::io_context& io_;
    router_settings settings_;
    callbacks cb_;
    bool started_ = false;
    bool stopped_ = false;
    bool available_ = false;

    // Servers by "host:port". One server: just the seed. A cluster: the masters that own slots
    // (and, until the first topology, the seeds).
    std::map<std::string, std::unique_ptr<server>> servers_;
    // Cluster: 16384 entries, nullptr when unknown. Points into servers_; apply_topology()
    // rebuilds it before it drops a server, and stop() clears it.
    std::vector<server*> slot_owner_;
    bool topology_known_ = false;
    std::vector<slot_range> ranges_;
    bool refreshing_ = false;
    bool refresh_again_ = false;
    boost::asio::steady_timer refresh_timer_;

    // Channel -> the server it is subscribed at ("" while it is not subscribed anywhere).
    std::unordered_map<std::string, std::string> wanted_;

    router_stats stats_;

    // Removed servers, destroyed on the next turn (a callback of theirs may be running).
    std::vector<std::unique_ptr<server>> retired_;
};

}  // namespace wsgate::broker::redis
