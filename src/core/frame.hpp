#pragma once
// An immutable, fully encoded frame, ready to write to a socket. One instance is shared by
// every connection it goes to (fan-out encodes once), so it is only ever read after creation.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

namespace wsgate::core {

struct wire_frame {
    std::string storage;  // may hold unused bytes before `begin` (room for a header)
    std::uint32_t begin = 0;
    std::int64_t created_ns = 0;  // steady clock when encoded: fan-out latency starts here
    std::uint32_t frames = 1;     // WebSocket frames in `storage` (fan-out joins several)

    std::string_view bytes() const noexcept { return std::string_view(storage).substr(begin); }
    std::size_t size() const noexcept { return storage.size() - begin; }
};

using frame_ptr = std::shared_ptr<const wire_frame>;

}  // namespace wsgate::core
