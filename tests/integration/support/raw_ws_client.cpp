#include "support/raw_ws_client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <random>
#include <stdexcept>

namespace wsgate::test {

namespace {

using clock = std::chrono::steady_clock;

std::mt19937& random_engine() {
    static std::mt19937 engine{std::random_device{}()};
    return engine;
}

std::string random_bytes(std::size_t n) {
    std::string out(n, '\0');
    std::uniform_int_distribution<int> dist(0, 255);
    for (auto& c : out) c = static_cast<char>(dist(random_engine()));
    return out;
}

std::string base64(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(bytes.data()),
                                  static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::string sha1(std::string_view bytes) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_Digest(bytes.data(), bytes.size(), digest, &len, EVP_sha1(), nullptr);
    return std::string(reinterpret_cast<char*>(digest), len);
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return out;
}

std::string trim(std::string_view s) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
        s.remove_suffix(1);
    return std::string(s);
}

void append_length_and_mask(std::string& out, std::uint64_t length, bool masked) {
    const std::uint8_t mask_bit = masked ? 0x80 : 0x00;
    if (length < 126) {
        out.push_back(static_cast<char>(mask_bit | length));
    } else if (length <= 0xFFFF) {
        out.push_back(static_cast<char>(mask_bit | 126));
        out.push_back(static_cast<char>((length >> 8) & 0xFF));
        out.push_back(static_cast<char>(length & 0xFF));
    } else {
        out.push_back(static_cast<char>(mask_bit | 127));
        for (int shift = 56; shift >= 0; shift -= 8)
            out.push_back(static_cast<char>((length >> shift) & 0xFF));
    }
}

}  // namespace

std::string encode_frame(const frame_spec& spec) {
    std::string out;
    out.push_back(static_cast<char>((spec.fin ? 0x80 : 0x00) | ((spec.rsv & 0x7) << 4) |
                                    (spec.opcode & 0x0F)));
    append_length_and_mask(out, spec.payload.size(), spec.masked);
    if (!spec.masked) return out + spec.payload;
    const auto key = random_bytes(4);
    out += key;
    for (std::size_t i = 0; i < spec.payload.size(); ++i)
        out.push_back(static_cast<char>(spec.payload[i] ^ key[i % 4]));
    return out;
}

std::string encode_frame_header(std::uint8_t op, bool fin, std::uint64_t payload_length) {
    std::string out;
    out.push_back(static_cast<char>((fin ? 0x80 : 0x00) | (op & 0x0F)));
    append_length_and_mask(out, payload_length, true);
    return out + random_bytes(4);
}

std::string close_payload(std::uint16_t code, std::string_view reason) {
    std::string out;
    out.push_back(static_cast<char>(code >> 8));
    out.push_back(static_cast<char>(code & 0xFF));
    out += reason;
    return out;
}

std::optional<int> raw_frame::close_code() const {
    if (payload.size() < 2) return std::nullopt;
    return (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
}

std::string raw_frame::close_reason() const {
    return payload.size() > 2 ? payload.substr(2) : "";
}

std::string raw_event::describe() const {
    switch (what) {
        case kind::timeout:
            return "timeout";
        case kind::eof:
            return "EOF" + (error.empty() ? "" : " (" + error + ")");
        case kind::frame: {
            std::string s = "frame opcode 0x";
            const char* hex = "0123456789abcdef";
            s += hex[frame.opcode & 0xF];
            s += frame.fin ? " fin" : " no-fin";
            if (frame.rsv != 0) s += " rsv=" + std::to_string(frame.rsv);
            if (frame.masked) s += " MASKED";
            if (frame.opcode == opcode::close) {
                const auto code = frame.close_code();
                s += " close code " + (code ? std::to_string(*code) : std::string("(none)")) +
                     " reason '" + frame.close_reason() + "'";
            } else {
                s += " payload(" + std::to_string(frame.payload.size()) +
                     "): " + frame.payload.substr(0, 200);
            }
            return s;
        }
    }
    return "?";
}

raw_ws_client::~raw_ws_client() {
    close();
}

raw_ws_client::raw_ws_client(raw_ws_client&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      in_(std::move(other.in_)),
      eof_(other.eof_),
      eof_error_(std::move(other.eof_error_)) {}

raw_ws_client& raw_ws_client::operator=(raw_ws_client&& other) noexcept {
    if (this != &other) {
        close();
        fd_ = std::exchange(other.fd_, -1);
        in_ = std::move(other.in_);
        eof_ = other.eof_;
        eof_error_ = std::move(other.eof_error_);
    }
    return *this;
}

void raw_ws_client::close() {
    if (fd_ >= 0) {
        ::close(fd_);
        fd_ = -1;
    }
}

void raw_ws_client::shutdown_write() {
    if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

void raw_ws_client::connect(std::uint16_t port, std::string_view target,
                            const upgrade_options& options) {
    close();
    in_.clear();
    eof_ = false;
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
    if (options.receive_buffer > 0) {
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &options.receive_buffer,
                     sizeof options.receive_buffer);
    }
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
        throw std::runtime_error("raw_ws_client: connect to port " + std::to_string(port) + ": " +
                                 std::strerror(errno));
    }

    const auto key = base64(random_bytes(16));
    std::string request = "GET " + std::string(target) +
                          " HTTP/1.1\r\n"
                          "Host: 127.0.0.1:" +
                          std::to_string(port) +
                          "\r\n"
                          "Upgrade: websocket\r\n"
                          "Connection: Upgrade\r\n"
                          "Sec-WebSocket-Key: " +
                          key +
                          "\r\n"
                          "Sec-WebSocket-Version: 13\r\n";
    for (const auto& [name, value] : options.headers) request += name + ": " + value + "\r\n";
    request += "\r\n";
    send_raw(request);

    const auto deadline = clock::now() + options.timeout;
    std::size_t end;
    while ((end = in_.find("\r\n\r\n")) == std::string::npos) {
        if (eof_) {
            throw std::runtime_error("raw_ws_client: connection closed during the upgrade; got: " +
                                     in_);
        }
        if (!fill(deadline)) {
            throw std::runtime_error(
                "raw_ws_client: no upgrade response within the deadline; "
                "got: " +
                in_);
        }
    }
    const std::string head = in_.substr(0, end);
    in_.erase(0, end + 4);
    if (head.compare(0, 12, "HTTP/1.1 101") != 0) {
        throw std::runtime_error("raw_ws_client: upgrade of " + std::string(target) +
                                 " refused: " + head + "\r\n\r\n" + in_);
    }
    const auto expected_accept = base64(sha1(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"));
    std::string accept;
    std::size_t pos = head.find("\r\n");
    while (pos != std::string::npos) {
        const auto next = head.find("\r\n", pos + 2);
        const auto line =
            head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
        const auto colon = line.find(':');
        if (colon != std::string::npos && lower(line.substr(0, colon)) == "sec-websocket-accept") {
            accept = trim(line.substr(colon + 1));
        }
        pos = next;
    }
    if (accept != expected_accept) {
        throw std::runtime_error("raw_ws_client: bad Sec-WebSocket-Accept '" + accept +
                                 "', expected '" + expected_accept + "'");
    }
}

void raw_ws_client::send_raw(std::string_view bytes) {
    while (!bytes.empty()) {
        const auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR) continue;
            throw std::runtime_error(std::string("raw_ws_client: send: ") + std::strerror(errno));
        }
        bytes.remove_prefix(static_cast<std::size_t>(n));
    }
}

bool raw_ws_client::fill(clock::time_point deadline) {
    if (eof_) return true;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        if (left.count() <= 0) return false;
        pollfd p{fd_, POLLIN, 0};
        const int r = ::poll(&p, 1, static_cast<int>(left.count()));
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) continue;
        char buf[65536];
        const auto n = ::recv(fd_, buf, sizeof buf, 0);
        if (n < 0) {
            if (errno == EINTR || errno == EAGAIN) continue;
            eof_ = true;
            eof_error_ = std::strerror(errno);
            return true;
        }
        if (n == 0) {
            eof_ = true;
            return true;
        }
        in_.append(buf, static_cast<std::size_t>(n));
        return true;
    }
}

std::optional<raw_frame> raw_ws_client::parse_buffered() {
    if (in_.size() < 2) return std::nullopt;
    const auto b0 = static_cast<unsigned char>(in_[0]);
    const auto b1 = static_cast<unsigned char>(in_[1]);
    std::size_t header = 2;
    std::uint64_t length = b1 & 0x7F;
    if (length == 126) {
        if (in_.size() < 4) return std::nullopt;
        length = (static_cast<unsigned char>(in_[2]) << 8) | static_cast<unsigned char>(in_[3]);
        header = 4;
    } else if (length == 127) {
        if (in_.size() < 10) return std::nullopt;
        length = 0;
        for (int i = 2; i < 10; ++i) length = (length << 8) | static_cast<unsigned char>(in_[i]);
        header = 10;
    }
    if (length > (std::uint64_t{1} << 32)) {
        throw std::runtime_error("raw_ws_client: the server announced a frame of " +
                                 std::to_string(length) + " bytes");
    }
    const bool masked = (b1 & 0x80) != 0;
    if (masked) header += 4;
    if (in_.size() < header + length) return std::nullopt;
    raw_frame f;
    f.fin = (b0 & 0x80) != 0;
    f.rsv = static_cast<std::uint8_t>((b0 >> 4) & 0x7);
    f.opcode = static_cast<std::uint8_t>(b0 & 0x0F);
    f.masked = masked;
    f.payload = in_.substr(header, static_cast<std::size_t>(length));
    if (masked) {
        const auto key = in_.substr(header - 4, 4);
        for (std::size_t i = 0; i < f.payload.size(); ++i) f.payload[i] ^= key[i % 4];
    }
    in_.erase(0, header + static_cast<std::size_t>(length));
    return f;
}

raw_event raw_ws_client::read_event(std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    for (;;) {
        if (auto f = parse_buffered()) return raw_event{raw_event::kind::frame, std::move(*f), {}};
        if (eof_) return raw_event{raw_event::kind::eof, {}, eof_error_};
        if (!fill(deadline)) return raw_event{};
    }
}

raw_event raw_ws_client::read_until_close(std::chrono::milliseconds timeout,
                                          std::vector<raw_frame>* passed_over) {
    const auto deadline = clock::now() + timeout;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        auto e = read_event(std::max(left, std::chrono::milliseconds{0}));
        if (e.what != raw_event::kind::frame || e.frame.opcode == opcode::close) return e;
        if (passed_over != nullptr) passed_over->push_back(std::move(e.frame));
    }
}

std::optional<raw_frame> raw_ws_client::read_text_containing(std::string_view needle,
                                                             std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now());
        auto e = read_event(std::max(left, std::chrono::milliseconds{0}));
        if (e.what != raw_event::kind::frame) return std::nullopt;
        if (e.frame.opcode == opcode::text && e.frame.payload.find(needle) != std::string::npos)
            return std::move(e.frame);
        if (e.frame.opcode == opcode::close) return std::nullopt;
    }
}

bool raw_ws_client::wait_for_eof(std::chrono::milliseconds timeout) {
    const auto deadline = clock::now() + timeout;
    for (;;) {
        if (eof_) return true;
        in_.clear();
        if (!fill(deadline)) return false;
    }
}

}  // namespace wsgate::test
