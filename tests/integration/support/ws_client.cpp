#include "support/ws_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/websocket.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include <algorithm>
#include <stdexcept>

namespace wsgate::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using clock = std::chrono::steady_clock;

std::string ws_event::describe() const {
    switch (what) {
        case kind::text:
            return "text message: " + data.substr(0, 400);
        case kind::binary:
            return "binary message of " + std::to_string(data.size()) + " bytes";
        case kind::closed:
            return "close frame: code " + std::to_string(close_code) + " reason '" + close_reason +
                   "'";
        case kind::dropped:
            return "connection dropped without a close frame: " + error;
        case kind::timeout:
            return "timeout";
    }
    return "?";
}

struct ws_client::impl {
    net::io_context ioc;
    websocket::stream<beast::tcp_stream> ws{ioc};
    beast::flat_buffer buffer;
    std::deque<ws_event> inbox;  // arrived, not yet taken, in arrival order
    bool reading = false;
    bool closing = false;  // our async_close runs: it, not the read, reports the close
    bool ended = false;    // a close or drop is in the inbox or was taken
    ws_event end_event;
    std::string target;

    ~impl() {
        beast::error_code ec;
        beast::get_lowest_layer(ws).socket().close(ec);
        ioc.restart();
        ioc.poll();  // let the aborted read finish while `this` is alive
    }

    bool run_until(const std::function<bool()>& done, clock::time_point deadline) {
        while (!done()) {
            const auto now = clock::now();
            if (now >= deadline) return false;
            if (ioc.stopped()) ioc.restart();
            if (ioc.run_one_for(deadline - now) == 0 && ioc.stopped()) return done();
        }
        return true;
    }

    void start_read() {
        reading = true;
        ws.async_read(buffer, [this](beast::error_code ec, std::size_t) { on_read(ec); });
    }

    void on_read(beast::error_code ec) {
        reading = false;
        if (!ec) {
            ws_event e;
            e.what = ws.got_text() ? ws_event::kind::text : ws_event::kind::binary;
            e.data = beast::buffers_to_string(buffer.data());
            buffer.consume(buffer.size());
            inbox.push_back(std::move(e));
            start_read();
            return;
        }
        if (closing && ec == net::error::operation_aborted) return;
        ws_event e;
        if (ec == websocket::error::closed) {
            e.what = ws_event::kind::closed;
            e.close_code = static_cast<int>(ws.reason().code);
            e.close_reason = std::string(ws.reason().reason.c_str());
        } else {
            e.what = ws_event::kind::dropped;
            e.error = ec.message();
        }
        ended = true;
        end_event = e;
        inbox.push_back(std::move(e));
    }

    void write(std::string_view bytes, bool text, std::chrono::milliseconds timeout) {
        if (ended) {
            throw std::runtime_error("ws_client(" + target + "): cannot send, the connection " +
                                     "has ended: " + end_event.describe());
        }
        ws.text(text);
        bool done = false;
        beast::error_code result;
        ws.async_write(net::buffer(bytes.data(), bytes.size()),
                       [&](beast::error_code ec, std::size_t) {
                           done = true;
                           result = ec;
                       });
        if (!run_until([&] { return done; }, clock::now() + timeout)) {
            throw std::runtime_error("ws_client(" + target + "): write of " +
                                     std::to_string(bytes.size()) + " bytes timed out");
        }
        if (result) {
            throw std::runtime_error("ws_client(" + target +
                                     "): write failed: " + result.message());
        }
    }

    // Waits until the inbox has more than `count` events.
    bool wait_for_more(std::size_t count, clock::time_point deadline) {
        return run_until([&] { return inbox.size() > count; }, deadline);
    }
};

ws_client::ws_client() : impl_(std::make_unique<impl>()) {}
ws_client::~ws_client() = default;
ws_client::ws_client(ws_client&&) noexcept = default;
ws_client& ws_client::operator=(ws_client&&) noexcept = default;

void ws_client::connect(std::uint16_t port, std::string_view target,
                        const http_headers& extra_headers, std::chrono::milliseconds timeout) {
    auto& d = *impl_;
    d.target = std::string(target);
    auto& tcp_layer = beast::get_lowest_layer(d.ws);
    tcp_layer.expires_after(timeout);
    const auto deadline = clock::now() + timeout;

    bool done = false;
    beast::error_code result;
    tcp_layer.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port),
                            [&](beast::error_code ec) {
                                done = true;
                                result = ec;
                            });
    if (!d.run_until([&] { return done; }, deadline) || result) {
        throw std::runtime_error("ws_client: TCP connect to port " + std::to_string(port) +
                                 " failed: " + (done ? result.message() : "timeout"));
    }

    // Frames are sent one by one as a test writes them; Nagle would hold each back for the
    // previous one's (delayed) ACK.
    tcp_layer.socket().set_option(tcp::no_delay(true), result);

    d.ws.set_option(
        websocket::stream_base::decorator([extra_headers](websocket::request_type& req) {
            req.set(beast::http::field::user_agent, "wsgate-integration-test");
            for (const auto& [name, value] : extra_headers) req.set(name, value);
        }));
    d.ws.read_message_max(64u * 1024 * 1024);

    websocket::response_type response;
    done = false;
    const std::string host = "127.0.0.1:" + std::to_string(port);
    d.ws.async_handshake(response, host, std::string(target), [&](beast::error_code ec) {
        done = true;
        result = ec;
    });
    if (!d.run_until([&] { return done; }, deadline)) {
        throw std::runtime_error("ws_client: WebSocket handshake on " + d.target + " timed out");
    }
    if (result) {
        throw std::runtime_error(
            "ws_client: upgrade of " + d.target + " failed: " + result.message() + "; HTTP " +
            std::to_string(response.result_int()) + " body: " + response.body());
    }
    tcp_layer.expires_never();
    d.start_read();
}

void ws_client::send_text(std::string_view text, std::chrono::milliseconds timeout) {
    impl_->write(text, true, timeout);
}

void ws_client::send_binary(std::string_view bytes, std::chrono::milliseconds timeout) {
    impl_->write(bytes, false, timeout);
}

void ws_client::send_json(const boost::json::value& frame, std::chrono::milliseconds timeout) {
    impl_->write(boost::json::serialize(frame), true, timeout);
}

ws_event ws_client::read(std::chrono::milliseconds timeout) {
    auto& d = *impl_;
    if (d.inbox.empty() && d.ended) return d.end_event;
    if (d.inbox.empty() && !d.wait_for_more(0, clock::now() + timeout)) {
        if (d.inbox.empty()) return ws_event{};
    }
    auto e = std::move(d.inbox.front());
    d.inbox.pop_front();
    return e;
}

namespace {

boost::json::object parse_object(const ws_event& e, const std::string& target) {
    boost::system::error_code ec;
    auto v = boost::json::parse(e.data, ec);
    if (ec || !v.is_object()) {
        throw std::runtime_error("ws_client(" + target + "): expected a JSON object, got " +
                                 e.describe());
    }
    return std::move(v.as_object());
}

std::string type_of(const boost::json::object& o) {
    const auto* t = o.if_contains("type");
    return t != nullptr && t->is_string() ? std::string(t->as_string()) : std::string();
}

}  // namespace

boost::json::object ws_client::next_json(std::chrono::milliseconds timeout) {
    const auto e = read(timeout);
    if (e.what != ws_event::kind::text) {
        throw std::runtime_error("ws_client(" + impl_->target +
                                 "): expected a JSON text frame, got " + e.describe());
    }
    return parse_object(e, impl_->target);
}

boost::json::object ws_client::expect_json(
    std::string_view type, std::chrono::milliseconds timeout,
    const std::function<bool(const boost::json::object&)>& match) {
    auto& d = *impl_;
    const auto deadline = clock::now() + timeout;
    std::size_t scanned = 0;
    std::string passed_over;
    for (;;) {
        for (; scanned < d.inbox.size(); ++scanned) {
            const auto& e = d.inbox[scanned];
            if (e.ended()) {
                throw std::runtime_error(
                    "ws_client(" + d.target + "): waiting for a '" + std::string(type) +
                    "' frame, got " + e.describe() +
                    (passed_over.empty() ? "" : "; passed over:" + passed_over));
            }
            if (e.what != ws_event::kind::text) continue;
            boost::system::error_code ec;
            auto v = boost::json::parse(e.data, ec);
            if (ec || !v.is_object()) continue;
            auto& o = v.as_object();
            const auto t = type_of(o);
            if (t == type && (!match || match(o))) {
                d.inbox.erase(d.inbox.begin() + static_cast<std::ptrdiff_t>(scanned));
                return std::move(o);
            }
            if (t == "error" && type != "error") {
                d.inbox.erase(d.inbox.begin() + static_cast<std::ptrdiff_t>(scanned));
                throw std::runtime_error("ws_client(" + d.target + "): waiting for a '" +
                                         std::string(type) +
                                         "' frame, got an error: " + boost::json::serialize(o));
            }
            if (passed_over.size() < 2000) passed_over += "\n  " + e.data.substr(0, 300);
        }
        if (!d.wait_for_more(scanned, deadline)) {
            throw std::runtime_error("ws_client(" + d.target + "): no '" + std::string(type) +
                                     "' frame within " + std::to_string(timeout.count()) + " ms" +
                                     (passed_over.empty() ? "" : "; passed over:" + passed_over));
        }
    }
}

boost::json::object ws_client::reply_to(std::int64_t id, std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        auto frame = next_json(std::max(left, std::chrono::milliseconds{1}));
        const auto* frame_id = frame.if_contains("id");
        if (frame_id != nullptr && frame_id->is_int64() && frame_id->as_int64() == id) {
            return frame;
        }
    }
}

ws_client connect_as(std::uint16_t port, std::string_view user) {
    ws_client c;
    c.connect(port, "/ws?user_id=" + std::string(user));
    return c;
}

boost::json::object ws_client::expect_error(std::string_view code,
                                            std::chrono::milliseconds timeout) {
    auto frame = expect_json("error", timeout);
    const auto* payload = frame.if_contains("payload");
    const auto* got = payload != nullptr && payload->is_object()
                          ? payload->as_object().if_contains("code")
                          : nullptr;
    if (got == nullptr || !got->is_string() || got->as_string() != code) {
        throw std::runtime_error("ws_client(" + impl_->target + "): expected an error with code '" +
                                 std::string(code) + "', got " + boost::json::serialize(frame));
    }
    return frame;
}

ws_event ws_client::expect_close(std::chrono::milliseconds timeout) {
    auto& d = *impl_;
    const auto deadline = clock::now() + timeout;
    std::size_t scanned = 0;
    for (;;) {
        for (; scanned < d.inbox.size(); ++scanned) {
            if (d.inbox[scanned].ended()) return d.inbox[scanned];
        }
        if (!d.wait_for_more(scanned, deadline)) return ws_event{};
    }
}

ws_event ws_client::close(int code, std::string_view reason, std::chrono::milliseconds timeout) {
    auto& d = *impl_;
    if (d.ended) return d.end_event;
    bool done = false;
    beast::error_code result;
    websocket::close_reason cr;
    cr.code = static_cast<std::uint16_t>(code);
    cr.reason.assign(reason.data(), std::min<std::size_t>(reason.size(), cr.reason.max_size()));
    d.closing = true;
    d.ws.async_close(cr, [&](beast::error_code ec) {
        done = true;
        result = ec;
    });
    const auto deadline = clock::now() + timeout;
    if (!d.run_until([&] { return done && !d.reading; }, deadline)) return ws_event{};
    if (d.ended) return d.end_event;  // the read saw the server's close first
    ws_event e;
    if (result) {
        e.what = ws_event::kind::dropped;
        e.error = result.message();
    } else {
        e.what = ws_event::kind::closed;
        e.close_code = static_cast<int>(d.ws.reason().code);
        e.close_reason = std::string(d.ws.reason().reason.c_str());
    }
    d.ended = true;
    d.end_event = e;
    return e;
}

bool ws_client::is_open() const {
    return !impl_->ended && impl_->ws.is_open();
}

std::size_t ws_client::set_aside_count() const {
    return impl_->inbox.size();
}

ws_client connect_dev_user(std::uint16_t port, std::string_view user_id) {
    ws_client c;
    c.connect(port, "/ws?user_id=" + std::string(user_id));
    return c;
}

}  // namespace wsgate::test
