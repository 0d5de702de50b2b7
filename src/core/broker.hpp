#pragma once
// The broker moves published messages to every node (and shard) that has subscribers.
// The embedded memory broker (src/broker/memory) does it inside one process; the Redis broker
// does it across nodes. Both hand messages to the node's local_delivery, which fans them out
// to the local WebSocket sessions.
//
// Topics: a client channel ("room:1") or an internal per-user topic (user_topic()), which a
// client can never name because it is outside the channel alphabet.
//
// Thread safety: every method may be called concurrently from any shard thread.

#include "core/error.hpp"
#include "core/frame.hpp"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace wsgate::core {

// The node side of the broker: its shards and their local subscribers.
class local_delivery {
public:
    virtual unsigned shard_count() const noexcept = 0;
    // Writes `frame` to every session on `shard` subscribed to `topic`. Thread-safe; delivery
    // to one shard happens in call order.
    virtual void deliver(unsigned shard, std::string_view topic, frame_ptr frame) = 0;
    // Runs `task` on `shard`'s thread.
    virtual void post(unsigned shard, std::function<void()> task) = 0;
    // This node as a JSON object (node id, address, connections, start time), for the
    // cluster registry. Thread-safe.
    virtual std::string node_info_json() const = 0;

protected:
    ~local_delivery() = default;
};

struct publication {
    std::string_view channel;
    std::string_view from;       // user id of the publisher
    std::string_view data_json;  // the message, serialized JSON
};

struct publish_receipt {
    std::uint64_t seq = 0;
};

struct presence_member {
    std::string user_id;
    std::uint64_t connections = 0;  // across the cluster
};

// One open connection of a user, for user presence.
struct user_connection {
    std::string node_id;
    std::string connection_id;
};

using publish_handler = std::function<void(result<publish_receipt>)>;
using send_handler = std::function<void(boost::system::error_code)>;
using presence_handler = std::function<void(result<std::vector<presence_member>>)>;
using user_presence_handler = std::function<void(result<std::vector<user_connection>>)>;

class broker {
public:
    virtual ~broker() = default;

    // Called once, before any other method, with the node's delivery side.
    virtual void start(local_delivery& delivery) = 0;

    // Node-level subscription bookkeeping: `shard` calls subscribe() when its first local
    // session subscribes to `topic` and unsubscribe() when its last one leaves. `ready` runs on
    // `shard` once messages published from then on reach this node: at once for the memory
    // broker, when Redis confirms the SUBSCRIBE for the Redis broker (or reports itself down:
    // the subscription is then restored on reconnect).
    virtual void subscribe(unsigned shard, std::string_view topic, std::function<void()> ready) = 0;
    virtual void unsubscribe(unsigned shard, std::string_view topic) = 0;

    // Publishes to a channel: assigns the next seq, encodes the message frame once and
    // delivers it to every subscriber. `done` runs on `shard` (possibly inline).
    virtual void publish(unsigned shard, const publication& message, publish_handler done) = 0;

    // Delivers a ready frame to every subscriber of `topic`; error::user_offline when it has
    // none. Used for direct messages to a user's topic. `done` runs on `shard`.
    virtual void send(unsigned shard, std::string_view topic, frame_ptr frame,
                      send_handler done) = 0;

    // Channel presence. `shard` now has `connections` connections of `user` subscribed to
    // `channel` (0: none left). The broker keeps cluster-wide counts and sends every subscriber
    // of the channel {"type":"join"} when a user's count leaves 0 and {"type":"leave"} when it
    // returns to 0. Calls are absolute, so repeating one changes nothing.
    virtual void set_presence(unsigned shard, std::string_view channel, std::string_view user,
                              std::uint64_t connections) = 0;
    // Who is in `channel` across the cluster; `done` runs on `shard`.
    virtual void presence(unsigned shard, std::string_view channel, presence_handler done) = 0;

    // User presence: `connection_id` of `user` opened (open = true) or closed on `shard`. A
    // user is online while any of their connections on any node is open.
    virtual void set_user_connection(unsigned shard, std::string_view user,
                                     std::string_view connection_id, bool open) = 0;
    // The open connections of `user` across the cluster (empty: offline); `done` runs on
    // `shard`.
    virtual void user_presence(unsigned shard, std::string_view user,
                               user_presence_handler done) = 0;

    // Channels (not user topics) with at least one subscriber, as the broker sees them.
    virtual std::size_t channel_count() const = 0;

    // For /health and /metrics: which broker, and whether it can move messages right now.
    virtual std::string_view kind() const noexcept = 0;
    virtual bool available() const noexcept = 0;

    // Graceful shutdown, after the node's sessions are gone: leave the cluster now rather than
    // after a TTL (and let what the broker still had to send go out first). `done` runs once,
    // on any thread.
    virtual void leave(std::function<void()> done) { done(); }

    // Prometheus text lines of the broker's own metrics (HELP, TYPE and samples), appended to
    // /metrics; empty when it has none. Thread-safe.
    virtual std::string metrics_text() const { return {}; }

    // The live nodes of the cluster as JSON objects, as of the last heartbeat; empty when the
    // broker knows no other node (the memory broker). Thread-safe.
    virtual std::vector<std::string> cluster_nodes() const { return {}; }
};

// The internal topic that reaches every connection of a user.
inline std::string user_topic(std::string_view user_id) {
    std::string topic("\x01u:");
    topic.append(user_id);
    return topic;
}

inline bool is_user_topic(std::string_view topic) noexcept {
    return !topic.empty() && topic.front() == '\x01';
}

}  // namespace wsgate::core
