#pragma once
// Reading samples out of a Prometheus text exposition (GET /metrics).

#include <optional>
#include <string_view>

namespace wsgate::test {

// The sum of every sample of metric `name` (exact name, any labels) whose label set contains
// `label_filter` (e.g. `code="bad_json"`); nullopt when no such sample exists.
std::optional<double> metric_value(std::string_view exposition, std::string_view name,
                                   std::string_view label_filter = "");

}  // namespace wsgate::test
