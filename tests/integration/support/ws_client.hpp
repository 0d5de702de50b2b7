#pragma once
// ws_client: a real WebSocket client (Boost.Beast, an independent RFC 6455 implementation) for
// driving the gateway the way an application would.
//
// Model: after the handshake one read is always outstanding; completed frames go to an inbox.
// Every call runs the client's own io_context only until its own event or deadline, so a
// timeout never cancels a read half-way and never loses a frame. Beast answers the server's
// pings and close frames by itself while any call runs.
//
// Failures (connect refused, write timeout, an unexpected error frame while waiting for another
// type) throw std::runtime_error with a message naming what was seen; GoogleTest reports it.
//
// Thread safety: one thread per client. Beast is included only in ws_client.cpp.

#include <boost/json/object.hpp>
#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wsgate::test {

using http_headers = std::vector<std::pair<std::string, std::string>>;

constexpr std::chrono::milliseconds default_timeout{5000};

struct ws_event {
    enum class kind {
        text,     // a text message; `data` is its payload
        binary,   // a binary message; `data` is its payload
        closed,   // the server closed with a close frame: `close_code`, `close_reason`
        dropped,  // the TCP connection ended without a close handshake: `error`
        timeout,  // nothing arrived before the deadline
    };
    kind what = kind::timeout;
    std::string data;
    int close_code = 0;
    std::string close_reason;
    std::string error;

    bool is_message() const { return what == kind::text || what == kind::binary; }
    bool ended() const { return what == kind::closed || what == kind::dropped; }
    std::string describe() const;
};

class ws_client {
public:
    ws_client();
    ~ws_client();
    ws_client(ws_client&&) noexcept;
    ws_client& operator=(ws_client&&) noexcept;

    // Opens ws://127.0.0.1:port<target>. Throws if the upgrade fails (message has the HTTP
    // status and body).
    void connect(std::uint16_t port, std::string_view target = "/ws",
                 const http_headers& extra_headers = {},
                 std::chrono::milliseconds timeout = default_timeout);

    void send_text(std::string_view text, std::chrono::milliseconds timeout = default_timeout);
    void send_binary(std::string_view bytes, std::chrono::milliseconds timeout = default_timeout);
    void send_json(const boost::json::value& frame,
                   std::chrono::milliseconds timeout = default_timeout);

    // The next event in arrival order (text/binary message, close, drop, or timeout).
    ws_event read(std::chrono::milliseconds timeout = default_timeout);

    // The next message parsed as a JSON object, strictly in arrival order. Throws on a
    // non-JSON message, a close or a timeout.
    boost::json::object next_json(std::chrono::milliseconds timeout = default_timeout);

    // Waits for the first JSON frame whose "type" is `type` (and that `match` accepts), looking
    // first at frames set aside by earlier calls. Frames of other types are set aside in order,
    // not dropped. An `error` frame arriving while waiting for any other type throws at once,
    // as do a close and the deadline.
    boost::json::object expect_json(
        std::string_view type, std::chrono::milliseconds timeout = default_timeout,
        const std::function<bool(const boost::json::object&)>& match = nullptr);

    // The reply to request `id` (the next frame whose "id" is `id`, whatever its type);
    // frames before it are dropped. Throws at the deadline.
    boost::json::object reply_to(std::int64_t id,
                                 std::chrono::milliseconds timeout = default_timeout);

    // expect_json("error") whose payload.code is `code`; returns the frame.
    boost::json::object expect_error(std::string_view code,
                                     std::chrono::milliseconds timeout = default_timeout);

    // Waits for the server to close (frames before the close are set aside); returns the close
    // (kind::closed), or kind::dropped / kind::timeout.
    ws_event expect_close(std::chrono::milliseconds timeout = default_timeout);

    // Starts the closing handshake with `code` and waits for the server's close; returns it.
    ws_event close(int code = 1000, std::string_view reason = "",
                   std::chrono::milliseconds timeout = default_timeout);

    bool is_open() const;
    // Frames set aside by expect_json / expect_close and not yet taken.
    std::size_t set_aside_count() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

// A client authenticated in development mode through `?user_id=` (docs/protocol.md).
ws_client connect_dev_user(std::uint16_t port, std::string_view user_id);

// A client connected to ws://127.0.0.1:port/ws as `user` (development mode: ?user_id=).
ws_client connect_as(std::uint16_t port, std::string_view user);

}  // namespace wsgate::test
