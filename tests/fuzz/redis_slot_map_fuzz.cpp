// Fuzz target for the Redis Cluster routing parsers: parse_redirect (the text of a MOVED/ASK
// error) and parse_cluster_slots (a CLUSTER SLOTS reply). Both read what a server sends.
//
// The input is used twice: as error text, and decoded into a reply tree (one byte picks each
// node's type; strings and integers take the bytes that follow). Whatever they get, the
// parsers must not crash, and what they accept must be usable: slots within 0..16383, ranges
// sorted and disjoint, ports in 1..65535.

#include "broker/redis/hash_slot.hpp"
#include "broker/redis/slot_map.hpp"
#include "fuzz_check.hpp"

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace redis = wsgate::broker::redis;

namespace {

struct decoder {
    std::string_view in;

    std::uint8_t byte() {
        if (in.empty()) return 0;
        const auto b = static_cast<std::uint8_t>(in.front());
        in.remove_prefix(1);
        return b;
    }

    redis::reply next(int depth) {
        redis::reply r;
        const auto tag = byte();
        switch (tag % 4) {
            case 0: {
                r.type = redis::reply::kind::integer;
                const long long high = byte();
                r.integer = high << 8 | byte();
                if (tag & 0x80) r.integer = -r.integer;
                break;
            }
            case 1: {
                r.type = redis::reply::kind::string;
                const std::size_t wanted = byte() % 16;  // before in.size(): byte() consumes
                const std::size_t n = std::min(wanted, in.size());
                r.str = std::string(in.substr(0, n));
                in.remove_prefix(n);
                break;
            }
            case 2:
                if (depth < 4) {
                    r.type = redis::reply::kind::array;
                    const int n = byte() % 6;
                    for (int i = 0; i < n && !in.empty(); ++i)
                        r.elements.push_back(next(depth + 1));
                    break;
                }
                [[fallthrough]];
            default:
                r.type = redis::reply::kind::nil;
                break;
        }
        return r;
    }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    if (const auto to = redis::parse_redirect(text)) {
        WSGATE_FUZZ_CHECK(to->slot < redis::cluster_slot_count);
        WSGATE_FUZZ_CHECK(to->port >= 1);
    }
    WSGATE_FUZZ_CHECK(redis::hash_slot(text) < redis::cluster_slot_count);

    decoder d{text};
    const redis::reply tree = d.next(0);
    if (const auto ranges = redis::parse_cluster_slots(tree, "fallback")) {
        for (std::size_t i = 0; i < ranges->size(); ++i) {
            const auto& r = (*ranges)[i];
            WSGATE_FUZZ_CHECK(r.first <= r.last);
            WSGATE_FUZZ_CHECK(r.last < redis::cluster_slot_count);
            WSGATE_FUZZ_CHECK(r.port >= 1);
            WSGATE_FUZZ_CHECK(!r.host.empty());
            if (i > 0) WSGATE_FUZZ_CHECK((*ranges)[i - 1].last < r.first);
        }
    }
    return 0;
}
