#pragma once

// A fixed-memory log-linear latency histogram in the spirit of HdrHistogram: exact below 256 ns,
// then 128 linear buckets per power of two, so any recorded value is reported within 0.4 %.
// record() is a couple of shifts and an increment; nothing is stored per sample.

#include <array>
#include <cstdint>

namespace wsgate::bench {

class latency_histogram {
public:
    void record(std::uint64_t value_ns) {
        ++counts_[bucket_of(value_ns)];
        ++count_;
        sum_ += value_ns;
        if (value_ns > max_) max_ = value_ns;
        if (value_ns < min_) min_ = value_ns;
    }

    void reset();

    std::uint64_t count() const { return count_; }
    std::uint64_t max() const { return max_; }
    std::uint64_t min() const { return count_ ? min_ : 0; }
    double mean() const {
        return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0;
    }

    // The value at quantile q (0..1), in ns: the midpoint of the bucket holding it, never more
    // than the largest value recorded. 0 when empty.
    std::uint64_t percentile(double q) const;

private:
    static constexpr int sub_bucket_bits = 8;
    static constexpr std::uint64_t sub_bucket_count = std::uint64_t{1} << sub_bucket_bits;
    static constexpr std::uint64_t half_count = sub_bucket_count / 2;
    static constexpr std::size_t bucket_count =
        (64 - sub_bucket_bits) * half_count + sub_bucket_count;

    static std::size_t bucket_of(std::uint64_t v) {
        if (v < sub_bucket_count) return static_cast<std::size_t>(v);
        const int msb = 63 - __builtin_clzll(v);
        const int shift = msb - (sub_bucket_bits - 1);
        return static_cast<std::size_t>(static_cast<std::uint64_t>(shift) * half_count +
                                        (v >> shift));
    }

    std::array<std::uint64_t, bucket_count> counts_{};
    std::uint64_t count_ = 0;
    std::uint64_t sum_ = 0;
    std::uint64_t max_ = 0;
    std::uint64_t min_ = UINT64_MAX;
};

}  // namespace wsgate::bench
