#include "net/ws_session.hpp"

#include "core/broker.hpp"
#include "net/server.hpp"
#include "net/shard.hpp"
#include "protocol/rfc6455/frame.hpp"
#include "protocol/v1/server_frame.hpp"

#include <spdlog/spdlog.h>
#include <boost/asio/bind_allocator.hpp>
#include <boost/asio/buffer.hpp>

#include <algorithm>
#include <array>

namespace wsgate::net {

namespace rfc = protocol::rfc6455;
namespace v1 = protocol::v1;
using protocol::v1::command_kind;

namespace {

// Frames with no per-connection content are encoded once for the whole process.
const core::frame_ptr& ping_frame() {
    static const core::frame_ptr frame = [] {
        auto f = std::make_shared<core::wire_frame>();
        f->storage = rfc::make_frame(rfc::opcode::ping, {});
        return f;
    }();
    return frame;
}

core::frame_ptr control_frame(std::string bytes) {
    auto f = std::make_shared<core::wire_frame>();
    f->storage = std::move(bytes);
    return f;
}

constexpr std::size_t max_gather = 64;  // buffers per writev

}  // namespace

ws_session::ws_session(shard& home, tcp_socket socket, session_mode mode,
                       std::optional<core::identity> identity)
    : shard_(home),
      socket_(std::move(socket)),
      reader_(mode == session_mode::echo ? home.owner().settings().echo_max_message_size
                                         : home.owner().settings().max_message_size),
      mode_(mode) {
    counted_ = true;
    if (identity) user_id_ = std::move(identity->user_id);
}

ws_session::~ws_session() {
    if (counted_) shard_.owner().release_connection();
}

void ws_session::start(std::string handshake, std::string early_bytes, std::string_view remote) {
    const std::int64_t now = shard_.refresh_now();
    opened_ms_ = last_read_ms_ = last_ping_ms_ = now;
    session_nonce_ = shard_.random64();

    boost::system::error_code ec;
    socket_.non_blocking(true, ec);
    socket_.set_option(boost::asio::ip::tcp::no_delay(true), ec);
    shard_.add_session(this);
    auto response = std::make_shared<core::wire_frame>();
    response->storage = std::move(handshake);
    response->frames = 0;
    push(std::move(response));
    auto& m = shard_.metrics();
    m.connections.add(1);
    m.connections_opened.add(1);

    if (!user_id_.empty()) {
        // Authenticated by the upgrade request: the 101 waits (queued first, writes held) until
        // the user's topic is live across the cluster, so a direct message sent to this user
        // once the client sees the upgrade succeed cannot miss this connection.
        std::string user = std::move(user_id_);
        user_id_.clear();
        writes_held_ = true;
        become_authenticated(std::move(user),
                             [self = shared_from_this()] { self->release_writes(); });
    }
    spdlog::info("ws open session={} remote={} path={} user={}", session_id(), remote,
                 mode_ == session_mode::echo ? "/echo" : "/ws",
                 authenticated_ ? user_id_ : std::string("-"));

    if (!early_bytes.empty() &&
        !process_input(reinterpret_cast<std::uint8_t*>(early_bytes.data()), early_bytes.size())) {
        return;
    }
    wait_readable();
}

// ---------------------------------------------------------------- reading

void ws_session::wait_readable() {
    // An idle connection keeps this wait pending for its whole life, so it is allocated at its
    // exact size rather than in Asio's recycled (and much larger) handler blocks.
    socket_.async_wait(tcp_socket::wait_read,
                       boost::asio::bind_allocator(
                           std::allocator<void>(),
                           [self = shared_from_this()](const boost::system::error_code& ec) {
                               if (ec || self->state_ == state::closed) return;
                               self->on_readable();
                           }));
}

void ws_session::on_readable() {
    std::uint8_t* buffer = shard_.read_buffer();
    auto& m = shard_.metrics();
    last_read_ms_ = shard_.refresh_now();
    // Bounded so that one busy client cannot starve the others on this shard.
    for (int round = 0; round < 8; ++round) {
        boost::system::error_code ec;
        const std::size_t n =
            socket_.read_some(boost::asio::buffer(buffer, shard::read_buffer_size), ec);
        if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) break;
        if (ec) {
            destroy(ec == boost::asio::error::eof ? "peer closed the connection"
                                                  : "read failed: " + ec.message());
            return;
        }
        m.bytes_in.add(n);
        if (failed_) continue;  // after a violation, input is read only to be dropped
        if (!process_input(buffer, n)) return;
        if (n < shard::read_buffer_size) break;
    }
    if (state_ != state::closed) wait_readable();
}

bool ws_session::process_input(std::uint8_t* data, std::size_t size) {
    rfc::message_reader::result r;
    if (pending_input_.empty()) {
        r = reader_.consume(data, size, *this);
        if (!r.failure && state_ != state::closed && r.consumed < size) {
            pending_input_.reserve(std::max(size - r.consumed, r.next_frame_size));
            pending_input_.assign(reinterpret_cast<const char*>(data) + r.consumed,
                                  size - r.consumed);
        }
    } else {
        pending_input_.append(reinterpret_cast<const char*>(data), size);
        r = reader_.consume(reinterpret_cast<std::uint8_t*>(pending_input_.data()),
                            pending_input_.size(), *this);
        if (!r.failure) {
            pending_input_.erase(0, r.consumed);
            // Give the memory back once the frame is done: idle connections hold no buffer.
            if (pending_input_.empty()) std::string().swap(pending_input_);
        }
    }
    if (r.failure) {
        shard_.metrics().protocol_closes.add();
        fail_connection(r.failure.close_code, r.failure.reason);
        return state_ != state::closed;
    }
    return state_ != state::closed;
}

bool ws_session::on_message(rfc::opcode op, std::string_view payload) {
    auto& m = shard_.metrics();
    m.frames_in.add();
    if (state_ != state::open) return true;  // after our close, data is ignored (RFC 6455 5.5.1)
    m.messages_in.add();
    if (mode_ == session_mode::echo) {
        auto frame = std::make_shared<core::wire_frame>();
        frame->storage = rfc::make_frame(op, payload);
        reply(std::move(frame));
        return true;
    }
    if (op == rfc::opcode::binary) {
        v1::command none;
        reply_error(none, core::error::binary_not_supported,
                    core::make_error_code(core::error::binary_not_supported).message());
        return true;
    }
    handle_text(payload);
    return state_ == state::open;
}

bool ws_session::on_ping(std::string_view payload) {
    shard_.metrics().frames_in.add();
    if (state_ == state::open) reply(control_frame(rfc::make_frame(rfc::opcode::pong, payload)));
    return true;
}

bool ws_session::on_pong(std::string_view) {
    shard_.metrics().frames_in.add();
    return true;
}

bool ws_session::on_close(std::uint16_t code, std::string_view reason) {
    shard_.metrics().frames_in.add();
    if (state_ == state::closing) {
        // The peer answered our close: the handshake is complete.
        destroy("close handshake complete");
        return false;
    }
    if (state_ != state::open) return false;
    close_code_ = code;
    close_reason_ = "client closed";
    // Echo the status code (RFC 6455 5.5.1), then close once it is written.
    const std::uint16_t echo_code =
        code == rfc::close_code::no_status ? rfc::close_code::normal : code;
    state_ = state::acknowledged;
    push(control_frame(rfc::make_close_frame(echo_code, {})));
    (void)reason;
    close_deadline_ms_ = shard_.now_ms() + shard_.owner().settings().close_timeout.count();
    return false;
}

// ---------------------------------------------------------------- protocol v1

void ws_session::handle_text(std::string_view text) {
    auto& resource = shard_.json_resource();
    v1::decode_result decoded = v1::decode_client_frame(text, boost::json::storage_ptr(&resource));
    resource.release();
    if (!decoded.ok()) {
        reply_error(decoded.cmd, decoded.error, decoded.detail);
        return;
    }
    handle_command(decoded.cmd);
}

void ws_session::handle_command(v1::command& cmd) {
    switch (cmd.kind) {
        case command_kind::ping:
            reply(v1::pong(cmd.id));
            return;
        case command_kind::auth:
        case command_kind::register_user:
            handle_auth(cmd);
            return;
        default:
            break;
    }
    if (!authenticated_) {
        reply_error(cmd, core::error::not_authenticated,
                    "authenticate first: send an auth frame (docs/protocol.md)");
        return;
    }
    switch (cmd.kind) {
        case command_kind::subscribe:
            handle_subscribe(cmd);
            break;
        case command_kind::unsubscribe:
            handle_unsubscribe(cmd);
            break;
        case command_kind::publish:
        case command_kind::legacy_publish:
        case command_kind::legacy_text:
            handle_publish(cmd);
            break;
        case command_kind::direct:
        case command_kind::legacy_direct:
            handle_direct(cmd);
            break;
        case command_kind::presence:
            handle_presence(cmd);
            break;
        default:
            break;
    }
}

void ws_session::handle_auth(v1::command& cmd) {
    if (authenticated_) {
        reply_error(cmd, core::error::already_authenticated,
                    core::make_error_code(core::error::already_authenticated).message());
        return;
    }
    const core::authenticator* auth = shard_.owner().authenticator();
    if (auth != nullptr) {
        if (cmd.kind == command_kind::register_user || cmd.token.empty()) {
            reply_error(cmd, core::error::token_missing,
                        "a JWT is required: send {\"type\":\"auth\",\"payload\":{\"token\":...}}");
            return;
        }
        auto identity = auth->authenticate(cmd.token, std::chrono::system_clock::now());
        if (!identity) {
            const auto code = static_cast<core::error>(identity.error().value());
            reply_error(cmd,
                        identity.error().category() == core::error_category()
                            ? code
                            : core::error::token_malformed,
                        identity.error().message());
            return;
        }
        cmd.user_id = std::move(identity->user_id);
    } else if (cmd.user_id.empty()) {
        reply_error(cmd, core::error::missing_field,
                    "development mode: auth needs payload.user_id");
        return;
    }
    // The reply waits until the user's topic is live across the cluster, so a direct message
    // sent to this user after the client reads it cannot miss this connection.
    const bool seed_style = cmd.kind == command_kind::register_user;
    become_authenticated(
        std::move(cmd.user_id), [self = shared_from_this(), id = std::move(cmd.id), seed_style] {
            self->reply(seed_style ? v1::registered()
                                   : v1::auth_success(id, self->user_id_, self->session_id()));
        });
}

void ws_session::become_authenticated(std::string user_id, std::function<void()> ready) {
    authenticated_ = true;
    user_id_ = std::move(user_id);
    shard_.subscribe(this, core::user_topic(user_id_), std::move(ready));
    shard_.owner().broker().set_user_connection(shard_.index(), user_id_, session_id(), true);
    spdlog::debug("ws auth session={} user={}", session_id(), user_id_);
}

bool ws_session::join_channel(const std::string& channel, const v1::command& cmd,
                              std::function<void()> ready) {
    if (std::find(channels_.begin(), channels_.end(), channel) != channels_.end()) {
        if (ready) ready();
        return true;
    }
    if (channels_.size() >= shard_.owner().settings().max_channels) {
        reply_error(cmd, core::error::too_many_channels,
                    "at most " + std::to_string(shard_.owner().settings().max_channels) +
                        " channels per connection");
        return false;
    }
    channels_.push_back(channel);
    shard_.subscribe(this, channel, std::move(ready));
    if (shard_.owner().settings().presence_enabled(channel)) {
        shard_.presence_joined(channel, user_id_);
    }
    return true;
}

void ws_session::handle_subscribe(v1::command& cmd) {
    // All or nothing: count what is new before joining anything.
    std::size_t fresh = 0;
    for (std::size_t i = 0; i < cmd.channels.size(); ++i) {
        const auto& c = cmd.channels[i];
        const bool known = std::find(channels_.begin(), channels_.end(), c) != channels_.end();
        const bool repeated =
            std::find(cmd.channels.begin(), cmd.channels.begin() + static_cast<std::ptrdiff_t>(i),
                      c) != cmd.channels.begin() + static_cast<std::ptrdiff_t>(i);
        if (!known && !repeated) ++fresh;
    }
    const std::size_t limit = shard_.owner().settings().max_channels;
    if (channels_.size() + fresh > limit) {
        reply_error(cmd, core::error::too_many_channels,
                    "at most " + std::to_string(limit) + " channels per connection");
        return;
    }
    // "subscribed" goes out once every channel is live on this node, so a message published
    // after the client reads it is delivered (with Redis: once Redis confirmed the SUBSCRIBE).
    // One count per channel, plus one held until every join has been asked for.
    auto remaining = std::make_shared<std::size_t>(cmd.channels.size() + 1);
    auto one_ready = [self = shared_from_this(), remaining, id = cmd.id,
                      channels = cmd.channels]() {
        if (--*remaining == 0) self->reply(v1::subscribed(id, channels, true));
    };
    for (const auto& c : cmd.channels) join_channel(c, cmd, one_ready);
    one_ready();
}

void ws_session::handle_unsubscribe(v1::command& cmd) {
    for (const auto& c : cmd.channels) {
        auto it = std::find(channels_.begin(), channels_.end(), c);
        if (it == channels_.end()) continue;
        *it = std::move(channels_.back());
        channels_.pop_back();
        leave_channel(c);
    }
    reply(v1::subscribed(cmd.id, cmd.channels, false));
}

void ws_session::handle_publish(v1::command& cmd) {
    // Seed-000 clients expect to hear their channel: they join it implicitly.
    if (cmd.legacy && !join_channel(cmd.channel, cmd)) return;
    shard_.metrics().publishes.add();
    const core::publication message{cmd.channel, user_id_, cmd.data};
    shard_.owner().broker().publish(
        shard_.index(), message,
        [self = shared_from_this(), id = std::move(cmd.id), channel = cmd.channel,
         legacy = cmd.legacy](core::result<core::publish_receipt> r) {
            if (!r) {
                v1::command origin;
                origin.id = id;
                origin.legacy = legacy;
                self->reply_error(origin, static_cast<core::error>(r.error().value()),
                                  r.error().message());
                return;
            }
            if (!legacy) self->reply(v1::publish_ack(id, channel, r->seq));
        });
}

void ws_session::handle_direct(v1::command& cmd) {
    const bool legacy = cmd.kind == command_kind::legacy_direct;
    core::frame_ptr frame =
        legacy ? v1::legacy_direct_message(user_id_, cmd.data)
               : v1::direct_message(
                     user_id_, v1::format_timestamp(std::chrono::system_clock::now()), cmd.data);
    shard_.metrics().publishes.add();
    shard_.owner().broker().send(
        shard_.index(), core::user_topic(cmd.to), std::move(frame),
        [self = shared_from_this(), id = std::move(cmd.id), to = cmd.to,
         legacy](boost::system::error_code ec) {
            if (ec) {
                v1::command origin;
                origin.id = id;
                origin.legacy = legacy;
                const auto code = ec.category() == core::error_category()
                                      ? static_cast<core::error>(ec.value())
                                      : core::error::internal_error;
                self->reply_error(origin, code,
                                  code == core::error::user_offline ? "user " + to + " is offline"
                                                                    : ec.message());
                return;
            }
            if (!legacy) self->reply(v1::direct_ack(id, to));
        });
}

void ws_session::leave_channel(const std::string& channel) {
    shard_.unsubscribe(this, channel);
    if (shard_.owner().settings().presence_enabled(channel)) {
        shard_.presence_left(channel, user_id_);
    }
}

void ws_session::handle_presence(v1::command& cmd) {
    if (!shard_.owner().settings().presence_enabled(cmd.channel)) {
        reply_error(cmd, core::error::presence_disabled,
                    core::make_error_code(core::error::presence_disabled).message());
        return;
    }
    shard_.owner().broker().presence(
        shard_.index(), cmd.channel,
        [self = shared_from_this(), id = std::move(cmd.id),
         channel = cmd.channel](core::result<std::vector<core::presence_member>> r) {
            if (!r) {
                v1::command origin;
                origin.id = id;
                self->reply_error(origin, static_cast<core::error>(r.error().value()),
                                  r.error().message());
                return;
            }
            self->reply(v1::presence_reply(id, channel, *r));
        });
}

void ws_session::reply(core::frame_ptr frame) {
    if (state_ != state::open) return;
    push(std::move(frame));
}

void ws_session::reply_error(const v1::command& cmd, core::error code, std::string_view message) {
    shard_.metrics().errors[static_cast<std::size_t>(code)].add();
    reply(v1::error_frame(cmd.id, code, message, cmd.legacy));
}

// ---------------------------------------------------------------- writing

void ws_session::enqueue(const core::frame_ptr& frame) {
    if (state_ != state::open) return;
    const std::size_t limit = shard_.owner().settings().max_outbound_bytes;
    if (queued_bytes_ + frame->size() > limit) {
        shard_.metrics().slow_consumer_disconnects.add();
        spdlog::warn("ws slow consumer session={} user={} queued_bytes={}", session_id(), user_id_,
                     queued_bytes_);
        close_with(rfc::close_code::slow_consumer, "slow consumer");
        return;
    }
    push(frame);
}

void ws_session::push(core::frame_ptr frame) {
    queued_bytes_ += frame->size();
    shard_.metrics().messages_out.add(frame->frames);
    queue_.push_back(std::move(frame));
    if (!in_flush_list_ && !waiting_writable_) {
        in_flush_list_ = true;
        shard_.schedule_flush(shared_from_this());
    }
}

void ws_session::flush() {
    in_flush_list_ = false;
    if (state_ == state::closed || waiting_writable_ || writes_held_) return;
    write_now();
}

void ws_session::release_writes() {
    writes_held_ = false;
    if (state_ == state::closed || waiting_writable_ || in_flush_list_) return;
    if (queue_head_ < queue_.size()) {
        in_flush_list_ = true;
        shard_.schedule_flush(shared_from_this());
    }
}

void ws_session::write_now() {
    auto& m = shard_.metrics();
    while (queue_head_ < queue_.size()) {
        std::array<boost::asio::const_buffer, max_gather> buffers;
        std::size_t count = 0;
        for (std::size_t i = queue_head_; i < queue_.size() && count < max_gather; ++i) {
            auto bytes = queue_[i]->bytes();
            if (i == queue_head_) bytes.remove_prefix(head_offset_);
            buffers[count++] = boost::asio::buffer(bytes.data(), bytes.size());
        }
        boost::system::error_code ec;
        std::size_t written = socket_.write_some(
            std::span<const boost::asio::const_buffer>(buffers.data(), count), ec);
        if (ec == boost::asio::error::would_block || ec == boost::asio::error::try_again) {
            // A client that never quite catches up must not grow the vector with spent slots.
            if (queue_head_ >= 64) {
                queue_.erase(queue_.begin(),
                             queue_.begin() + static_cast<std::ptrdiff_t>(queue_head_));
                queue_head_ = 0;
            }
            wait_writable();
            return;
        }
        if (ec) {
            destroy("write failed: " + ec.message());
            return;
        }
        m.bytes_out.add(written);
        queued_bytes_ -= written;
        while (written > 0) {
            const std::size_t left = queue_[queue_head_]->size() - head_offset_;
            if (written < left) {
                head_offset_ += written;
                break;
            }
            written -= left;
            queue_[queue_head_].reset();
            ++queue_head_;
            head_offset_ = 0;
        }
    }
    queue_.clear();
    queue_head_ = 0;
    if (queue_.capacity() > 256) std::vector<core::frame_ptr>().swap(queue_);
    if (state_ == state::acknowledged) {
        destroy("close handshake complete");
    } else if (failed_) {
        boost::system::error_code ignored;
        socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_send, ignored);
    }
}

void ws_session::wait_writable() {
    waiting_writable_ = true;
    socket_.async_wait(boost::asio::ip::tcp::socket::wait_write,
                       [self = shared_from_this()](const boost::system::error_code& ec) {
                           self->waiting_writable_ = false;
                           if (ec || self->state_ == state::closed) return;
                           self->write_now();
                       });
}

// ---------------------------------------------------------------- closing

void ws_session::close_with(std::uint16_t code, std::string_view reason) {
    if (state_ != state::open) return;
    state_ = state::closing;
    close_code_ = code;
    close_reason_ = reason;
    // Drop what the client has not started to receive; a frame half written must be finished
    // or the close frame would land inside it.
    const std::size_t keep = queue_head_ + (head_offset_ > 0 ? 1 : 0);
    for (std::size_t i = keep; i < queue_.size(); ++i) queued_bytes_ -= queue_[i]->size();
    queue_.resize(keep);
    push(control_frame(rfc::make_close_frame(code, reason)));
    close_deadline_ms_ = shard_.now_ms() + shard_.owner().settings().close_timeout.count();
}

void ws_session::fail_connection(std::uint16_t code, std::string_view reason) {
    if (state_ != state::open) return;
    std::string().swap(pending_input_);
    failed_ = true;
    close_with(code, reason);
}

void ws_session::close_going_away() {
    if (state_ == state::open) {
        close_with(rfc::close_code::going_away, "going away");
        const auto drain = shard_.owner().settings().shutdown_timeout.count();
        close_deadline_ms_ = std::min(close_deadline_ms_, shard_.now_ms() + drain);
    }
}

void ws_session::on_tick(std::int64_t now) {
    const auto& s = shard_.owner().settings();
    switch (state_) {
        case state::open:
            if (mode_ == session_mode::gateway && !authenticated_ &&
                now - opened_ms_ >= s.auth_timeout.count()) {
                close_with(rfc::close_code::auth_timeout, "auth timeout");
            } else if (now - last_read_ms_ >= s.idle_timeout.count()) {
                close_with(rfc::close_code::idle_timeout, "idle timeout");
            } else if (now - last_ping_ms_ >= s.ping_interval.count()) {
                last_ping_ms_ = now;
                push(ping_frame());
            }
            break;
        case state::closing:
        case state::acknowledged:
            if (now >= close_deadline_ms_) destroy("peer did not finish the close handshake");
            break;
        case state::closed:
            break;
    }
}

std::string ws_session::session_id() const {
    char id[24];
    std::snprintf(id, sizeof id, "-%016llx", static_cast<unsigned long long>(session_nonce_));
    return shard_.owner().settings().node_id + id;
}

void ws_session::destroy(std::string_view why) {
    if (state_ == state::closed) return;
    state_ = state::closed;
    for (const auto& c : channels_) leave_channel(c);
    channels_.clear();
    if (authenticated_) {
        shard_.unsubscribe(this, core::user_topic(user_id_));
        shard_.owner().broker().set_user_connection(shard_.index(), user_id_, session_id(), false);
    }
    shard_.remove_session(this);
    auto& m = shard_.metrics();
    m.connections.add(-1);
    m.connections_closed.add(1);
    queue_.clear();
    boost::system::error_code ec;
    socket_.shutdown(boost::asio::ip::tcp::socket::shutdown_both, ec);
    socket_.close(ec);  // pending waits complete with operation_aborted and drop their refs
    spdlog::info("ws close session={} user={} code={} reason=\"{}\" detail=\"{}\" duration_ms={}",
                 session_id(), authenticated_ ? user_id_ : std::string("-"), close_code_,
                 close_reason_, why, shard_.now_ms() - opened_ms_);
}

}  // namespace wsgate::net
