#include "support/prometheus_text.hpp"

#include <cstdlib>
#include <string>

namespace wsgate::test {

std::optional<double> metric_value(std::string_view exposition, std::string_view name,
                                   std::string_view label_filter) {
    std::optional<double> sum;
    while (!exposition.empty()) {
        const auto nl = exposition.find('\n');
        auto line = exposition.substr(0, nl);
        exposition = nl == std::string_view::npos ? std::string_view{} : exposition.substr(nl + 1);
        if (line.empty() || line.front() == '#') continue;
        if (line.substr(0, name.size()) != name || line.size() == name.size()) continue;
        const char after = line[name.size()];
        if (after != ' ' && after != '{') continue;
        std::string_view labels;
        auto rest = line.substr(name.size());
        if (after == '{') {
            const auto close = rest.find('}');
            if (close == std::string_view::npos) continue;
            labels = rest.substr(0, close + 1);
            rest = rest.substr(close + 1);
        }
        if (!label_filter.empty() && labels.find(label_filter) == std::string_view::npos) continue;
        while (!rest.empty() && rest.front() == ' ') rest.remove_prefix(1);
        const auto value_text = std::string(rest.substr(0, rest.find(' ')));
        char* end = nullptr;
        const double v = std::strtod(value_text.c_str(), &end);
        if (end == value_text.c_str()) continue;
        sum = sum.value_or(0.0) + v;
    }
    return sum;
}

}  // namespace wsgate::test
