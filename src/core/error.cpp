#include "core/error.hpp"

#include <string>

namespace wsgate::core {

std::string_view wire_code(error e) noexcept {
    switch (e) {
        case error::bad_json:
            return "bad_json";
        case error::bad_frame:
            return "bad_frame";
        case error::unknown_type:
            return "unknown_type";
        case error::missing_field:
            return "missing_field";
        case error::invalid_field:
            return "invalid_field";
        case error::bad_channel:
            return "bad_channel";
        case error::too_many_channels:
            return "too_many_channels";
        case error::not_authenticated:
            return "not_authenticated";
        case error::already_authenticated:
            return "already_authenticated";
        case error::token_missing:
            return "token_missing";
        case error::token_malformed:
            return "token_malformed";
        case error::token_signature_invalid:
            return "token_signature_invalid";
        case error::token_algorithm_not_allowed:
            return "token_algorithm_not_allowed";
        case error::token_expired:
            return "token_expired";
        case error::token_not_yet_valid:
            return "token_not_yet_valid";
        case error::token_subject_missing:
            return "token_subject_missing";
        case error::user_offline:
            return "user_offline";
        case error::binary_not_supported:
            return "binary_not_supported";
        case error::broker_unavailable:
            return "broker_unavailable";
        case error::presence_disabled:
            return "presence_disabled";
        case error::internal_error:
            return "internal_error";
    }
    return "internal_error";
}

namespace {

class wsgate_category final : public boost::system::error_category {
public:
    const char* name() const noexcept override { return "wsgate"; }

    std::string message(int ev) const override {
        switch (static_cast<error>(ev)) {
            case error::bad_json:
                return "frame is not valid JSON";
            case error::bad_frame:
                return "frame must be a JSON object with a string \"type\"";
            case error::unknown_type:
                return "unknown frame type";
            case error::missing_field:
                return "a required field is missing";
            case error::invalid_field:
                return "a field has the wrong type or value";
            case error::bad_channel:
                return "channel name must be 1-200 bytes of A-Za-z0-9_-.:@/=,";
            case error::too_many_channels:
                return "too many channels on this connection";
            case error::not_authenticated:
                return "authenticate first";
            case error::already_authenticated:
                return "connection is already authenticated";
            case error::token_missing:
                return "a token is required";
            case error::token_malformed:
                return "token is not a well-formed JWT";
            case error::token_signature_invalid:
                return "token signature does not verify";
            case error::token_algorithm_not_allowed:
                return "token algorithm is not allowed";
            case error::token_expired:
                return "token has expired";
            case error::token_not_yet_valid:
                return "token is not valid yet";
            case error::token_subject_missing:
                return "token has no subject (sub)";
            case error::user_offline:
                return "user is offline";
            case error::binary_not_supported:
                return "binary frames are not supported on /ws";
            case error::broker_unavailable:
                return "the message broker is unreachable; the message was not accepted";
            case error::presence_disabled:
                return "presence is not kept for this channel (--presence-prefixes)";
            case error::internal_error:
                return "internal error";
        }
        return "unknown error";
    }
};

}  // namespace

const boost::system::error_category& error_category() noexcept {
    static const wsgate_category category;
    return category;
}

std::string_view wire_code(const boost::system::error_code& ec) noexcept {
    if (ec.category() != error_category()) return "internal_error";
    return wire_code(static_cast<error>(ec.value()));
}

}  // namespace wsgate::core
