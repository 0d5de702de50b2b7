#pragma once
// An HTTP/1.1 connection: serves the ops endpoints and the REST API (docs/api.md) with
// keep-alive, and performs the WebSocket upgrade, after which the socket is handed to a
// ws_session on the same shard and this object goes away together with its parser and buffer.
//
// Lifetime: owned by the shared_ptrs held by its pending read or write, or by a pending broker
// call (GET /api/presence/...), whose answer runs on this shard. One request at a time: the next
// one is read only after the response to the previous one has been written.

#include "net/tcp_socket.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace wsgate::net {

class shard;

class http_session final : public std::enable_shared_from_this<http_session> {
public:
    http_session(shard& home, tcp_socket socket);
    void start();

private:
    using request = boost::beast::http::request<boost::beast::http::string_body>;
    using response = boost::beast::http::response<boost::beast::http::string_body>;

    void do_read();
    void on_read(boost::system::error_code ec);
    void handle(const request& req);
    void handle_upgrade(const request& req);
    void handle_presence(const request& req, std::string_view encoded_channel);
    void handle_user_presence(const request& req, std::string_view encoded_user);
    // True when the request may read the API (development mode, or a valid Bearer JWT);
    // otherwise answers 401 and returns false.
    bool authorize(const request& req);
    void send(response res);
    void send_json(boost::beast::http::status status, std::string body, bool keep_alive);
    // A failed broker read (presence): 503 broker_unavailable, else 500 and a log line.
    void send_broker_error(const boost::system::error_code& ec, std::string_view what,
                           bool keep_alive);
    void send_error(boost::beast::http::status status, std::string_view code,
                    std::string_view message, bool keep_alive);
    // 401 with a WWW-Authenticate: Bearer challenge (RFC 6750); `token_error` is the reason a
    // token presented was refused, empty when none was presented.
    void send_unauthorized(std::string_view token_error, bool keep_alive);

    shard& shard_;
    bool head_ = false;  // the request being answered is a HEAD: headers only
    boost::beast::basic_stream<boost::asio::ip::tcp, boost::asio::io_context::executor_type,
                               boost::beast::unlimited_rate_policy>
        stream_;
    boost::beast::flat_buffer buffer_;
    std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
    std::string remote_;
};

}  // namespace wsgate::net
