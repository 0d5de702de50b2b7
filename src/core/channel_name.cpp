#include "core/channel_name.hpp"

#include <array>

namespace wsgate::core {

namespace {

constexpr std::array<bool, 256> make_allowed() {
    std::array<bool, 256> allowed{};
    for (char c = 'a'; c <= 'z'; ++c) allowed[static_cast<unsigned char>(c)] = true;
    for (char c = 'A'; c <= 'Z'; ++c) allowed[static_cast<unsigned char>(c)] = true;
    for (char c = '0'; c <= '9'; ++c) allowed[static_cast<unsigned char>(c)] = true;
    for (char c : std::string_view{"_-.:@/=,"}) allowed[static_cast<unsigned char>(c)] = true;
    return allowed;
}

constexpr auto allowed_bytes = make_allowed();

}  // namespace

bool is_valid_channel_name(std::string_view name) noexcept {
    if (name.empty() || name.size() > max_channel_name_size) return false;
    for (char c : name) {
        if (!allowed_bytes[static_cast<unsigned char>(c)]) return false;
    }
    return true;
}

}  // namespace wsgate::core
