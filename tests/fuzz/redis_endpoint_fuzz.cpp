// Fuzz target for broker::redis::parse_endpoint (the --redis-url / REDIS_* settings).
//
// Whatever the text, parsing must not crash. An endpoint it accepts must be usable: a host,
// a port in 1..65535, a database >= 0. Written back as a URL with Boost.URL (which encodes
// what must be encoded), it must parse to the same endpoint.

#include "broker/redis/endpoint.hpp"
#include "fuzz_check.hpp"

#include <boost/url/url.hpp>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace redis = wsgate::broker::redis;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const auto parsed = redis::parse_endpoint(text);
    if (!parsed) return 0;
    WSGATE_FUZZ_CHECK(!parsed->host.empty());
    WSGATE_FUZZ_CHECK(parsed->port >= 1);
    WSGATE_FUZZ_CHECK(parsed->database >= 0);

    boost::urls::url url;
    url.set_scheme("redis");
    if (!parsed->password.empty() || !parsed->username.empty()) {
        url.set_user(parsed->username);
        url.set_password(parsed->password);
    }
    url.set_host_address(parsed->host);
    url.set_port_number(parsed->port);
    url.set_path("/" + std::to_string(parsed->database));
    const auto again = redis::parse_endpoint(url.buffer());
    WSGATE_FUZZ_CHECK(again.has_value());
    WSGATE_FUZZ_CHECK(again->host == parsed->host);
    WSGATE_FUZZ_CHECK(again->port == parsed->port);
    WSGATE_FUZZ_CHECK(again->database == parsed->database);
    WSGATE_FUZZ_CHECK(again->password == parsed->password);
    WSGATE_FUZZ_CHECK(again->username == parsed->username);
    return 0;
}
