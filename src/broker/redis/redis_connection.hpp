#pragma once
// One Redis connection (hiredis async API) driven by an Asio io_context: no thread of its own,
// no blocking call. Use it only on the thread that runs that io_context.
//
// The connection keeps itself up: when the server goes away it reconnects with capped
// exponential backoff and jitter, runs AUTH / SELECT first, and then calls on_connected so the
// owner can restore its state (the broker resubscribes there). Commands sent while it is down
// fail at once with an error reply; nothing is queued silently.
//
// Commands are pipelined: command() writes without waiting for earlier replies, and replies
// complete in order.

#include "broker/redis/endpoint.hpp"
#include "broker/redis/reply.hpp"

#include <boost/asio/io_context.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wsgate::broker::redis {

class connection {
public:
    struct callbacks {
        std::function<void()> on_connected;     // after AUTH/SELECT, on every (re)connect
        std::function<void()> on_disconnected;  // the link dropped; reconnecting is scheduled
        // Pub/sub deliveries on a connection that subscribed: the whole array as Redis sent it,
        // e.g. ["message", channel, payload] or ["smessage", channel, payload].
        std::function<void(const reply&)> on_message;
    };

    struct options {
        std::chrono::milliseconds connect_timeout{2000};
        std::chrono::milliseconds backoff_initial{100};
        std::chrono::milliseconds backoff_max{5000};
    };

    connection(boost::asio::io_context& context, endpoint where, callbacks cb, std::string name,
               options opts);
    connection(boost::asio::io_context& context, endpoint where, callbacks cb, std::string name)
        : connection(context, std::move(where), std::move(cb), std::move(name), options{}) {}
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    void start();  // begins connecting; returns at once
    void stop();   // closes for good; pending commands fail with an error reply

    bool connected() const noexcept;
    const std::string& name() const noexcept;

    // Sends one command. `done` (may be empty) runs once with the reply, or with an error reply
    // "ERR connection lost" / "ERR not connected" when the link is or goes down first.
    // For SUBSCRIBE / SSUBSCRIBE / UNSUBSCRIBE / SUNSUBSCRIBE the confirmations go to `done`
    // too (one call per channel confirmed), and the messages to callbacks::on_message.
    void command(const std::vector<std::string>& argv, reply_handler done = {});

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace wsgate::broker::redis
