#pragma once
// A shard: one io_context run by exactly one thread, and everything its connections touch.
//
// Thread safety: all members are used only on the shard's own thread, except context(),
// metrics() (read-only counters) and the constructor/start/join done by the server. Other
// threads reach a shard only through post() on its io_context.
//
// Fan-out is deferred to the flush, which runs once per turn of the event loop (posted after
// every handler already queued). fanout() only appends the frame to its topic's pending list:
// O(1) per message, whatever the number of subscribers. The flush then seals each dirty
// topic's frames into one contiguous buffer, queues that buffer once on every subscriber, and
// writes each connection's queue with one writev. Per turn, a subscriber costs one pointer push
// and one iovec per topic instead of one per message.

#include "core/frame.hpp"
#include "net/metrics.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/container/small_vector.hpp>
#include <boost/json/monotonic_resource.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

namespace wsgate::net {

class server;
class ws_session;

class shard {
public:
    shard(unsigned index, server& owner);
    shard(const shard&) = delete;
    shard& operator=(const shard&) = delete;
    ~shard();

    unsigned index() const noexcept { return index_; }
    boost::asio::io_context& context() noexcept { return context_; }
    server& owner() noexcept { return owner_; }
    shard_metrics& metrics() noexcept { return metrics_; }
    const shard_metrics& metrics() const noexcept { return metrics_; }

    void start();  // spawns the thread
    void stop();   // stops the io_context; the thread ends soon after
    void join();

    // --- on the shard's thread only ---
    bool in_this_thread() noexcept { return context_.get_executor().running_in_this_thread(); }

    // Steady-clock milliseconds, refreshed by every read and every tick.
    std::int64_t now_ms() const noexcept { return now_ms_; }
    std::int64_t refresh_now() noexcept;

    void add_session(ws_session* s);
    void remove_session(ws_session* s);

    // Topic index. `ready` (may be empty) runs once the broker delivers the topic's messages
    // to this node: at once if the topic is already live here, else when the broker says so.
    void subscribe(ws_session* s, const std::string& topic, std::function<void()> ready = {});
    void unsubscribe(ws_session* s, const std::string& topic);
    void fanout(std::string_view topic, const core::frame_ptr& frame);

    // Channel presence: one more / one fewer connection of `user` in `channel` on this shard;
    // the broker is told the shard's new count.
    void presence_joined(const std::string& channel, const std::string& user);
    void presence_left(const std::string& channel, const std::string& user);

    // Adds a session with queued frames to this turn's flush.
    void schedule_flush(std::shared_ptr<ws_session> s);

    std::uint64_t random64() noexcept { return rng_(); }

    // Scratch space for socket reads, shared by all sessions of the shard: an idle
    // connection holds no read buffer of its own.
    std::uint8_t* read_buffer() noexcept { return read_buffer_.get(); }
    static constexpr std::size_t read_buffer_size = 64 * 1024;

    // Backing store for decoding one client frame; released after each frame.
    boost::json::monotonic_resource& json_resource() noexcept { return json_resource_; }

    // Closes every session with 1001 (graceful shutdown).
    void close_all_going_away();

private:
    void request_flush();
    void topic_ready(const std::string& topic);
    void flush_all();
    void seal_topics();
    void arm_tick();
    void on_tick();

    struct string_hash {
        using is_transparent = void;
        std::size_t operator()(std::string_view s) const noexcept {
            return std::hash<std::string_view>{}(s);
        }
    };

    unsigned index_;
    server& owner_;
    boost::asio::io_context context_;
    boost::asio::steady_timer tick_timer_;
    std::thread thread_;
    shard_metrics metrics_;
    std::int64_t now_ms_ = 0;

    std::vector<ws_session*> sessions_;  // each session knows its index here
    struct topic_entry {
        // Most topics (every user's own) have one local subscriber: keep it inline.
        boost::container::small_vector<ws_session*, 1> subscribers;
        std::vector<core::frame_ptr> pending;  // published this turn, not yet queued
    };
    std::unordered_map<std::string, topic_entry, string_hash, std::equal_to<>> topics_;
    std::vector<std::string> dirty_topics_;  // topics with pending frames, in first-use order
    // Topics whose broker subscription is not confirmed yet, with who waits for it. Only such
    // topics have an entry, so settled topics cost nothing here.
    std::unordered_map<std::string, std::vector<std::function<void()>>> unconfirmed_;
    // Connections per (channel, user) on this shard, for channels with presence; the key is
    // channel + '\0' + user.
    std::unordered_map<std::string, std::uint64_t> presence_counts_;
    std::vector<std::shared_ptr<ws_session>> flush_list_;
    bool flush_scheduled_ = false;

    std::mt19937_64 rng_{std::random_device{}()};
    std::unique_ptr<std::uint8_t[]> read_buffer_;
    unsigned char json_buffer_[16 * 1024];
    boost::json::monotonic_resource json_resource_;
};

}  // namespace wsgate::net
