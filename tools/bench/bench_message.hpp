#pragma once

// The publish frames the fanout scenario sends and how their deliveries are recognised.
//
// A publish carries {"p":"<padding>","t":"<19 digits>"} as its data: the send time as
// CLOCK_MONOTONIC nanoseconds, zero-padded to a fixed width and placed last. The gateway
// delivers {"type":"message","payload":{...,"data":<data>}}, so in every delivery the digits
// sit at a fixed distance from the frame's end and a subscriber reads the latency in O(1)
// without parsing JSON. The stamp is a JSON string, not a number: a zero-padded number
// (leading zeros) is not valid JSON and a strict server would refuse it.

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace wsgate::bench {

inline constexpr std::size_t timestamp_digits = 19;

// The data object's bytes besides the padding: {"p":"","t":""} plus the digits.
inline constexpr std::size_t data_overhead_bytes = 15 + timestamp_digits;

// One channel's publish frame, masked and ready to copy onto a publisher's socket: per message
// only the timestamp digits are rewritten, so publishing allocates nothing.
class publish_frame_template {
public:
    // `data_bytes` is the size the data object aims at (never below data_overhead_bytes).
    publish_frame_template(std::string_view channel, std::size_t data_bytes);

    // Appends the frame stamped with `timestamp_ns` to `out`.
    void append_to(std::string& out, std::int64_t timestamp_ns) const;

    std::size_t frame_bytes() const { return frame_.size(); }
    std::size_t data_bytes() const { return data_bytes_; }

private:
    std::string frame_;             // header + masked payload with a zero stamp
    std::size_t digits_at_ = 0;     // offset of the first digit in frame_
    std::size_t digits_phase_ = 0;  // offset of the first digit in the payload (mask phase)
    std::size_t data_bytes_ = 0;
};

// The unmasked publish payload, for tests and for the report's parameters.
std::string publish_payload(std::string_view channel, std::size_t data_bytes,
                            std::int64_t timestamp_ns);

// The publish stamp of a delivered message frame, or -1 if the frame is not one of ours
// (it must end with "t":"<19 digits>"}}}).
std::int64_t delivered_timestamp(const char* data, std::size_t len);

}  // namespace wsgate::bench
