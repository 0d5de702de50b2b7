#include "broker/redis/endpoint.hpp"

#include <boost/url/parse.hpp>

#include <charconv>
#include <limits>

namespace wsgate::broker::redis {

namespace {

template <class Int>
std::optional<Int> parse_number(std::string_view s, Int min, Int max) {
    Int value{};
    const auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
    if (s.empty() || ec != std::errc{} || end != s.data() + s.size() || value < min ||
        value > max) {
        return std::nullopt;
    }
    return value;
}

}  // namespace

std::optional<endpoint> parse_endpoint(std::string_view text) {
    // The seeds' forms carry no scheme: read them as a redis:// URL with nothing but an
    // authority, so "host/2" or "pw@host" stay errors.
    const bool bare = text.find("://") == std::string_view::npos;
    if (bare && text.find_first_of("/@?#") != std::string_view::npos) return std::nullopt;
    const std::string url = bare ? "redis://" + std::string(text) : std::string(text);

    auto parsed = boost::urls::parse_uri(url);
    if (!parsed) return std::nullopt;
    const auto& u = *parsed;
    std::string scheme(u.scheme());
    for (char& c : scheme) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    if (scheme != "redis") return std::nullopt;  // rediss:// (TLS) is not supported yet
    if (u.has_query() || u.has_fragment()) return std::nullopt;

    endpoint out;
    const auto host_type = u.host_type();
    if (host_type == boost::urls::host_type::none ||
        host_type == boost::urls::host_type::ipvfuture) {
        return std::nullopt;
    }
    // Decoded; an IPv6 address in its canonical form, without brackets ("[::0]" is "::").
    out.host = host_type == boost::urls::host_type::ipv6 ? u.host_ipv6_address().to_string()
                                                         : std::string(u.host_address());
    if (out.host.empty()) return std::nullopt;

    if (u.has_port()) {
        const auto port = parse_number<unsigned>(u.port(), 1, 65535);
        if (!port) return std::nullopt;
        out.port = static_cast<std::uint16_t>(*port);
    }
    if (u.has_userinfo()) {
        if (!u.has_password()) return std::nullopt;  // "user@host": no password given
        out.username = u.user();
        out.password = u.password();
    }
    const std::string_view path = u.encoded_path();
    if (!path.empty() && path != "/") {
        if (path.front() != '/') return std::nullopt;
        const auto db = parse_number<int>(path.substr(1), 0, std::numeric_limits<int>::max());
        if (!db) return std::nullopt;
        out.database = *db;
    }
    return out;
}

}  // namespace wsgate::broker::redis
