#include "bench_message.hpp"

#include <algorithm>
#include <cstring>

#include "ws_frame.hpp"

namespace wsgate::bench {
namespace {

constexpr std::string_view stamp_marker = R"("t":")";
constexpr std::string_view delivery_end = R"("}}})";
// "t":" + digits + "}}}
constexpr std::size_t delivery_suffix_bytes =
    stamp_marker.size() + timestamp_digits + delivery_end.size();

void write_digits(char* dst, std::int64_t value) {
    auto v = static_cast<std::uint64_t>(value < 0 ? 0 : value);
    for (std::size_t i = timestamp_digits; i-- > 0;) {
        dst[i] = static_cast<char>('0' + v % 10);
        v /= 10;
    }
}

}  // namespace

std::string publish_payload(std::string_view channel, std::size_t data_bytes,
                            std::int64_t timestamp_ns) {
    const std::size_t padding =
        data_bytes > data_overhead_bytes ? data_bytes - data_overhead_bytes : 0;
    std::string s;
    s.reserve(64 + channel.size() + padding + timestamp_digits);
    s.append(R"({"type":"publish","payload":{"channel":")");
    s.append(channel);
    s.append(R"(","data":{"p":")");
    s.append(padding, 'x');
    s.append(R"(",)");
    s.append(stamp_marker);
    const std::size_t at = s.size();
    s.append(timestamp_digits, '0');
    write_digits(s.data() + at, timestamp_ns);
    s.append(R"("}}})");
    return s;
}

publish_frame_template::publish_frame_template(std::string_view channel, std::size_t data_bytes) {
    const std::string payload = publish_payload(channel, data_bytes, 0);
    data_bytes_ = std::max(data_bytes, data_overhead_bytes);
    digits_phase_ = payload.size() - delivery_end.size() - timestamp_digits;
    ws::append_client_frame(frame_, ws::opcode::text, payload);
    digits_at_ = frame_.size() - payload.size() + digits_phase_;
}

void publish_frame_template::append_to(std::string& out, std::int64_t timestamp_ns) const {
    const std::size_t start = out.size();
    out.append(frame_);
    char* digits = out.data() + start + digits_at_;
    write_digits(digits, timestamp_ns);
    ws::apply_mask(digits, timestamp_digits, digits_phase_);
}

std::int64_t delivered_timestamp(const char* data, std::size_t len) {
    if (len < delivery_suffix_bytes) return -1;
    const char* suffix = data + len - delivery_suffix_bytes;
    if (std::memcmp(suffix, stamp_marker.data(), stamp_marker.size()) != 0) return -1;
    if (std::memcmp(data + len - delivery_end.size(), delivery_end.data(), delivery_end.size()) !=
        0) {
        return -1;
    }
    const char* digits = suffix + stamp_marker.size();
    std::uint64_t v = 0;
    for (std::size_t i = 0; i < timestamp_digits; ++i) {
        const auto d = static_cast<unsigned>(digits[i] - '0');
        if (d > 9) return -1;
        v = v * 10 + d;
    }
    return v > static_cast<std::uint64_t>(INT64_MAX) ? -1 : static_cast<std::int64_t>(v);
}

}  // namespace wsgate::bench
