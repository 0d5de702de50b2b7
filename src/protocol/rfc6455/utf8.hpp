#pragma once

#include <string_view>

namespace wsgate::protocol::rfc6455 {

// True if `text` is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view text) noexcept;

}  // namespace wsgate::protocol::rfc6455
