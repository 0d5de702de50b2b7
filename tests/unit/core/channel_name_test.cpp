#include "core/channel_name.hpp"

#include <gtest/gtest.h>

#include <string>

using wsgate::core::is_valid_channel_name;

TEST(channel_name, accepts_the_documented_alphabet) {
    EXPECT_TRUE(is_valid_channel_name("room:1"));
    EXPECT_TRUE(is_valid_channel_name("a"));
    EXPECT_TRUE(is_valid_channel_name("Org_1/team-2.chat@eu=x,y"));
    EXPECT_TRUE(is_valid_channel_name(std::string(200, 'x')));
}

TEST(channel_name, refuses_empty_long_and_foreign_bytes) {
    EXPECT_FALSE(is_valid_channel_name(""));
    EXPECT_FALSE(is_valid_channel_name(std::string(201, 'x')));
    EXPECT_FALSE(is_valid_channel_name("room 1"));
    EXPECT_FALSE(is_valid_channel_name("room\n"));
    EXPECT_FALSE(is_valid_channel_name("caf\xc3\xa9"));
    EXPECT_FALSE(is_valid_channel_name(std::string("a\0b", 3)));
    EXPECT_FALSE(is_valid_channel_name("room#1"));
}
