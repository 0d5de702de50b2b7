#include "client_pool.hpp"

#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

#include "clock.hpp"
#include "interrupt.hpp"
#include "ws_frame.hpp"

namespace wsgate::bench {
namespace {

constexpr std::size_t read_chunk = 256 * 1024;
constexpr std::size_t max_http_response = 16 * 1024;
constexpr std::uint64_t max_frame_payload = 64 * 1024 * 1024;
constexpr std::size_t compact_after = 64 * 1024;
constexpr int max_events = 1024;

bool contains(const char* data, std::size_t len, std::string_view needle) {
    return std::string_view(data, len).find(needle) != std::string_view::npos;
}

std::string printable_sample(std::string_view s) {
    std::string out(s.substr(0, 200));
    for (char& ch : out) {
        if (static_cast<unsigned char>(ch) < 0x20) ch = ' ';
    }
    return out;
}

}  // namespace

std::string errno_reason(int err) {
    switch (err) {
        case ECONNREFUSED:
            return "refused";
        case ECONNRESET:
        case EPIPE:
            return "reset";
        case ETIMEDOUT:
            return "timeout";
        case EADDRNOTAVAIL:
        case EADDRINUSE:
            return "no_source_port";
        case EMFILE:
        case ENFILE:
            return "too_many_open_files";
        default:
            break;
    }
    const char* name = strerrorname_np(err);
    return name ? std::string(name) : "errno_" + std::to_string(err);
}

client_pool::client_pool(pool_config config, std::uint32_t slots)
    : config_(std::move(config)),
      expected_accept_(ws::rfc::accept_key(ws::client_key)),
      slots_(slots),
      read_buffer_(read_chunk + 64 * 1024),
      events_(max_events) {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    if (epoll_fd_ < 0) throw std::runtime_error(std::string("epoll_create1: ") + strerror(errno));
    subscribe_frames_.reserve(config_.channels.size());
    for (const auto& name : config_.channels) {
        subscribe_frames_.push_back(R"({"type":"subscribe","id":1,"payload":{"channels":[")" +
                                    name + R"("]}})");
    }
}

client_pool::~client_pool() {
    for (auto& c : slots_) {
        if (c.fd >= 0) ::close(c.fd);
    }
    if (epoll_fd_ >= 0) ::close(epoll_fd_);
}

void client_pool::assign_channel(std::uint32_t slot, std::uint32_t channel) {
    if (channel != no_channel && channel >= config_.channels.size()) {
        throw std::out_of_range("client_pool::assign_channel: no such channel");
    }
    slots_[slot].channel = channel;
}

establish_result client_pool::establish() {
    current_ = establish_result{};
    std::vector<std::uint32_t> todo;
    for (std::uint32_t i = 0; i < slots_.size(); ++i) {
        if (slots_[i].st == state::idle || slots_[i].st == state::closed) todo.push_back(i);
    }
    const std::int64_t started = monotonic_ns();
    std::int64_t next_scan = started + 100 * ns_per_ms;
    std::int64_t next_progress = started + ns_per_second;
    std::size_t next = 0;
    for (;;) {
        while (next < todo.size() && in_flight_ < static_cast<std::uint32_t>(config_.concurrency) &&
               !interrupted()) {
            start(todo[next++]);
        }
        if (in_flight_ == 0 && (next == todo.size() || interrupted())) break;
        poll(10);
        const std::int64_t now = monotonic_ns();
        if (now >= next_scan || interrupted()) {
            expire_setups(interrupted() ? INT64_MAX : now);
            next_scan = now + 100 * ns_per_ms;
        }
        if (config_.progress && now >= next_progress) {
            std::fprintf(stderr, "  connecting: %llu/%zu ready, %llu failed, %u in flight\n",
                         static_cast<unsigned long long>(current_.connected), todo.size(),
                         static_cast<unsigned long long>(current_.failed), in_flight_);
            next_progress = now + ns_per_second;
        }
    }
    current_.elapsed_ns = monotonic_ns() - started;
    return current_;
}

void client_pool::expire_setups(std::int64_t now_ns) {
    for (std::uint32_t i = 0; i < slots_.size(); ++i) {
        if (setting_up(slots_[i].st) && now_ns >= slots_[i].deadline_ns) {
            fail(i, interrupted() ? "interrupted" : "timeout");
        }
    }
}

void client_pool::start(std::uint32_t slot) {
    connection& c = slots_[slot];
    c.st = state::tcp_connecting;
    c.started_ns = monotonic_ns();
    c.deadline_ns = c.started_ns + seconds_to_ns(config_.connect_timeout_s);
    c.in_tail.clear();
    c.out.clear();
    c.out_off = 0;
    c.epollout = false;
    c.fragmenting = false;
    ++in_flight_;
    ++current_.attempted;

    c.fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c.fd < 0) {
        fail_errno(slot, errno, "socket()");
        return;
    }
    const int one = 1;
    setsockopt(c.fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (!config_.source_addrs.empty()) {
        // Defer the port choice to connect(), so each source address offers its own port range
        // per destination instead of one global range.
        setsockopt(c.fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
        sockaddr_in src{};
        src.sin_family = AF_INET;
        src.sin_addr = config_.source_addrs[slot % config_.source_addrs.size()];
        if (::bind(c.fd, reinterpret_cast<const sockaddr*>(&src), sizeof src) != 0) {
            fail_errno(slot, errno, "bind()");
            return;
        }
    }
    const sockaddr_in& target =
        slot >= config_.second_server_from ? config_.second_server : config_.server;
    if (::connect(c.fd, reinterpret_cast<const sockaddr*>(&target), sizeof target) != 0 &&
        errno != EINPROGRESS) {
        fail_errno(slot, errno, "connect()");
        return;
    }
    epoll_event ev{};
    ev.events = EPOLLOUT;
    ev.data.u64 = slot;
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, c.fd, &ev) != 0) {
        fail_errno(slot, errno, "epoll_ctl()");
        return;
    }
    c.epollout = true;
}

void client_pool::poll(int timeout_ms) {
    const int n =
        epoll_wait(epoll_fd_, events_.data(), static_cast<int>(events_.size()), timeout_ms);
    if (n < 0) {
        if (errno == EINTR) return;
        throw std::runtime_error(std::string("epoll_wait: ") + strerror(errno));
    }
    for (int k = 0; k < n; ++k) {
        on_event(static_cast<std::uint32_t>(events_[k].data.u64), events_[k].events);
    }
}

void client_pool::run_until(std::int64_t deadline_ns) {
    for (;;) {
        const std::int64_t left = deadline_ns - monotonic_ns();
        if (left <= 0 || interrupted()) return;
        poll(static_cast<int>(std::min<std::int64_t>(left / ns_per_ms + 1, 100)));
    }
}

void client_pool::on_event(std::uint32_t slot, std::uint32_t events) {
    connection& c = slots_[slot];
    if (c.fd < 0) return;  // closed earlier in this batch of events
    if (c.st == state::tcp_connecting) {
        on_tcp_connected(slot);
        return;
    }
    if (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
        on_readable(slot);
        if (c.fd < 0) return;
    }
    if (events & EPOLLOUT) flush(slot);
}

void client_pool::on_tcp_connected(std::uint32_t slot) {
    connection& c = slots_[slot];
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
    if (err != 0) {
        fail_errno(slot, err, "connect()");
        return;
    }
    // From now on read interest is always on; flush() drops EPOLLOUT once the request is out.
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT;
    ev.data.u64 = slot;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
    c.epollout = true;
    c.st = state::http_handshake;

    std::string& req = c.out;
    req.append("GET ").append(config_.path);
    if (config_.token.empty()) {
        req.append(config_.path.find('?') == std::string::npos ? "?" : "&");
        req.append("user_id=").append(config_.user_prefix).append(std::to_string(slot));
    }
    req.append(" HTTP/1.1\r\nHost: ").append(config_.host_header);
    req.append("\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: ");
    req.append(ws::client_key);
    req.append("\r\nSec-WebSocket-Version: 13\r\n\r\n");
    flush(slot);
}

void client_pool::on_readable(std::uint32_t slot) {
    connection& c = slots_[slot];
    const std::size_t tail = c.in_tail.size();
    if (read_buffer_.size() < tail + read_chunk) read_buffer_.resize(tail + read_chunk);
    char* data = read_buffer_.data();
    if (tail != 0) std::memcpy(data, c.in_tail.data(), tail);
    const ssize_t n = ::recv(c.fd, data + tail, read_chunk, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
        fail_errno(slot, errno, "recv()");
        return;
    }
    if (n == 0) {
        fail(slot, "eof");
        return;
    }
    const std::int64_t now = monotonic_ns();
    bytes_in_ += static_cast<std::uint64_t>(n);
    const std::size_t len = tail + static_cast<std::size_t>(n);
    std::size_t pos = 0;
    if (c.st == state::http_handshake) {
        pos = on_handshake_response(slot, data, len);
        if (c.fd < 0) return;
        if (pos == 0) {  // response incomplete
            c.in_tail.assign(data, len);
            return;
        }
    }
    pos += on_frames(slot, data + pos, len - pos, now);
    if (c.fd < 0) return;
    c.in_tail.assign(data + pos, len - pos);
}

std::size_t client_pool::on_handshake_response(std::uint32_t slot, const char* data,
                                               std::size_t len) {
    const std::string_view response(data, len);
    const std::size_t end = response.find("\r\n\r\n");
    if (end == std::string_view::npos) {
        if (len > max_http_response) fail(slot, "bad_http_response", response.substr(0, 200));
        return 0;
    }
    const std::string_view head = response.substr(0, end + 2);
    if (head.size() < 12 || head.substr(0, 7) != "HTTP/1.") {
        fail(slot, "bad_http_response", printable_sample(head));
        return 0;
    }
    const std::string_view status = head.substr(9, 3);
    if (status != "101") {
        const std::string_view body = response.substr(end + 4);
        fail(slot, "http_" + std::string(status),
             printable_sample(std::string(head.substr(0, head.find("\r\n"))) + " " +
                              std::string(body)));
        return 0;
    }
    std::string lower(head);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
    static constexpr std::string_view accept_header = "\r\nsec-websocket-accept:";
    const std::size_t at = lower.find(accept_header);
    if (at == std::string::npos) {
        fail(slot, "bad_accept", "no Sec-WebSocket-Accept header");
        return 0;
    }
    std::size_t v = at + accept_header.size();
    while (v < head.size() && (head[v] == ' ' || head[v] == '\t')) ++v;
    std::size_t v_end = head.find("\r\n", v);
    while (v_end > v && (head[v_end - 1] == ' ' || head[v_end - 1] == '\t')) --v_end;
    if (head.substr(v, v_end - v) != expected_accept_) {
        fail(slot, "bad_accept", head.substr(v, v_end - v));
        return 0;
    }
    after_upgrade(slot);
    return end + 4;
}

std::size_t client_pool::on_frames(std::uint32_t slot, char* data, std::size_t len,
                                   std::int64_t now_ns) {
    connection& c = slots_[slot];
    std::size_t pos = 0;
    for (;;) {
        ws::rfc::frame_header h;
        const auto status =
            ws::rfc::parse_header(reinterpret_cast<const std::uint8_t*>(data + pos), len - pos, h);
        if (status == ws::rfc::header_status::incomplete) return pos;
        // No extension is negotiated, so reserved bits are an error too.
        if (status == ws::rfc::header_status::invalid || h.rsv != 0 ||
            h.payload_size > max_frame_payload) {
            fail(slot, "protocol_error", "bad frame header");
            return pos;
        }
        const std::size_t frame_len = h.header_size + static_cast<std::size_t>(h.payload_size);
        if (len - pos < frame_len) return pos;
        char* payload = data + pos + h.header_size;
        const auto plen = static_cast<std::size_t>(h.payload_size);
        pos += frame_len;
        if (h.masked) {  // servers must not mask, but unmasking costs nothing to support
            ws::rfc::apply_mask(reinterpret_cast<std::uint8_t*>(payload), plen, h.mask_key);
        }

        switch (h.op) {
            case ws::opcode::text:
            case ws::opcode::binary:
                if (c.fragmenting) {
                    fail(slot, "protocol_error", "new message inside a fragmented one");
                    return pos;
                }
                if (h.fin) {
                    on_message(slot, payload, plen, now_ns);
                } else {
                    c.fragment.assign(payload, plen);
                    c.fragmenting = true;
                }
                break;
            case ws::opcode::continuation:
                if (!c.fragmenting) {
                    fail(slot, "protocol_error", "continuation without a message");
                    return pos;
                }
                c.fragment.append(payload, plen);
                if (h.fin) {
                    c.fragmenting = false;
                    const std::string message = std::move(c.fragment);
                    c.fragment.clear();
                    on_message(slot, message.data(), message.size(), now_ns);
                }
                break;
            case ws::opcode::ping:
                ws::append_client_frame(c.out, ws::opcode::pong, std::string_view(payload, plen));
                flush(slot);
                break;
            case ws::opcode::pong:
                break;
            case ws::opcode::close: {
                const int code = plen >= 2 ? (static_cast<unsigned char>(payload[0]) << 8) |
                                                 static_cast<unsigned char>(payload[1])
                                           : 1005;
                ws::append_client_frame(c.out, ws::opcode::close,
                                        std::string_view(payload, std::min<std::size_t>(plen, 2)));
                flush(slot);
                if (c.fd >= 0) {
                    fail(slot, "close_" + std::to_string(code),
                         std::string_view(payload, plen).substr(std::min<std::size_t>(plen, 2)));
                }
                return pos;
            }
            default:
                fail(slot, "protocol_error", "unknown opcode");
                return pos;
        }
        if (c.fd < 0) return pos;
    }
}

void client_pool::on_message(std::uint32_t slot, const char* data, std::size_t len,
                             std::int64_t now_ns) {
    switch (slots_[slot].st) {
        case state::ready:
            last_message_ns_ = now_ns;
            if (handler_) handler_->on_message(slot, data, len, now_ns);
            return;
        case state::authenticating:
            if (contains(data, len, R"("type":"auth.success")")) {
                after_auth(slot);
            } else if (contains(data, len, R"("type":"error")")) {
                fail(slot, "auth_error", printable_sample(std::string_view(data, len)));
            }
            return;
        case state::subscribing:
            if (contains(data, len, R"("type":"subscribed")")) {
                become_ready(slot);
            } else if (contains(data, len, R"("type":"error")")) {
                fail(slot, "subscribe_error", printable_sample(std::string_view(data, len)));
            }
            return;
        default:
            return;
    }
}

void client_pool::after_upgrade(std::uint32_t slot) {
    if (config_.token.empty()) {  // the user_id query parameter authenticated us
        after_auth(slot);
        return;
    }
    slots_[slot].st = state::authenticating;
    send_text(slot, R"({"type":"auth","id":0,"payload":{"token":")" + config_.token + R"("}})");
}

void client_pool::after_auth(std::uint32_t slot) {
    connection& c = slots_[slot];
    if (c.channel == no_channel) {
        become_ready(slot);
        return;
    }
    c.st = state::subscribing;
    send_text(slot, subscribe_frames_[c.channel]);
}

void client_pool::become_ready(std::uint32_t slot) {
    connection& c = slots_[slot];
    c.st = state::ready;
    --in_flight_;
    ++ready_count_;
    ++current_.connected;
    current_.setup_latency.record(static_cast<std::uint64_t>(monotonic_ns() - c.started_ns));
}

void client_pool::fail(std::uint32_t slot, const std::string& reason, std::string_view detail) {
    connection& c = slots_[slot];
    if (c.fd >= 0) {
        ::close(c.fd);  // also leaves the epoll set
        c.fd = -1;
    }
    const state was = c.st;
    c.st = state::closed;
    c.in_tail.clear();
    c.out.clear();
    c.out_off = 0;
    c.epollout = false;
    c.fragmenting = false;
    if (setting_up(was)) {
        --in_flight_;
        ++current_.failed;
        ++current_.failures[reason];
        current_.failure_samples.try_emplace(reason, detail);
    } else if (was == state::ready) {
        --ready_count_;
        ++closes_[reason];
        if (handler_) handler_->on_closed(slot, reason);
    }
}

void client_pool::fail_errno(std::uint32_t slot, int err, std::string_view what) {
    fail(slot, errno_reason(err), std::string(what) + ": " + std::strerror(err));
}

void client_pool::send_text(std::uint32_t slot, std::string_view payload) {
    connection& c = slots_[slot];
    if (c.fd < 0) return;
    ws::append_client_frame(c.out, ws::opcode::text, payload);
    flush(slot);
}

void client_pool::flush(std::uint32_t slot) {
    connection& c = slots_[slot];
    if (c.fd < 0) return;
    while (c.out_off < c.out.size()) {
        const ssize_t n =
            ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
        if (n > 0) {
            c.out_off += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (c.out_off >= compact_after) {
                c.out.erase(0, c.out_off);
                c.out_off = 0;
            }
            set_epollout(slot, true);
            return;
        }
        fail_errno(slot, errno, "send()");
        return;
    }
    c.out.clear();
    c.out_off = 0;
    set_epollout(slot, false);
}

void client_pool::set_epollout(std::uint32_t slot, bool on) {
    connection& c = slots_[slot];
    if (c.epollout == on || c.fd < 0) return;
    epoll_event ev{};
    ev.events = EPOLLIN | (on ? EPOLLOUT : 0u);
    ev.data.u64 = slot;
    epoll_ctl(epoll_fd_, EPOLL_CTL_MOD, c.fd, &ev);
    c.epollout = on;
}

void client_pool::close_all() {
    static const std::string close_normal = [] {
        std::string frame;
        ws::append_client_frame(frame, ws::opcode::close, std::string_view("\x03\xe8", 2));
        return frame;
    }();
    for (auto& c : slots_) {
        if (c.fd < 0) continue;
        if (c.st == state::ready) {
            [[maybe_unused]] const auto n =
                ::send(c.fd, close_normal.data(), close_normal.size(), MSG_NOSIGNAL);
        }
        ::close(c.fd);
        c.fd = -1;
        c.st = state::closed;
        c.in_tail.clear();
        c.out.clear();
        c.out_off = 0;
    }
    in_flight_ = 0;
    ready_count_ = 0;
}

}  // namespace wsgate::bench
