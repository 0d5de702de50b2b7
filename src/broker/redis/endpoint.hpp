#pragma once
// Where a Redis server is, as configured: a redis:// URL or the seeds' "host[:port]" forms.
// Pure (no I/O), so it is unit-tested and fuzzed on its own.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace wsgate::broker::redis {

struct endpoint {
    std::string host = "127.0.0.1";
    std::uint16_t port = 6379;
    std::string password;  // empty: no AUTH
    std::string username;  // Redis 6 ACL user; empty: AUTH with the password only
    int database = 0;      // SELECT when not 0
};

// Parses redis://[[user]:password@]host[:port][/db] (RFC 3986, via Boost.URL: userinfo is
// percent-decoded, IPv6 hosts are bracketed) and the seeds' forms "host" and "host:port".
// nullopt for anything else, including rediss:// (no TLS yet), queries and fragments.
std::optional<endpoint> parse_endpoint(std::string_view text);

}  // namespace wsgate::broker::redis
