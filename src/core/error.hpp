#pragma once
// Every error a client can see, with its stable wire code (docs/protocol.md, "Errors").
// Grouped as one error_code category so that functions return result<T> / error_code values,
// never exceptions, on the per-message path.

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <string_view>
#include <type_traits>

namespace wsgate::core {

enum class error {
    bad_json = 1,
    bad_frame,
    unknown_type,
    missing_field,
    invalid_field,
    bad_channel,
    too_many_channels,
    not_authenticated,
    already_authenticated,
    token_missing,
    token_malformed,
    token_signature_invalid,
    token_algorithm_not_allowed,
    token_expired,
    token_not_yet_valid,
    token_subject_missing,
    user_offline,
    binary_not_supported,
    broker_unavailable,
    presence_disabled,
    internal_error,
};

// The stable machine-readable code sent in error frames, e.g. "bad_channel".
std::string_view wire_code(error e) noexcept;

const boost::system::error_category& error_category() noexcept;

inline boost::system::error_code make_error_code(error e) noexcept {
    return {static_cast<int>(e), error_category()};
}

// The wire code of an error_code of our category; "internal_error" for any other category.
std::string_view wire_code(const boost::system::error_code& ec) noexcept;

template <class T>
using result = boost::system::result<T>;

}  // namespace wsgate::core

namespace boost::system {
template <>
struct is_error_code_enum<wsgate::core::error> : std::true_type {};
}  // namespace boost::system
