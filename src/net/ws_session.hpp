#pragma once
// One WebSocket connection after the upgrade.
//
// Lifetime: owned by shared_ptrs held in its pending socket operations (and the shard's flush
// list); the shard's registry and topic index hold raw pointers that destroy() removes.
// Threading: lives entirely on its shard's thread.
//
// I/O is reactor style: the session waits for readability, then reads with non-blocking
// read_some() into the shard's shared buffer, so an idle connection holds no read buffer; only
// the tail of an incomplete frame is kept per connection. Writes are gathered: frames are
// queued (shared, immutable buffers) and written by flush() with one writev per connection per
// event-loop turn; only when the socket is full does the session wait for writability.
// The queue is bounded in bytes (--max-outbound-bytes): past it the client is a slow consumer
// and is closed with 4002, without ever blocking the others.

#include "core/authenticator.hpp"
#include "core/frame.hpp"
#include "net/tcp_socket.hpp"
#include "protocol/rfc6455/message_reader.hpp"
#include "protocol/v1/client_frame.hpp"

#include <boost/asio/ip/tcp.hpp>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace wsgate::net {

class shard;

enum class session_mode { gateway, echo };

class ws_session final : public std::enable_shared_from_this<ws_session>,
                         private protocol::rfc6455::message_handler {
public:
    ws_session(shard& home, tcp_socket socket, session_mode mode,
               std::optional<core::identity> identity);
    ~ws_session();

    // Queues `handshake` (the 101 response) as the first bytes out, registers the session
    // (and its user, so direct messages reach it from this moment) and starts reading.
    // `early_bytes`: frames that arrived together with the upgrade request.
    void start(std::string handshake, std::string early_bytes, std::string_view remote);

    // Queues a frame for the next flush. Never closes or unsubscribes synchronously.
    void enqueue(const core::frame_ptr& frame);
    void flush();
    // Ends writes_held_ and writes what queued meanwhile (the 101 first).
    void release_writes();
    void on_tick(std::int64_t now_ms);
    void close_going_away();

    std::size_t registry_index_ = 0;  // position in the shard's session list

private:
    enum class state : std::uint8_t {
        open,
        closing,       // we sent a close frame and wait for the peer's
        acknowledged,  // the peer closed; we destroy once our reply is written
        closed,
    };

    // Reading
    void wait_readable();
    void on_readable();
    bool process_input(std::uint8_t* data, std::size_t size);

    // protocol::rfc6455::message_handler
    bool on_message(protocol::rfc6455::opcode op, std::string_view payload) override;
    bool on_ping(std::string_view payload) override;
    bool on_pong(std::string_view payload) override;
    bool on_close(std::uint16_t code, std::string_view reason) override;

    // Protocol v1
    void handle_text(std::string_view text);
    void handle_command(protocol::v1::command& cmd);
    void handle_auth(protocol::v1::command& cmd);
    void handle_subscribe(protocol::v1::command& cmd);
    void handle_unsubscribe(protocol::v1::command& cmd);
    void handle_publish(protocol::v1::command& cmd);
    void handle_direct(protocol::v1::command& cmd);
    void handle_presence(protocol::v1::command& cmd);
    // Leaves a channel: the topic index first, then presence (so a leave is not sent to the
    // connection that leaves).
    void leave_channel(const std::string& channel);
    // `ready` runs once the channel's messages reach this node (see shard::subscribe).
    bool join_channel(const std::string& channel, const protocol::v1::command& cmd,
                      std::function<void()> ready = {});
    // `ready` runs once direct messages to the user reach this node (see shard::subscribe).
    void become_authenticated(std::string user_id, std::function<void()> ready = {});
    void reply(core::frame_ptr frame);
    void reply_error(const protocol::v1::command& cmd, core::error code, std::string_view message);

    // Writing and closing
    void push(core::frame_ptr frame);
    void write_now();
    void wait_writable();
    void close_with(std::uint16_t code, std::string_view reason);
    // RFC 6455 7.1.7: after a protocol violation, send the close frame, then FIN, and discard
    // whatever else arrives instead of parsing it or waiting for a close reply.
    void fail_connection(std::uint16_t code, std::string_view reason);
    void destroy(std::string_view why);
    std::string session_id() const;

    shard& shard_;
    tcp_socket socket_;
    protocol::rfc6455::message_reader reader_;
    std::string pending_input_;  // tail of an incomplete frame

    std::vector<core::frame_ptr> queue_;
    std::size_t queue_head_ = 0;   // first frame not fully written
    std::size_t head_offset_ = 0;  // bytes of queue_[queue_head_] already written
    std::size_t queued_bytes_ = 0;
    bool in_flush_list_ = false;
    bool writes_held_ = false;  // the 101 of an upgrade-authenticated session waits, see start()
    bool waiting_writable_ = false;
    bool failed_ = false;  // input is discarded; FIN follows the close frame

    session_mode mode_;
    state state_ = state::open;
    bool authenticated_ = false;
    bool counted_ = false;  // holds one of the node's connection slots
    std::uint16_t close_code_ = 0;
    std::string_view close_reason_;  // always a string literal

    std::int64_t opened_ms_ = 0;
    std::int64_t last_read_ms_ = 0;
    std::int64_t last_ping_ms_ = 0;
    std::int64_t close_deadline_ms_ = 0;

    std::string user_id_;
    std::uint64_t session_nonce_ = 0;    // with the node id, the session id (session_id())
    std::vector<std::string> channels_;  // subscribed client channels
};

}  // namespace wsgate::net
