#include "latency_histogram.hpp"

#include <algorithm>
#include <cmath>

namespace wsgate::bench {

void latency_histogram::reset() {
    counts_.fill(0);
    count_ = 0;
    sum_ = 0;
    max_ = 0;
    min_ = UINT64_MAX;
}

std::uint64_t latency_histogram::percentile(double q) const {
    if (count_ == 0) return 0;
    q = std::clamp(q, 0.0, 1.0);
    // The rank of the sample at quantile q, 1-based: p50 of 10 samples is the 5th.
    auto rank = static_cast<std::uint64_t>(std::ceil(q * static_cast<double>(count_)));
    rank = std::clamp<std::uint64_t>(rank, 1, count_);
    std::uint64_t seen = 0;
    for (std::size_t i = 0; i < bucket_count; ++i) {
        seen += counts_[i];
        if (seen < rank) continue;
        if (i < sub_bucket_count) return std::min<std::uint64_t>(i, max_);
        const std::uint64_t shift = i / half_count - 1;
        const std::uint64_t lower = (i - shift * half_count) << shift;
        const std::uint64_t mid = lower + ((std::uint64_t{1} << shift) >> 1);
        return std::clamp(mid, min(), max_);
    }
    return max_;
}

}  // namespace wsgate::bench
