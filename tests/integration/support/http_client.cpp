#include "support/http_client.hpp"

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/json/parse.hpp>

#include <algorithm>
#include <cctype>
#include <stdexcept>

namespace wsgate::test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;

namespace {

bool iequals(std::string_view a, std::string_view b) {
    return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
               return std::tolower(static_cast<unsigned char>(x)) ==
                      std::tolower(static_cast<unsigned char>(y));
           });
}

http_response exchange(std::uint16_t port, http::request<http::string_body> req,
                       std::chrono::milliseconds timeout) {
    net::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(timeout);
    beast::flat_buffer buffer;
    http::response_parser<http::string_body> parser;
    parser.body_limit(64u * 1024 * 1024);
    beast::error_code failure;
    std::string stage = "connect";

    stream.async_connect(
        tcp::endpoint(net::ip::make_address("127.0.0.1"), port), [&](beast::error_code ec) {
            if (ec) {
                failure = ec;
                return;
            }
            stage = "write";
            http::async_write(stream, req, [&](beast::error_code wec, std::size_t) {
                if (wec) {
                    failure = wec;
                    return;
                }
                stage = "read";
                http::async_read(stream, buffer, parser, [&](beast::error_code rec, std::size_t) {
                    failure = rec;
                    if (!rec) stage = "done";
                });
            });
        });
    ioc.run();
    if (stage != "done") {
        throw std::runtime_error("HTTP " + std::string(req.method_string()) + " " +
                                 std::string(req.target()) + " on port " + std::to_string(port) +
                                 " failed at " + stage + ": " + failure.message());
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);

    const auto& res = parser.get();
    http_response out;
    out.status = res.result_int();
    for (const auto& field : res) {
        out.headers.emplace_back(std::string(field.name_string()), std::string(field.value()));
    }
    out.body = res.body();
    return out;
}

}  // namespace

std::string http_response::header(std::string_view name) const {
    for (const auto& [n, v] : headers) {
        if (iequals(n, name)) return v;
    }
    return {};
}

boost::json::value http_response::json() const {
    boost::system::error_code ec;
    auto v = boost::json::parse(body, ec);
    if (ec) {
        throw std::runtime_error("HTTP " + std::to_string(status) +
                                 " body is not JSON: " + body.substr(0, 500));
    }
    return v;
}

http_response http_request(std::uint16_t port, std::string_view method, std::string_view target,
                           const std::vector<std::pair<std::string, std::string>>& headers,
                           std::chrono::milliseconds timeout) {
    http::request<http::string_body> req;
    req.method_string(beast::string_view(method.data(), method.size()));
    req.target(beast::string_view(target.data(), target.size()));
    req.version(11);
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    req.set(http::field::user_agent, "wsgate-integration-test");
    req.set(http::field::connection, "close");
    for (const auto& [name, value] : headers) req.set(name, value);
    req.prepare_payload();
    return exchange(port, std::move(req), timeout);
}

http_response http_upgrade(std::uint16_t port, std::string_view target,
                           const std::vector<std::pair<std::string, std::string>>& headers,
                           std::chrono::milliseconds timeout) {
    http::request<http::string_body> req;
    req.method(http::verb::get);
    req.target(beast::string_view(target.data(), target.size()));
    req.version(11);
    req.set(http::field::host, "127.0.0.1:" + std::to_string(port));
    req.set(http::field::user_agent, "wsgate-integration-test");
    req.set(http::field::upgrade, "websocket");
    req.set(http::field::connection, "Upgrade");
    req.set(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==");
    req.set(http::field::sec_websocket_version, "13");
    for (const auto& [name, value] : headers) req.set(name, value);
    return exchange(port, std::move(req), timeout);
}

}  // namespace wsgate::test
