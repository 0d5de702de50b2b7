#include "broker/redis/slot_map.hpp"

#include "broker/redis/hash_slot.hpp"

#include <algorithm>
#include <charconv>

namespace wsgate::broker::redis {

namespace {

template <class T>
std::optional<T> to_number(std::string_view text) {
    T value{};
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
    if (ec != std::errc{} || end != text.data() + text.size()) return std::nullopt;
    return value;
}

std::optional<long long> integer_of(const reply& r) {
    if (r.type == reply::kind::integer) return r.integer;
    if (r.type == reply::kind::string) return to_number<long long>(r.str);
    return std::nullopt;
}

bool valid_port(long long port) {
    return port >= 1 && port <= 65535;
}

}  // namespace

std::optional<std::vector<slot_range>> parse_cluster_slots(const reply& r,
                                                           std::string_view asked_host) {
    if (r.type != reply::kind::array) return std::nullopt;
    std::vector<slot_range> ranges;
    ranges.reserve(r.elements.size());
    for (const auto& entry : r.elements) {
        if (entry.type != reply::kind::array || entry.elements.size() < 3) return std::nullopt;
        const auto first = integer_of(entry.elements[0]);
        const auto last = integer_of(entry.elements[1]);
        const auto& master = entry.elements[2];
        if (!first || !last || *first < 0 || *first > *last || *last >= cluster_slot_count ||
            master.type != reply::kind::array || master.elements.size() < 2 ||
            master.elements[0].type != reply::kind::string) {
            return std::nullopt;
        }
        const auto port = integer_of(master.elements[1]);
        if (!port || !valid_port(*port)) return std::nullopt;
        std::string host = master.elements[0].str;
        if (host.empty() || host == "?") host = std::string(asked_host);
        ranges.push_back({static_cast<std::uint16_t>(*first), static_cast<std::uint16_t>(*last),
                          std::move(host), static_cast<std::uint16_t>(*port)});
    }
    std::sort(ranges.begin(), ranges.end(),
              [](const slot_range& a, const slot_range& b) { return a.first < b.first; });
    for (std::size_t i = 1; i < ranges.size(); ++i) {
        if (ranges[i].first <= ranges[i - 1].last) return std::nullopt;
    }
    return ranges;
}

std::optional<redirect> parse_redirect(std::string_view error) {
    redirect out;
    if (error.starts_with("MOVED ")) {
        error.remove_prefix(6);
    } else if (error.starts_with("ASK ")) {
        out.ask = true;
        error.remove_prefix(4);
    } else {
        return std::nullopt;
    }
    const auto space = error.find(' ');
    if (space == std::string_view::npos) return std::nullopt;
    const auto slot = to_number<unsigned>(error.substr(0, space));
    const auto address = error.substr(space + 1);
    const auto colon = address.rfind(':');
    if (!slot || *slot >= cluster_slot_count || colon == std::string_view::npos) {
        return std::nullopt;
    }
    const auto port = to_number<long long>(address.substr(colon + 1));
    if (!port || !valid_port(*port)) return std::nullopt;
    out.slot = static_cast<std::uint16_t>(*slot);
    out.host = std::string(address.substr(0, colon));
    // Redis brackets nothing: an IPv6 host is "::1:7000"; strip brackets if some proxy adds them.
    if (out.host.size() >= 2 && out.host.front() == '[' && out.host.back() == ']') {
        out.host = out.host.substr(1, out.host.size() - 2);
    }
    out.port = static_cast<std::uint16_t>(*port);
    return out;
}

}  // namespace wsgate::broker::redis
