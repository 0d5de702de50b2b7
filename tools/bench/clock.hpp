#pragma once

// Clocks the generator measures with. Latency is CLOCK_MONOTONIC on both ends: publisher and
// subscriber live in this one process, so the stamps compare exactly.

#include <sys/resource.h>

#include <cstdint>
#include <ctime>

namespace wsgate::bench {

inline constexpr std::int64_t ns_per_second = 1'000'000'000;
inline constexpr std::int64_t ns_per_ms = 1'000'000;

inline std::int64_t monotonic_ns() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<std::int64_t>(ts.tv_sec) * ns_per_second + ts.tv_nsec;
}

inline std::int64_t seconds_to_ns(double s) {
    return static_cast<std::int64_t>(s * static_cast<double>(ns_per_second));
}

// User + system CPU time this process has used, so a report can show a saturated generator.
inline std::int64_t process_cpu_ns() {
    rusage ru{};
    getrusage(RUSAGE_SELF, &ru);
    auto tv_ns = [](const timeval& tv) {
        return static_cast<std::int64_t>(tv.tv_sec) * ns_per_second +
               static_cast<std::int64_t>(tv.tv_usec) * 1000;
    };
    return tv_ns(ru.ru_utime) + tv_ns(ru.ru_stime);
}

// Measures the share of one core the generator used between start() and stop().
class cpu_meter {
public:
    void start() {
        wall_start_ = monotonic_ns();
        cpu_start_ = process_cpu_ns();
    }
    void stop() {
        wall_ns_ = monotonic_ns() - wall_start_;
        cpu_ns_ = process_cpu_ns() - cpu_start_;
    }
    double percent() const {
        return wall_ns_ > 0 ? 100.0 * static_cast<double>(cpu_ns_) / static_cast<double>(wall_ns_)
                            : 0.0;
    }

private:
    std::int64_t wall_start_ = 0;
    std::int64_t cpu_start_ = 0;
    std::int64_t wall_ns_ = 0;
    std::int64_t cpu_ns_ = 0;
};

}  // namespace wsgate::bench
