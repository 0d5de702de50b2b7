#pragma once
// Plain HTTP/1.1 requests to the gateway's own port (docs/protocol.md, "HTTP endpoints"), and a
// hand-made upgrade request for checking how a refused upgrade is answered (401, 503, 404).
// Each call opens one connection, sends one request with `Connection: close`, reads one
// response, and throws std::runtime_error on a transport failure or the deadline.
// Beast is included only in http_client.cpp.

#include <boost/json/value.hpp>

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace wsgate::test {

struct http_response {
    int status = 0;
    std::vector<std::pair<std::string, std::string>> headers;
    std::string body;

    // The first header named `name` (case-insensitive), or "".
    std::string header(std::string_view name) const;
    // The body parsed as JSON; throws with the body in the message when it is not JSON.
    boost::json::value json() const;
};

http_response http_request(std::uint16_t port, std::string_view method, std::string_view target,
                           const std::vector<std::pair<std::string, std::string>>& headers = {},
                           std::chrono::milliseconds timeout = std::chrono::milliseconds{5000});

inline http_response http_get(std::uint16_t port, std::string_view target,
                              std::chrono::milliseconds timeout = std::chrono::milliseconds{5000}) {
    return http_request(port, "GET", target, {}, timeout);
}

// A WebSocket upgrade request (GET with Upgrade/Connection/Sec-WebSocket-* headers) whose
// response is read as plain HTTP: 101 for an accepted upgrade (the connection is then closed
// without a frame), or the status and body of a refusal.
http_response http_upgrade(std::uint16_t port, std::string_view target,
                           const std::vector<std::pair<std::string, std::string>>& headers = {},
                           std::chrono::milliseconds timeout = std::chrono::milliseconds{5000});

}  // namespace wsgate::test
