#include "net/http_session.hpp"

#include "core/channel_name.hpp"
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
#include <boost/url/pct_string_view.hpp>

#include <algorithm>
#include <tuple>
#include <utility>
#include <vector>

namespace wsgate::net {

namespace beast = boost::beast;
namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

std::string error_body(std::string_view code, std::string_view message) {
    return json::serialize(json::object{{"error", {{"code", code}, {"message", message}}}});
}

// GET /api/presence/{channel}: the rest of the path is one percent-encoded channel name.
constexpr std::string_view presence_route = "/api/presence/";
// GET /api/users/{user}/presence: the user's open connections across the cluster.
constexpr std::string_view users_route = "/api/users/";
constexpr std::string_view user_presence_suffix = "/presence";

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

// The percent-decoded channel name, or nullopt when `encoded` is not valid percent-encoding or
// the name breaks the channel naming rule (the one WebSocket frames are held to).
std::optional<std::string> decode_channel(std::string_view encoded) {
    auto pct = boost::urls::make_pct_string_view(encoded);
    if (!pct) return std::nullopt;
    std::string channel = pct->decode();
    if (!core::is_valid_channel_name(channel)) return std::nullopt;
    return channel;
}

// {"channel":..,"members":[{"user_id":..,"connections":..},...]}, members sorted by user_id
// (byte order), so that the same presence always reads the same.
std::string presence_body(std::string_view channel, std::vector<core::presence_member> members) {
    std::ranges::sort(members, {}, &core::presence_member::user_id);
    json::array list;
    list.reserve(members.size());
    for (auto& m : members) {
        list.push_back(
            json::object{{"user_id", std::move(m.user_id)}, {"connections", m.connections}});
    }
    return json::serialize(json::object{{"channel", channel}, {"members", std::move(list)}});
}

// {"user_id":..,"online":..,"connections":[{"node_id":..,"connection_id":..},...]}, sorted.
std::string user_presence_body(std::string_view user, std::vector<core::user_connection> list) {
    std::ranges::sort(list, [](const core::user_connection& a, const core::user_connection& b) {
        return std::tie(a.node_id, a.connection_id) < std::tie(b.node_id, b.connection_id);
    });
    json::array out;
    out.reserve(list.size());
    for (auto& c : list) {
        out.push_back(json::object{{"node_id", std::move(c.node_id)},
                                   {"connection_id", std::move(c.connection_id)}});
    }
    const bool online = !out.empty();
    return json::serialize(
        json::object{{"user_id", user}, {"online", online}, {"connections", std::move(out)}});
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
    head_ = req.method() == http::verb::head;
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
    } else if (path.starts_with(presence_route)) {
        handle_presence(req, path.substr(presence_route.size()));
    } else if (path.starts_with(users_route) && path.ends_with(user_presence_suffix) &&
               path.size() >= users_route.size() + user_presence_suffix.size()) {
        handle_user_presence(req, path.substr(users_route.size(), path.size() - users_route.size() -
                                                                      user_presence_suffix.size()));
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

bool http_session::authorize(const request& req) {
    // Only the header is accepted: a token in the URL (the upgrade's ?token=, for browsers'
    // WebSocket) would end up in access logs, and fetch() can set headers.
    const auto* auth = shard_.owner().authenticator();
    if (auth == nullptr) return true;  // development mode
    const std::string token = bearer_token(req);
    if (token.empty()) {
        send_unauthorized({}, req.keep_alive());
        return false;
    }
    const auto verified = auth->authenticate(token, std::chrono::system_clock::now());
    if (!verified) {
        send_unauthorized(verified.error().message(), req.keep_alive());
        return false;
    }
    return true;
}

void http_session::handle_user_presence(const request& req, std::string_view encoded_user) {
    const bool keep_alive = req.keep_alive();
    if (encoded_user.find('/') != std::string_view::npos) {
        send_error(http::status::not_found, "not_found", "no such endpoint", keep_alive);
        return;
    }
    // Whether someone is online is what a chat shows anyone, so any authenticated user may ask.
    if (!authorize(req)) return;
    auto pct = boost::urls::make_pct_string_view(encoded_user);
    std::string user = pct ? pct->decode() : std::string();
    if (user.empty() || user.size() > 256) {
        send_error(http::status::bad_request, "bad_user_id",
                   "the user id must be 1 to 256 bytes, percent-encoded", keep_alive);
        return;
    }
    shard_.owner().broker().user_presence(
        shard_.index(), user,
        [self = shared_from_this(), user,
         keep_alive](core::result<std::vector<core::user_connection>> connections) {
            if (!connections) {
                self->send_broker_error(connections.error(), "user " + user, keep_alive);
                return;
            }
            self->send_json(http::status::ok, user_presence_body(user, std::move(*connections)),
                            keep_alive);
        });
}

void http_session::handle_presence(const request& req, std::string_view encoded_channel) {
    server& node = shard_.owner();
    const bool keep_alive = req.keep_alive();
    // A channel name may hold '/', but only encoded (%2F): more segments are another resource.
    if (encoded_channel.find('/') != std::string_view::npos) {
        send_error(http::status::not_found, "not_found", "no such endpoint", keep_alive);
        return;
    }
    // Any authenticated user may read any channel's presence, as over WebSocket.
    if (!authorize(req)) return;
    auto channel = decode_channel(encoded_channel);
    if (!channel) {
        send_error(http::status::bad_request, "bad_channel",
                   core::make_error_code(core::error::bad_channel).message(), keep_alive);
        return;
    }
    // 404: the channel has no presence resource, by configuration.
    if (!node.settings().presence_enabled(*channel)) {
        send_error(http::status::not_found, core::wire_code(core::error::presence_disabled),
                   core::make_error_code(core::error::presence_disabled).message(), keep_alive);
        return;
    }
    // The answer runs on this shard (possibly inline); the handler keeps the session alive, and
    // nothing reads the socket until the response is written.
    node.broker().presence(shard_.index(), *channel,
                           [self = shared_from_this(), channel = *channel,
                            keep_alive](core::result<std::vector<core::presence_member>> members) {
                               if (!members) {
                                   self->send_broker_error(members.error(), channel, keep_alive);
                                   return;
                               }
                               self->send_json(http::status::ok,
                                               presence_body(channel, std::move(*members)),
                                               keep_alive);
                           });
}

void http_session::send_broker_error(const boost::system::error_code& ec, std::string_view what,
                                     bool keep_alive) {
    // Redis down is the caller's 503 to retry; anything else is a bug worth a log line.
    const bool unavailable = ec == core::error::broker_unavailable;
    if (!unavailable) spdlog::error("presence of {}: {}", what, ec.message());
    send_error(
        unavailable ? http::status::service_unavailable : http::status::internal_server_error,
        core::wire_code(ec), ec.message(), keep_alive);
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

void http_session::send_unauthorized(std::string_view token_error, bool keep_alive) {
    std::string challenge = R"(Bearer realm="wsgate")";
    if (!token_error.empty()) {
        challenge.append(R"(, error="invalid_token", error_description=")");
        for (char c : token_error) {
            if (c != '"' && c != '\\') challenge.push_back(c);  // stays one quoted-string
        }
        challenge.push_back('"');
    }
    response res{http::status::unauthorized, 11};
    res.set(http::field::www_authenticate, challenge);
    res.set(http::field::content_type, "application/json");
    res.body() =
        error_body("unauthorized",
                   token_error.empty() ? "Authorization: Bearer <JWT> is required" : token_error);
    res.keep_alive(keep_alive);
    send(std::move(res));
}

void http_session::send(response res) {
    res.set(http::field::server, "wsgate");
    res.prepare_payload();
    if (head_) {
        // HEAD: the headers GET would send, Content-Length included, and no body (RFC 9110
        // 9.3.2); a body here would be read as the start of the next response.
        const auto length = res.body().size();
        res.body().clear();
        res.content_length(length);
    }
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
