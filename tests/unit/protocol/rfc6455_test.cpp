// RFC 6455 building blocks: frame headers, masking, server frame encoding, close codes,
// UTF-8 validation and the opening-handshake key.

#include "protocol/rfc6455/frame.hpp"
#include "protocol/rfc6455/handshake.hpp"
#include "protocol/rfc6455/utf8.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

namespace rfc = wsgate::protocol::rfc6455;

namespace {

using bytes = std::vector<std::uint8_t>;

// The mask key as parse_header stores it: the four wire bytes memcpy'd into a uint32.
std::uint32_t wire_mask(std::uint8_t a, std::uint8_t b, std::uint8_t c, std::uint8_t d) {
    const std::uint8_t key[4] = {a, b, c, d};
    std::uint32_t out;
    std::memcpy(&out, key, 4);
    return out;
}

// A masked client frame header with the length in the given encoding (7, 16 or 64 bits),
// minimal or not, as the test asks.
bytes client_header(std::uint8_t b0, std::uint64_t length, int length_bits,
                    const std::uint8_t (&key)[4]) {
    bytes h{b0};
    if (length_bits == 7) {
        h.push_back(static_cast<std::uint8_t>(0x80 | length));
    } else if (length_bits == 16) {
        h.push_back(0x80 | 126);
        h.push_back(static_cast<std::uint8_t>(length >> 8));
        h.push_back(static_cast<std::uint8_t>(length));
    } else {
        h.push_back(0x80 | 127);
        for (int i = 0; i < 8; ++i) h.push_back(static_cast<std::uint8_t>(length >> (56 - 8 * i)));
    }
    h.insert(h.end(), key, key + 4);
    return h;
}

constexpr std::uint8_t test_key[4] = {0x37, 0xfa, 0x21, 0x3d};

std::string_view as_view(const bytes& b) {
    return {reinterpret_cast<const char*>(b.data()), b.size()};
}

}  // namespace

// ---------------------------------------------------------------- parse_header

TEST(parse_header, seven_bit_length_masked) {
    const bytes h = client_header(0x81, 5, 7, test_key);
    rfc::frame_header out;
    ASSERT_EQ(rfc::parse_header(h.data(), h.size(), out), rfc::header_status::complete);
    EXPECT_TRUE(out.fin);
    EXPECT_EQ(out.rsv, 0);
    EXPECT_EQ(out.op, rfc::opcode::text);
    EXPECT_TRUE(out.masked);
    EXPECT_EQ(out.mask_key, wire_mask(0x37, 0xfa, 0x21, 0x3d));
    EXPECT_EQ(out.payload_size, 5u);
    EXPECT_EQ(out.header_size, 6u);
}

TEST(parse_header, seven_bit_length_boundaries) {
    for (std::uint64_t len : {0u, 1u, 125u}) {
        const bytes h = client_header(0x82, len, 7, test_key);
        rfc::frame_header out;
        ASSERT_EQ(rfc::parse_header(h.data(), h.size(), out), rfc::header_status::complete) << len;
        EXPECT_EQ(out.op, rfc::opcode::binary);
        EXPECT_EQ(out.payload_size, len);
        EXPECT_EQ(out.header_size, 6u);
    }
}

TEST(parse_header, sixteen_bit_length) {
    for (std::uint64_t len : {126u, 127u, 0x1234u, 0xFFFFu}) {
        const bytes h = client_header(0x01, len, 16, test_key);
        rfc::frame_header out;
        ASSERT_EQ(rfc::parse_header(h.data(), h.size(), out), rfc::header_status::complete) << len;
        EXPECT_FALSE(out.fin);
        EXPECT_EQ(out.op, rfc::opcode::text);
        EXPECT_EQ(out.payload_size, len);
        EXPECT_EQ(out.header_size, 8u);
        EXPECT_EQ(out.mask_key, wire_mask(0x37, 0xfa, 0x21, 0x3d));
    }
}

TEST(parse_header, sixty_four_bit_length) {
    for (std::uint64_t len :
         {std::uint64_t{0x10000}, std::uint64_t{0x123456789A}, std::uint64_t{0x7FFFFFFFFFFFFFFF}}) {
        const bytes h = client_header(0x80, len, 64, test_key);
        rfc::frame_header out;
        ASSERT_EQ(rfc::parse_header(h.data(), h.size(), out), rfc::header_status::complete) << len;
        EXPECT_TRUE(out.fin);
        EXPECT_EQ(out.op, rfc::opcode::continuation);
        EXPECT_EQ(out.payload_size, len);
        EXPECT_EQ(out.header_size, 14u);
    }
}

TEST(parse_header, unmasked_header_has_no_key) {
    const bytes h{0x89, 0x03};
    rfc::frame_header out;
    out.mask_key = 0xdeadbeef;
    ASSERT_EQ(rfc::parse_header(h.data(), h.size(), out), rfc::header_status::complete);
    EXPECT_FALSE(out.masked);
    EXPECT_EQ(out.mask_key, 0u);
    EXPECT_EQ(out.op, rfc::opcode::ping);
    EXPECT_EQ(out.payload_size, 3u);
    EXPECT_EQ(out.header_size, 2u);
}

TEST(parse_header, reports_reserved_bits_and_raw_opcode) {
    const bytes h{0xF3, 0x00};  // fin + rsv1..3, opcode 3
    rfc::frame_header out;
    ASSERT_EQ(rfc::parse_header(h.data(), h.size(), out), rfc::header_status::complete);
    EXPECT_TRUE(out.fin);
    EXPECT_EQ(out.rsv, 0x07);
    EXPECT_EQ(static_cast<int>(out.op), 3);

    const bytes rsv1{0x41, 0x00};
    ASSERT_EQ(rfc::parse_header(rsv1.data(), rsv1.size(), out), rfc::header_status::complete);
    EXPECT_FALSE(out.fin);
    EXPECT_EQ(out.rsv, 0x04);
    const bytes rsv3{0x11, 0x00};
    ASSERT_EQ(rfc::parse_header(rsv3.data(), rsv3.size(), out), rfc::header_status::complete);
    EXPECT_EQ(out.rsv, 0x01);
}

TEST(parse_header, incomplete_at_every_byte_boundary) {
    struct shape {
        std::uint64_t len;
        int bits;
        std::size_t header_size;
    };
    for (const shape s : {shape{5, 7, 6}, shape{300, 16, 8}, shape{70000, 64, 14}}) {
        bytes h = client_header(0x81, s.len, s.bits, test_key);
        ASSERT_EQ(h.size(), s.header_size);
        h.push_back(0xAA);  // a payload byte after the header must not matter
        for (std::size_t n = 0; n < s.header_size; ++n) {
            rfc::frame_header out;
            EXPECT_EQ(rfc::parse_header(h.data(), n, out), rfc::header_status::incomplete)
                << "bits " << s.bits << " prefix " << n;
        }
        rfc::frame_header out;
        EXPECT_EQ(rfc::parse_header(h.data(), s.header_size, out), rfc::header_status::complete);
        EXPECT_EQ(out.header_size, s.header_size);
        EXPECT_EQ(out.payload_size, s.len);
    }
    // Unmasked: two bytes are enough for a 7-bit length.
    const bytes unmasked{0x81, 0x05};
    rfc::frame_header out;
    EXPECT_EQ(rfc::parse_header(unmasked.data(), 1, out), rfc::header_status::incomplete);
    EXPECT_EQ(rfc::parse_header(unmasked.data(), 2, out), rfc::header_status::complete);
}

TEST(parse_header, non_minimal_lengths_are_invalid) {
    rfc::frame_header out;
    for (std::uint64_t len : {0u, 5u, 125u}) {
        const bytes h = client_header(0x81, len, 16, test_key);
        EXPECT_EQ(rfc::parse_header(h.data(), h.size(), out), rfc::header_status::invalid) << len;
    }
    for (std::uint64_t len : {0u, 125u, 126u, 0xFFFFu}) {
        const bytes h = client_header(0x81, len, 64, test_key);
        EXPECT_EQ(rfc::parse_header(h.data(), h.size(), out), rfc::header_status::invalid) << len;
    }
    // The most significant bit of a 64-bit length must be 0.
    const bytes top = client_header(0x81, std::uint64_t{1} << 63, 64, test_key);
    EXPECT_EQ(rfc::parse_header(top.data(), top.size(), out), rfc::header_status::invalid);
    const bytes all = client_header(0x81, ~std::uint64_t{0}, 64, test_key);
    EXPECT_EQ(rfc::parse_header(all.data(), all.size(), out), rfc::header_status::invalid);
}

TEST(parse_header, invalid_length_is_reported_before_the_mask_arrives) {
    // A bad 16-bit length is known after 4 bytes; the mask key need not be there yet.
    const bytes h = client_header(0x81, 10, 16, test_key);
    rfc::frame_header out;
    EXPECT_EQ(rfc::parse_header(h.data(), 4, out), rfc::header_status::invalid);
}

// ---------------------------------------------------------------- apply_mask

TEST(apply_mask, matches_bytewise_reference_for_every_phase_and_length) {
    const std::uint8_t key[4] = {0x01, 0x80, 0xfe, 0x5a};
    const std::uint32_t mask = wire_mask(key[0], key[1], key[2], key[3]);
    for (std::size_t phase = 0; phase < 8; ++phase) {
        for (std::size_t len = 0; len <= 33; ++len) {
            // Offset 1 in the buffer: the wide path must not rely on alignment.
            bytes buffer(len + 2, 0xEE);
            for (std::size_t i = 0; i < len; ++i) {
                buffer[1 + i] = static_cast<std::uint8_t>(i * 37 + phase);
            }
            bytes expected = buffer;
            for (std::size_t i = 0; i < len; ++i) expected[1 + i] ^= key[(phase + i) % 4];
            rfc::apply_mask(buffer.data() + 1, len, mask, phase);
            EXPECT_EQ(buffer, expected) << "phase " << phase << " len " << len;
        }
    }
}

TEST(apply_mask, masking_twice_restores_and_phases_compose) {
    const std::uint32_t mask = wire_mask(0xde, 0xad, 0xbe, 0xef);
    bytes original(33);
    for (std::size_t i = 0; i < original.size(); ++i) original[i] = static_cast<std::uint8_t>(i);
    // Unmasking a frame in two chunks (11 then 22 bytes) equals unmasking it at once.
    bytes whole = original;
    rfc::apply_mask(whole.data(), whole.size(), mask);
    bytes split = original;
    rfc::apply_mask(split.data(), 11, mask, 0);
    rfc::apply_mask(split.data() + 11, 22, mask, 11);
    EXPECT_EQ(split, whole);
    rfc::apply_mask(whole.data(), whole.size(), mask);
    EXPECT_EQ(whole, original);
}

TEST(apply_mask, rfc6455_example_hello) {
    // RFC 6455 section 5.7: a masked "Hello".
    bytes frame{0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    rfc::frame_header h;
    ASSERT_EQ(rfc::parse_header(frame.data(), frame.size(), h), rfc::header_status::complete);
    rfc::apply_mask(frame.data() + h.header_size, h.payload_size, h.mask_key);
    EXPECT_EQ(as_view(frame).substr(h.header_size), "Hello");
}

// ---------------------------------------------------------------- encoding

TEST(encode_header, sizes_and_round_trip) {
    struct row {
        std::uint64_t size;
        std::size_t header;
    };
    for (const row r :
         {row{0, 2}, row{1, 2}, row{125, 2}, row{126, 4}, row{127, 4}, row{0xFFFF, 4},
          row{0x10000, 10}, row{0x100000005ULL, 10}, row{0x7FFFFFFFFFFFFFFFULL, 10}}) {
        for (const auto op : {rfc::opcode::text, rfc::opcode::binary, rfc::opcode::continuation,
                              rfc::opcode::close, rfc::opcode::ping, rfc::opcode::pong}) {
            for (const bool fin : {true, false}) {
                std::uint8_t out[rfc::max_header_size] = {};
                const std::size_t n = rfc::encode_header(out, op, r.size, fin);
                ASSERT_EQ(n, r.header) << r.size;
                EXPECT_EQ(rfc::header_size_for(r.size), r.header);
                rfc::frame_header h;
                ASSERT_EQ(rfc::parse_header(out, n, h), rfc::header_status::complete) << r.size;
                EXPECT_EQ(h.fin, fin);
                EXPECT_EQ(h.rsv, 0);
                EXPECT_EQ(h.op, op);
                EXPECT_FALSE(h.masked);
                EXPECT_EQ(h.payload_size, r.size);
                EXPECT_EQ(h.header_size, n);
            }
        }
    }
}

TEST(encode_header, exact_bytes) {
    std::uint8_t out[rfc::max_header_size];
    ASSERT_EQ(rfc::encode_header(out, rfc::opcode::text, 5), 2u);
    EXPECT_EQ(out[0], 0x81);
    EXPECT_EQ(out[1], 0x05);
    ASSERT_EQ(rfc::encode_header(out, rfc::opcode::binary, 256, false), 4u);
    EXPECT_EQ(out[0], 0x02);
    EXPECT_EQ(out[1], 126);
    EXPECT_EQ(out[2], 0x01);
    EXPECT_EQ(out[3], 0x00);
    ASSERT_EQ(rfc::encode_header(out, rfc::opcode::text, 0x0102030405ULL), 10u);
    const std::uint8_t expected[10] = {0x81, 127, 0, 0, 0, 0x01, 0x02, 0x03, 0x04, 0x05};
    EXPECT_EQ(std::memcmp(out, expected, 10), 0);
}

TEST(make_frame, header_then_payload) {
    const std::string payload(300, 'p');
    const std::string frame = rfc::make_frame(rfc::opcode::binary, payload);
    ASSERT_EQ(frame.size(), 4 + payload.size());
    rfc::frame_header h;
    ASSERT_EQ(
        rfc::parse_header(reinterpret_cast<const std::uint8_t*>(frame.data()), frame.size(), h),
        rfc::header_status::complete);
    EXPECT_TRUE(h.fin);
    EXPECT_EQ(h.op, rfc::opcode::binary);
    EXPECT_EQ(h.payload_size, 300u);
    EXPECT_EQ(frame.substr(h.header_size), payload);

    EXPECT_EQ(rfc::make_frame(rfc::opcode::pong, ""), std::string("\x8A\x00", 2));
    EXPECT_EQ(rfc::make_frame(rfc::opcode::text, "hi"), "\x81\x02hi");
}

TEST(make_close_frame, code_and_reason) {
    EXPECT_EQ(rfc::make_close_frame(1000, "normal"), std::string("\x88\x08\x03\xe8normal", 10));
    EXPECT_EQ(rfc::make_close_frame(4002, ""), std::string("\x88\x02\x0f\xa2", 4));
}

TEST(make_close_frame, truncates_reason_to_125_byte_payload) {
    for (std::size_t reason_size : {122u, 123u, 124u, 125u, 200u, 1000u}) {
        const std::string reason(reason_size, 'r');
        const std::string frame = rfc::make_close_frame(1009, reason);
        rfc::frame_header h;
        ASSERT_EQ(
            rfc::parse_header(reinterpret_cast<const std::uint8_t*>(frame.data()), frame.size(), h),
            rfc::header_status::complete);
        const std::size_t expected_payload = std::min<std::size_t>(2 + reason_size, 125);
        EXPECT_EQ(h.header_size, 2u) << reason_size;
        EXPECT_EQ(h.payload_size, expected_payload) << reason_size;
        ASSERT_EQ(frame.size(), 2 + expected_payload);
        EXPECT_EQ(static_cast<std::uint8_t>(frame[2]), 0x03);
        EXPECT_EQ(static_cast<std::uint8_t>(frame[3]), 0xF1);
        EXPECT_EQ(frame.substr(4), reason.substr(0, expected_payload - 2));
    }
}

// RFC 6455 5.5.1: the reason of a close frame is UTF-8. Cutting it at byte 123 must not split
// a multi-byte character, or the peer fails the connection with 1007.
TEST(make_close_frame, truncation_keeps_reason_valid_utf8) {
    const std::string reason = std::string(122, 'a') + "\xC3\xA9" + "tail";  // 'é' at 122..123
    const std::string frame = rfc::make_close_frame(1000, reason);
    const std::string_view sent = std::string_view(frame).substr(4);
    EXPECT_TRUE(rfc::is_valid_utf8(sent)) << "reason cut inside a UTF-8 sequence";
    EXPECT_EQ(sent, std::string(122, 'a'));
}

// ---------------------------------------------------------------- close codes

TEST(close_code, validity_table) {
    for (std::uint16_t code : {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013,
                               1014, 3000, 3999, 4000, 4001, 4999}) {
        EXPECT_TRUE(rfc::is_valid_close_code(code)) << code;
    }
    for (std::uint16_t code :
         {0, 1, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535}) {
        EXPECT_FALSE(rfc::is_valid_close_code(code)) << code;
    }
}

TEST(close_code, control_helpers) {
    EXPECT_TRUE(rfc::is_control(rfc::opcode::close));
    EXPECT_TRUE(rfc::is_control(rfc::opcode::ping));
    EXPECT_TRUE(rfc::is_control(rfc::opcode::pong));
    EXPECT_FALSE(rfc::is_control(rfc::opcode::text));
    EXPECT_FALSE(rfc::is_control(rfc::opcode::binary));
    EXPECT_FALSE(rfc::is_control(rfc::opcode::continuation));
}

// ---------------------------------------------------------------- utf8

TEST(utf8, accepts_ascii_and_multibyte) {
    EXPECT_TRUE(rfc::is_valid_utf8(""));
    EXPECT_TRUE(rfc::is_valid_utf8("hello"));
    EXPECT_TRUE(rfc::is_valid_utf8(std::string_view("\0", 1)));
    EXPECT_TRUE(rfc::is_valid_utf8("\x7F"));
    EXPECT_TRUE(rfc::is_valid_utf8("\xC2\x80"));                                      // U+0080
    EXPECT_TRUE(rfc::is_valid_utf8("caf\xC3\xA9"));                                   // é
    EXPECT_TRUE(rfc::is_valid_utf8("\xDF\xBF"));                                      // U+07FF
    EXPECT_TRUE(rfc::is_valid_utf8("\xE0\xA0\x80"));                                  // U+0800
    EXPECT_TRUE(rfc::is_valid_utf8("\xE2\x82\xAC"));                                  // €
    EXPECT_TRUE(rfc::is_valid_utf8("\xED\x9F\xBF"));                                  // U+D7FF
    EXPECT_TRUE(rfc::is_valid_utf8("\xEE\x80\x80"));                                  // U+E000
    EXPECT_TRUE(rfc::is_valid_utf8("\xEF\xBF\xBF"));                                  // U+FFFF
    EXPECT_TRUE(rfc::is_valid_utf8("\xF0\x90\x80\x80"));                              // U+10000
    EXPECT_TRUE(rfc::is_valid_utf8("\xF0\x9F\x98\x80"));                              // 😀
    EXPECT_TRUE(rfc::is_valid_utf8("\xF4\x8F\xBF\xBF"));                              // U+10FFFF
    EXPECT_TRUE(rfc::is_valid_utf8("\xCE\xBA\xE1\xBD\xB9\xCF\x83\xCE\xBC\xCE\xB5"));  // κόσμε
}

TEST(utf8, refuses_overlongs) {
    EXPECT_FALSE(rfc::is_valid_utf8("\xC0\x80"));
    EXPECT_FALSE(rfc::is_valid_utf8("\xC1\xBF"));
    EXPECT_FALSE(rfc::is_valid_utf8("\xE0\x80\x80"));
    EXPECT_FALSE(rfc::is_valid_utf8("\xE0\x9F\xBF"));
    EXPECT_FALSE(rfc::is_valid_utf8("\xF0\x80\x80\x80"));
    EXPECT_FALSE(rfc::is_valid_utf8("\xF0\x8F\xBF\xBF"));
}

TEST(utf8, refuses_surrogates_and_beyond_u10ffff) {
    EXPECT_FALSE(rfc::is_valid_utf8("\xED\xA0\x80"));      // U+D800
    EXPECT_FALSE(rfc::is_valid_utf8("\xED\xBF\xBF"));      // U+DFFF
    EXPECT_FALSE(rfc::is_valid_utf8("\xF4\x90\x80\x80"));  // U+110000
    EXPECT_FALSE(rfc::is_valid_utf8("\xF5\x80\x80\x80"));
    EXPECT_FALSE(rfc::is_valid_utf8("\xF8\x88\x80\x80\x80"));
    EXPECT_FALSE(rfc::is_valid_utf8("\xFE"));
    EXPECT_FALSE(rfc::is_valid_utf8("\xFF"));
}

TEST(utf8, refuses_bad_continuations_and_truncations) {
    EXPECT_FALSE(rfc::is_valid_utf8("\x80"));  // lone continuation
    EXPECT_FALSE(
        rfc::is_valid_utf8("a\xBF"
                           "b"));
    EXPECT_FALSE(rfc::is_valid_utf8("\xC3"));      // truncated 2-byte
    EXPECT_FALSE(rfc::is_valid_utf8("\xE2\x82"));  // truncated 3-byte
    EXPECT_FALSE(rfc::is_valid_utf8("\xE2"));
    EXPECT_FALSE(rfc::is_valid_utf8("\xF0\x9F\x98"));  // truncated 4-byte
    EXPECT_FALSE(rfc::is_valid_utf8("\xF0\x9F"));
    EXPECT_FALSE(
        rfc::is_valid_utf8("\xC3"
                           "a"));  // continuation is ASCII
    EXPECT_FALSE(
        rfc::is_valid_utf8("\xE2\x82"
                           "a"));
    EXPECT_FALSE(
        rfc::is_valid_utf8("\xF0\x9F\x98"
                           "a"));
    EXPECT_FALSE(rfc::is_valid_utf8("\xE2\xC2\xAC"));
    EXPECT_FALSE(rfc::is_valid_utf8("\xE2\x82\xC0"));
    EXPECT_FALSE(rfc::is_valid_utf8("\xF0\x9F\x98\xC0"));
}

TEST(utf8, ascii_fast_path_boundaries) {
    // A bad byte at every position of inputs around the 8-byte chunk size.
    for (std::size_t len = 1; len <= 25; ++len) {
        EXPECT_TRUE(rfc::is_valid_utf8(std::string(len, 'x'))) << len;
        for (std::size_t bad = 0; bad < len; ++bad) {
            std::string s(len, 'x');
            s[bad] = '\x80';
            EXPECT_FALSE(rfc::is_valid_utf8(s)) << "len " << len << " bad at " << bad;
            s[bad] = '\xFF';
            EXPECT_FALSE(rfc::is_valid_utf8(s)) << "len " << len << " bad at " << bad;
        }
    }
    // A multi-byte character straddling an 8-byte chunk boundary, and truncated at the end.
    for (std::size_t prefix = 0; prefix <= 16; ++prefix) {
        const std::string ok = std::string(prefix, 'x') + "\xF0\x9F\x98\x80" + "yyyyyyyy";
        EXPECT_TRUE(rfc::is_valid_utf8(ok)) << prefix;
        const std::string cut = std::string(prefix, 'x') + "\xF0\x9F\x98";
        EXPECT_FALSE(rfc::is_valid_utf8(cut)) << prefix;
        const std::string surrogate = std::string(prefix, 'x') + "\xED\xA0\x80" + "yyyyyyyy";
        EXPECT_FALSE(rfc::is_valid_utf8(surrogate)) << prefix;
    }
    // The view ends before a bad byte that sits right after it in memory.
    const std::string storage = std::string(8, 'x') + "\xFF";
    EXPECT_TRUE(rfc::is_valid_utf8(std::string_view(storage).substr(0, 8)));
}

// ---------------------------------------------------------------- handshake

TEST(handshake, accept_key_rfc6455_example) {
    EXPECT_EQ(rfc::accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

TEST(handshake, accept_key_second_vector) {
    // Computed independently: base64(sha1("x3JJHMbDL1EzLkh9GBhXDw==" + GUID)).
    EXPECT_EQ(rfc::accept_key("x3JJHMbDL1EzLkh9GBhXDw=="), "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

TEST(handshake, valid_client_keys) {
    EXPECT_TRUE(rfc::is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ=="));
    EXPECT_TRUE(rfc::is_valid_client_key("x3JJHMbDL1EzLkh9GBhXDw=="));
    EXPECT_TRUE(rfc::is_valid_client_key("AAAAAAAAAAAAAAAAAAAAAA=="));
    EXPECT_TRUE(rfc::is_valid_client_key("+/+/+/+/+/+/+/+/+/+/+w=="));
}

TEST(handshake, invalid_client_keys) {
    EXPECT_FALSE(rfc::is_valid_client_key(""));
    EXPECT_FALSE(rfc::is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ="));    // 23 chars
    EXPECT_FALSE(rfc::is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ==="));  // 25 chars
    EXPECT_FALSE(rfc::is_valid_client_key("dGhlIHNhbXBsZSBub25jZQAA"));   // 18 bytes, no padding
    EXPECT_FALSE(rfc::is_valid_client_key("dGhlIHNhbXBsZSBub25j*Q=="));   // not base64
    EXPECT_FALSE(rfc::is_valid_client_key("dGhlIHNhbXBsZSBub25j Q=="));
    EXPECT_FALSE(rfc::is_valid_client_key("dGhlIHNhbXBsZSBub25jZQ\0\0"));
    EXPECT_FALSE(rfc::is_valid_client_key(std::string_view("dGhlIHNhbXBsZSBub25j\0Q==", 24)));
}

// '=' is padding, allowed only as the last two characters of a 16-byte key. OpenSSL's
// EVP_DecodeBlock does not check where '=' appears, so the key check has to.
TEST(handshake, padding_only_at_the_end) {
    EXPECT_FALSE(rfc::is_valid_client_key("dGhlIHNhbXBsZSBub25jZ==="));
    EXPECT_FALSE(rfc::is_valid_client_key("========================"));
    EXPECT_FALSE(rfc::is_valid_client_key("AAAA====AAAAAAAAAAAAAA=="));
    EXPECT_FALSE(rfc::is_valid_client_key("AAAAAAAAAAAAAAAAAAAA=A=="));
}
