#pragma once
// Redis Cluster's key → slot mapping: CRC16 (XMODEM) of the key's hash tag, or of the whole key
// when it has none, modulo 16384. The same function places sharded pub/sub channels.
// A hash tag is the text between the first '{' and the first '}' after it, when not empty:
// "wsgate:seq:{room:1}" and "wsgate:ch:{room:1}" share a slot, so one script may touch both.

#include <cstdint>
#include <string_view>

namespace wsgate::broker::redis {

inline constexpr std::uint16_t cluster_slot_count = 16384;

std::uint16_t hash_slot(std::string_view key) noexcept;

}  // namespace wsgate::broker::redis
