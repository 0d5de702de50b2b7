#include "core/error.hpp"

#include <gtest/gtest.h>

#include <set>

using wsgate::core::error;
using wsgate::core::wire_code;

TEST(error, every_error_has_a_distinct_wire_code_and_message) {
    std::set<std::string_view> codes;
    for (int i = static_cast<int>(error::bad_json); i <= static_cast<int>(error::internal_error);
         ++i) {
        const auto e = static_cast<error>(i);
        const auto code = wire_code(e);
        EXPECT_TRUE(codes.insert(code).second) << code;
        boost::system::error_code ec = e;
        EXPECT_EQ(wire_code(ec), code);
        EXPECT_FALSE(ec.message().empty());
    }
}

TEST(error, foreign_error_codes_map_to_internal_error) {
    const boost::system::error_code ec{5, boost::system::generic_category()};
    EXPECT_EQ(wire_code(ec), "internal_error");
}
