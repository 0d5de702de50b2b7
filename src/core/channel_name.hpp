#pragma once

#include <cstddef>
#include <string_view>

namespace wsgate::core {

inline constexpr std::size_t max_channel_name_size = 200;

// True for 1..200 bytes of A-Z a-z 0-9 _ - . : @ / = , (docs/protocol.md, "Channels").
// Internal topics (per-user delivery) use names outside this alphabet, so a client can never
// subscribe to them.
bool is_valid_channel_name(std::string_view name) noexcept;

}  // namespace wsgate::core
