#pragma once
// An HTTP/1.1 connection: serves the ops endpoints (keep-alive) and performs the WebSocket
// upgrade, after which the socket is handed to a ws_session on the same shard and this object
// goes away together with its parser and buffer.

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
    void send(response res);
    void send_json(boost::beast::http::status status, std::string body, bool keep_alive);
    void send_error(boost::beast::http::status status, std::string_view code,
                    std::string_view message, bool keep_alive);

    shard& shard_;
    boost::beast::basic_stream<boost::asio::ip::tcp, boost::asio::io_context::executor_type,
                               boost::beast::unlimited_rate_policy>
        stream_;
    boost::beast::flat_buffer buffer_;
    std::optional<boost::beast::http::request_parser<boost::beast::http::string_body>> parser_;
    std::string remote_;
};

}  // namespace wsgate::net
