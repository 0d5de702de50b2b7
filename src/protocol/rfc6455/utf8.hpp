#pragma once

#include <string_view>

namespace wsgate::protocol::rfc6455 {

// True if `text` is well-formed UTF-8 (RFC 3629: no overlongs, no surrogates, <= U+10FFFF).
bool is_valid_utf8(std::string_view text) noexcept;

// The longest prefix of `text` of at most `max_bytes` that does not cut a UTF-8 sequence.
std::string_view utf8_prefix(std::string_view text, std::size_t max_bytes) noexcept;

}  // namespace wsgate::protocol::rfc6455
