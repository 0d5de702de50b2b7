#pragma once
// Which master serves which hash slots, read from a CLUSTER SLOTS reply. Pure, so it is
// unit-tested and fuzzed on its own.

#include "broker/redis/reply.hpp"

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace wsgate::broker::redis {

struct slot_range {
    std::uint16_t first = 0;
    std::uint16_t last = 0;  // inclusive
    std::string host;
    std::uint16_t port = 0;

    std::string address() const { return host + ":" + std::to_string(port); }
    bool operator==(const slot_range&) const = default;
};

// The ranges of a CLUSTER SLOTS reply ([[first, last, [host, port, id, ...], replicas...],
// ...]), sorted by first slot. A master announced without a host ("" or "?") is at
// `asked_host`, the host of the node that answered. nullopt when the reply is malformed (not
// an array of such entries, a slot past 16383, a port outside 1..65535, overlapping ranges).
std::optional<std::vector<slot_range>> parse_cluster_slots(const reply& r,
                                                           std::string_view asked_host);

// The address ("host:port") named by a MOVED or ASK error ("MOVED 3999 127.0.0.1:6381"), and
// its slot; nullopt for any other text.
struct redirect {
    bool ask = false;  // ASK: this one command goes there, after ASKING; the map is unchanged
    std::uint16_t slot = 0;
    std::string host;
    std::uint16_t port = 0;
};
std::optional<redirect> parse_redirect(std::string_view error);

}  // namespace wsgate::broker::redis
