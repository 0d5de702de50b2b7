#pragma once

// client_pool: every WebSocket connection of the generator and the one epoll loop driving them.
//
// Threading: one thread. Nothing here locks; the scenario calls poll() and the pool calls the
// handler back from inside it.
//
// Lifetime: the pool owns a fixed vector of connection slots, sized once, so a slot index is a
// connection's identity for the whole run (epoll's user data is the index). A slot whose
// connection went away can be opened again by the next establish().
//
// Set-up: establish() opens every slot not ready with at most `concurrency` in flight: TCP
// connect (optionally bound to one of several 127.0.0.x source addresses, so more than 64k
// connections fit), HTTP upgrade, `auth` frame when a token is given, `subscribe` when the
// slot has a channel. A slot is ready once all of that has been answered.
//
// Read path, built to receive millions of small frames per second on one core: one read of up
// to 256 KiB into a buffer shared by all connections, the connection's partial-frame tail
// copied in front of it; frame headers are walked in place and each complete text frame is
// handed to the handler as a pointer into that buffer, valid only during the call. Only the
// leftover partial frame is kept per connection. No allocation per frame.
//
// Write path: frames are appended to the connection's output buffer and written at once;
// whatever the socket does not take waits for EPOLLOUT. The buffers keep their capacity, so
// steady-state sending allocates nothing either.

#include <netinet/in.h>

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <sys/epoll.h>

#include "latency_histogram.hpp"

namespace wsgate::bench {

struct pool_config {
    sockaddr_in server{};
    // Slots from `second_server_from` on connect to `second_server` instead (another node of a
    // cluster: publishers on one node, subscribers on another).
    std::uint32_t second_server_from = UINT32_MAX;
    sockaddr_in second_server{};
    std::string host_header;  // Host: header value, "127.0.0.1:8080"
    std::string path = "/ws";
    std::string token;                   // non-empty: authenticate with an auth frame
    std::string user_prefix = "bench-";  // development mode: /ws?user_id=<prefix><slot>
    std::vector<in_addr> source_addrs;   // bind() before connect, round-robin; empty: kernel picks
    std::vector<std::string> channels;   // names of the channel indices slots subscribe to
    int concurrency = 500;               // set-ups in flight at once
    double connect_timeout_s = 10;       // per connection, TCP connect to ready
    bool progress = true;                // print set-up progress to stderr once a second
};

// What the scenario sees of a ready connection.
class pool_handler {
public:
    // A text message on a ready connection. `data` points into the shared read buffer and is
    // valid only during the call; `now_ns` is the monotonic time the bytes were read.
    virtual void on_message(std::uint32_t slot, const char* data, std::size_t len,
                            std::int64_t now_ns) = 0;
    // A ready connection went away (close frame, EOF, reset); `reason` as in client_pool::closes.
    virtual void on_closed(std::uint32_t slot, std::string_view reason) {
        (void)slot;
        (void)reason;
    }

protected:
    ~pool_handler() = default;
};

struct establish_result {
    std::uint64_t attempted = 0;
    std::uint64_t connected = 0;
    std::uint64_t failed = 0;
    std::int64_t elapsed_ns = 0;
    // By reason: refused, timeout, http_503, auth_error, subscribe_error, close_4001, reset, ...
    std::map<std::string, std::uint64_t> failures;
    std::map<std::string, std::string> failure_samples;  // the first detail seen per reason
    latency_histogram setup_latency;  // TCP connect to ready, per connection that got there
};

class client_pool {
public:
    static constexpr std::uint32_t no_channel = UINT32_MAX;

    client_pool(pool_config config, std::uint32_t slots);
    ~client_pool();
    client_pool(const client_pool&) = delete;
    client_pool& operator=(const client_pool&) = delete;

    void set_handler(pool_handler* handler) { handler_ = handler; }
    // The channel (index into pool_config::channels) the slot subscribes to once connected.
    void assign_channel(std::uint32_t slot, std::uint32_t channel);

    // Opens every slot that is not ready and returns when each is ready or has failed.
    establish_result establish();

    // One round of the event loop: waits up to timeout_ms for events and handles them.
    void poll(int timeout_ms);
    // Runs the event loop until `deadline_ns` (monotonic) or an interrupt.
    void run_until(std::int64_t deadline_ns);

    // Sends a text frame now (what the socket does not take is queued).
    void send_text(std::uint32_t slot, std::string_view payload);
    // For batching: append ready-made masked frames here, then flush() once.
    std::string& out_buffer(std::uint32_t slot) { return slots_[slot].out; }
    void flush(std::uint32_t slot);
    std::size_t pending_out_bytes(std::uint32_t slot) const {
        return slots_[slot].out.size() - slots_[slot].out_off;
    }

    bool is_ready(std::uint32_t slot) const { return slots_[slot].st == state::ready; }
    std::uint32_t size() const { return static_cast<std::uint32_t>(slots_.size()); }
    std::uint32_t ready_count() const { return ready_count_; }

    // Closes every connection (close frame 1000, then the socket) without counting it.
    void close_all();

    // Ready connections that went away, cumulative, by reason: close_<code> for a close frame,
    // eof (no close frame), reset, protocol_error, ...
    const std::map<std::string, std::uint64_t>& closes() const { return closes_; }
    // Monotonic time of the last message on a ready connection, to wait for quiet.
    std::int64_t last_message_ns() const { return last_message_ns_; }
    std::uint64_t bytes_received() const { return bytes_in_; }

private:
    enum class state : std::uint8_t {
        idle,
        tcp_connecting,
        http_handshake,
        authenticating,
        subscribing,
        ready,
        closed,
    };

    struct connection {
        int fd = -1;
        state st = state::idle;
        bool epollout = false;     // EPOLLOUT is in the registered interest set
        bool fragmenting = false;  // a fragmented message is being reassembled in `fragment`
        std::uint32_t channel = no_channel;
        std::int64_t started_ns = 0;   // set-up began
        std::int64_t deadline_ns = 0;  // set-up must complete by then
        std::string in_tail;           // partial frame (or HTTP response) left from the last read
        std::string out;               // bytes to send; out_off of them are already sent
        std::size_t out_off = 0;
        std::string fragment;
    };

    static bool setting_up(state s) { return s >= state::tcp_connecting && s < state::ready; }

    void start(std::uint32_t slot);
    void on_event(std::uint32_t slot, std::uint32_t events);
    void on_tcp_connected(std::uint32_t slot);
    void on_readable(std::uint32_t slot);
    std::size_t on_handshake_response(std::uint32_t slot, const char* data, std::size_t len);
    std::size_t on_frames(std::uint32_t slot, char* data, std::size_t len, std::int64_t now_ns);
    void on_message(std::uint32_t slot, const char* data, std::size_t len, std::int64_t now_ns);
    void after_upgrade(std::uint32_t slot);
    void after_auth(std::uint32_t slot);
    void become_ready(std::uint32_t slot);
    // Closes the socket and accounts for it: a set-up failure or a close of a ready connection.
    void fail(std::uint32_t slot, const std::string& reason, std::string_view detail = {});
    void fail_errno(std::uint32_t slot, int err, std::string_view what);
    void set_epollout(std::uint32_t slot, bool on);
    void expire_setups(std::int64_t now_ns);

    pool_config config_;
    std::string expected_accept_;
    std::vector<std::string> subscribe_frames_;  // per channel, unmasked payload
    std::vector<connection> slots_;
    std::vector<char> read_buffer_;
    std::vector<epoll_event> events_;
    int epoll_fd_ = -1;
    pool_handler* handler_ = nullptr;

    std::uint32_t in_flight_ = 0;
    std::uint32_t ready_count_ = 0;
    establish_result current_;  // of the establish() in progress
    std::map<std::string, std::uint64_t> closes_;
    std::int64_t last_message_ns_ = 0;
    std::uint64_t bytes_in_ = 0;
};

// A set-up or close reason for an errno: refused, reset, timeout, no_source_port,
// too_many_open_files, or the errno's name.
std::string errno_reason(int err);

}  // namespace wsgate::bench
