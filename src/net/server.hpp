#pragma once
// The node's network side: N shards (one thread and io_context each), one SO_REUSEPORT
// listener per shard on the same port, the HTTP endpoints and graceful drain.
//
// It implements core::local_delivery: the broker hands it encoded frames and it fans them out
// on the right shards. Node-wide state touched off the hot path (connection count, draining)
// is atomic; nothing on the publish / fan-out path takes a lock shared by all shards.

#include "core/authenticator.hpp"
#include "core/broker.hpp"
#include "net/settings.hpp"
#include "net/shard.hpp"

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace wsgate::net {

class listener;

class server final : public core::local_delivery {
public:
    // `auth` may be null: development mode, where clients name themselves.
    server(server_settings settings, const core::authenticator* auth);
    ~server();

    // The event loop of a shard, for parts that run their I/O on it (the Redis broker).
    boost::asio::io_context& shard_context(unsigned index) { return shards_[index]->context(); }

    // Starts the broker, binds the port on every shard and starts the threads. Throws on bind
    // failure. `broker` must outlive the server.
    void start(core::broker& broker);
    // Stops accepting WebSocket upgrades, reports draining, closes every client with 1001 and
    // calls `done` (on an unspecified thread) once all are gone or the shutdown timeout passed.
    void drain(std::function<void()> done);
    // Stops the shards and joins their threads.
    void stop();

    std::uint16_t port() const noexcept { return bound_port_; }
    const server_settings& settings() const noexcept { return settings_; }
    core::broker& broker() noexcept { return *broker_; }
    const core::authenticator* authenticator() const noexcept { return auth_; }
    std::chrono::milliseconds tick_interval() const noexcept { return tick_interval_; }

    // Connection slots (--max-connections), taken at upgrade, released when a session ends.
    bool try_reserve_connection() noexcept;
    void release_connection() noexcept;
    std::size_t connections() const noexcept {
        return connections_.load(std::memory_order_relaxed);
    }
    bool draining() const noexcept { return draining_.load(std::memory_order_relaxed); }

    // Bodies of the ops endpoints.
    std::string health_json() const;
    std::string stats_json() const;
    std::string root_json() const;
    std::string metrics_text() const;

    // core::local_delivery
    unsigned shard_count() const noexcept override { return static_cast<unsigned>(shards_.size()); }
    void deliver(unsigned shard, std::string_view topic, core::frame_ptr frame) override;
    void post(unsigned shard, std::function<void()> task) override;
    std::string node_info_json() const override;

    // GET /cluster: the live nodes (just this one on the memory broker).
    std::string cluster_json() const;

private:
    server_settings settings_;
    core::broker* broker_ = nullptr;
    const core::authenticator* auth_;
    std::chrono::milliseconds tick_interval_;
    std::vector<std::unique_ptr<shard>> shards_;
    std::vector<std::unique_ptr<listener>> listeners_;
    std::uint16_t bound_port_ = 0;
    std::atomic<std::size_t> connections_{0};
    std::atomic<bool> draining_{false};
    std::chrono::steady_clock::time_point started_;
};

}  // namespace wsgate::net
