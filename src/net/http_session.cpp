#include "net/http_session.hpp"

#include "net/server.hpp"
#include "net/shard.hpp"
#include "net/ws_session.hpp"
#include "protocol/rfc6455/handshake.hpp"

#include <spdlog/spdlog.h>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/json.hpp>
#include <boost/url/parse.hpp>

namespace wsgate::net {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

std::string error_body(std::string_view code, std::string_view message) {
    return json::serialize(json::object{{"error", {{"code", code}, {"message", message}}}});
}

std::string_view target_path(std::string_view target) {
    return target.substr(0, target.find('?'));
}

// The value of a query parameter, percent-decoded; empty when absent.
std::string query_param(std::string_view target, std::string_view name) {
    auto url = boost::urls::parse_origin_form(target);
    if (!url) return {};
    auto params = url->params();
    auto it = params.find(name);
    if (it == params.end()) return {};
    return std::string((*it).value);
}

std::string bearer_token(const http::request<http::string_body>& req) {
    const auto header = req[http::field::authorization];
    constexpr std::string_view prefix = "Bearer ";
    if (header.size() > prefix.size() && beast::iequals(header.substr(0, prefix.size()), prefix)) {
        return std::string(header.substr(prefix.size()));
    }
    return {};
}

}  // namespace

http_session::http_session(shard& home, tcp_socket socket)
    : shard_(home), stream_(std::move(socket)) {
    boost::system::error_code ec;
    const auto endpoint = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ = endpoint.address().to_string() + ":" + std::to_string(endpoint.port());
}

void http_session::start() {
    do_read();
}

void http_session::do_read() {
    parser_.emplace();
    parser_->header_limit(16 * 1024);
    parser_->body_limit(64 * 1024);
    stream_.expires_after(shard_.owner().settings().http_timeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](boost::system::error_code ec, std::size_t) {
                         self->on_read(ec);
                     });
}

void http_session::on_read(boost::system::error_code ec) {
    if (ec == http::error::end_of_stream || ec == boost::asio::error::eof ||
        ec == boost::asio::error::operation_aborted || ec == beast::error::timeout) {
        boost::system::error_code ignored;
        stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_both, ignored);
        return;
    }
    if (ec) {
        send_error(http::status::bad_request, "bad_request", ec.message(), false);
        return;
    }
    handle(parser_->get());
}

void http_session::handle(const request& req) {
    const auto path = target_path(req.target());
    if (beast::websocket::is_upgrade(req)) {
        handle_upgrade(req);
        return;
    }
    const bool keep_alive = req.keep_alive();
    if (req.method() != http::verb::get && req.method() != http::verb::head) {
        send_error(http::status::method_not_allowed, "method_not_allowed",
                   "only GET is served here", keep_alive);
        return;
    }
    server& node = shard_.owner();
    if (path == "/") {
        send_json(http::status::ok, node.root_json(), keep_alive);
    } else if (path == "/health") {
        send_json(node.draining() ? http::status::service_unavailable : http::status::ok,
                  node.health_json(), keep_alive);
    } else if (path == "/stats") {
        send_json(http::status::ok, node.stats_json(), keep_alive);
    } else if (path == "/cluster") {
        send_json(http::status::ok, node.cluster_json(), keep_alive);
    } else if (path == "/metrics") {
        response res{http::status::ok, req.version()};
        res.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
        res.body() = node.metrics_text();
        res.keep_alive(keep_alive);
        send(std::move(res));
    } else if (path == "/ws" || (path == "/echo" && node.settings().echo)) {
        send_error(http::status::upgrade_required, "upgrade_required",
                   "this endpoint speaks WebSocket", keep_alive);
    } else {
        send_error(http::status::not_found, "not_found", "no such endpoint", keep_alive);
    }
}

void http_session::handle_upgrade(const request& req) {
    server& node = shard_.owner();
    const auto path = target_path(req.target());
    session_mode mode;
    if (path == "/ws") {
        mode = session_mode::gateway;
    } else if (path == "/echo" && node.settings().echo) {
        mode = session_mode::echo;
    } else {
        send_error(http::status::not_found, "not_found", "no WebSocket endpoint here", false);
        return;
    }
    if (req.method() != http::verb::get) {
        send_error(http::status::method_not_allowed, "method_not_allowed", "upgrade with GET",
                   false);
        return;
    }
    if (req[http::field::sec_websocket_version] != "13") {
        response res{http::status::upgrade_required, req.version()};
        res.set(http::field::sec_websocket_version, "13");
        res.set(http::field::content_type, "application/json");
        res.body() = error_body("unsupported_version", "Sec-WebSocket-Version must be 13");
        res.keep_alive(false);
        send(std::move(res));
        return;
    }
    const auto key = req[http::field::sec_websocket_key];
    if (!protocol::rfc6455::is_valid_client_key(key)) {
        send_error(http::status::bad_request, "bad_handshake", "bad Sec-WebSocket-Key", false);
        return;
    }
    if (node.draining()) {
        send_error(http::status::service_unavailable, "draining", "the node is shutting down",
                   false);
        return;
    }

    // Credentials on the upgrade request authenticate the connection at once.
    std::optional<core::identity> identity;
    if (mode == session_mode::gateway) {
        std::string token = bearer_token(req);
        if (token.empty()) token = query_param(req.target(), "token");
        if (const auto* auth = node.authenticator()) {
            if (!token.empty()) {
                auto verified = auth->authenticate(token, std::chrono::system_clock::now());
                if (!verified) {
                    send_error(http::status::unauthorized, core::wire_code(verified.error()),
                               verified.error().message(), false);
                    return;
                }
                identity = std::move(*verified);
            }
        } else {
            std::string user = query_param(req.target(), "user_id");
            if (!user.empty()) identity = core::identity{std::move(user), std::nullopt};
        }
    }

    if (!node.try_reserve_connection()) {
        send_error(http::status::service_unavailable, "too_many_connections",
                   "connection limit of this node reached", false);
        return;
    }

    std::string accept =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Accept: " +
        protocol::rfc6455::accept_key(key) + "\r\n\r\n";
    // Bytes the client sent right after its request already belong to the WebSocket.
    const auto early = buffer_.data();
    std::string early_bytes(static_cast<const char*>(early.data()), early.size());
    stream_.expires_never();
    // The session writes the 101 itself, ahead of anything else it queues, so it can join its
    // user's topic before the client learns the upgrade succeeded.
    auto session =
        std::make_shared<ws_session>(shard_, stream_.release_socket(), mode, std::move(identity));
    session->start(std::move(accept), std::move(early_bytes), remote_);
}

void http_session::send_json(http::status status, std::string body, bool keep_alive) {
    response res{status, 11};
    res.set(http::field::content_type, "application/json");
    res.body() = std::move(body);
    res.keep_alive(keep_alive);
    send(std::move(res));
}

void http_session::send_error(http::status status, std::string_view code, std::string_view message,
                              bool keep_alive) {
    send_json(status, error_body(code, message), keep_alive);
}

void http_session::send(response res) {
    res.set(http::field::server, "wsgate");
    res.prepare_payload();
    auto shared = std::make_shared<response>(std::move(res));
    http::async_write(
        stream_, *shared,
        [self = shared_from_this(), shared](boost::system::error_code ec, std::size_t) {
            if (ec) return;
            if (shared->keep_alive()) {
                self->do_read();
            } else {
                boost::system::error_code ignored;
                self->stream_.socket().shutdown(boost::asio::ip::tcp::socket::shutdown_send,
                                                ignored);
            }
        });
}

}  // namespace wsgate::net
