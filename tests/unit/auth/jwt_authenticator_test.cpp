#include "auth/jwt_authenticator.hpp"

#include <gtest/gtest.h>
#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include <unistd.h>

namespace {

using wsgate::auth::jwt_authenticator;
using wsgate::auth::jwt_config;
using clock_point = std::chrono::system_clock::time_point;

// A fixed clock, half a second past a whole second so that rounding shows.
constexpr std::int64_t now_s = 1'700'000'000;
const clock_point now = clock_point{std::chrono::seconds{now_s}} + std::chrono::milliseconds{500};

const std::string secret = "correct horse battery staple, 32+ bytes";

// ---- token construction, with libjwt and OpenSSL ------------------------------------------

struct jwt_deleter {
    void operator()(jwt_t* jwt) const noexcept { jwt_free(jwt); }
};
struct bio_deleter {
    void operator()(BIO* bio) const noexcept { BIO_free(bio); }
};
struct pkey_deleter {
    void operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }
};
using pkey_ptr = std::unique_ptr<EVP_PKEY, pkey_deleter>;

// claims: a JSON object. key: the HMAC secret or the PEM private key.
std::string sign(jwt_alg_t alg, const std::string& key, const std::string& claims) {
    jwt_t* raw = nullptr;
    if (jwt_new(&raw) != 0) throw std::runtime_error("jwt_new");
    const std::unique_ptr<jwt_t, jwt_deleter> jwt{raw};
    if (jwt_add_grants_json(jwt.get(), claims.c_str()) != 0) throw std::runtime_error(claims);
    if (jwt_set_alg(jwt.get(), alg, reinterpret_cast<const unsigned char*>(key.data()),
                    static_cast<int>(key.size())) != 0) {
        throw std::runtime_error("jwt_set_alg");
    }
    char* encoded = jwt_encode_str(jwt.get());
    if (encoded == nullptr) throw std::runtime_error("jwt_encode_str");
    std::string token{encoded};
    std::free(encoded);
    return token;
}

std::string b64url(std::string_view bytes) {
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                  reinterpret_cast<const unsigned char*>(bytes.data()),
                                  static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    for (char& c : out) {
        if (c == '+') c = '-';
        if (c == '/') c = '_';
    }
    while (!out.empty() && out.back() == '=') out.pop_back();
    return out;
}

// A token assembled by hand: no library would sign these.
std::string hand_made(std::string_view header, std::string_view claims,
                      std::string_view signature) {
    return b64url(header) + "." + b64url(claims) + "." + std::string{signature};
}

std::string part(const std::string& token, int index) {
    std::size_t begin = 0;
    for (int i = 0; i < index; ++i) begin = token.find('.', begin) + 1;
    return token.substr(begin, token.find('.', begin) - begin);
}

std::string claims_for(const std::string& sub, std::int64_t exp) {
    return R"({"sub":")" + sub + R"(","exp":)" + std::to_string(exp) + "}";
}

std::string pem_of(EVP_PKEY* key, bool private_part) {
    const std::unique_ptr<BIO, bio_deleter> bio{BIO_new(BIO_s_mem())};
    const int ok = private_part ? PEM_write_bio_PrivateKey(bio.get(), key, nullptr, nullptr, 0,
                                                           nullptr, nullptr)
                                : PEM_write_bio_PUBKEY(bio.get(), key);
    if (ok != 1) throw std::runtime_error("PEM_write_bio");
    char* data = nullptr;
    const long size = BIO_get_mem_data(bio.get(), &data);
    return std::string(data, static_cast<std::size_t>(size));
}

struct rsa_key_pair {
    std::string private_pem;
    std::string public_pem;
};

rsa_key_pair make_rsa_key_pair() {
    const pkey_ptr key{EVP_PKEY_Q_keygen(nullptr, nullptr, "RSA", std::size_t{2048})};
    if (!key) throw std::runtime_error("RSA keygen");
    return {pem_of(key.get(), true), pem_of(key.get(), false)};
}

// Key generation is slow: one pair for the verifier, one for a forger, made once.
const rsa_key_pair& trusted_key() {
    static const rsa_key_pair pair = make_rsa_key_pair();
    return pair;
}
const rsa_key_pair& forger_key() {
    static const rsa_key_pair pair = make_rsa_key_pair();
    return pair;
}

jwt_authenticator hs256_verifier(std::chrono::seconds leeway = std::chrono::seconds{30}) {
    jwt_config config;
    config.hs256_secret = secret;
    config.leeway = leeway;
    return jwt_authenticator{config};
}

jwt_authenticator rs256_verifier() {
    jwt_config config;
    config.rs256_public_key_pem = trusted_key().public_pem;
    return jwt_authenticator{config};
}

// "ok" or the wire code of the error, so that every assertion names the exact outcome.
// (std::string rather than string_view: gtest then prints the expected literal as text.)
std::string outcome(const wsgate::core::result<wsgate::core::identity>& r) {
    return r ? "ok" : std::string{wsgate::core::wire_code(r.error())};
}

// ---- accepted tokens -----------------------------------------------------------------------

TEST(jwt_authenticator, hs256_token_is_accepted) {
    const auto token = sign(JWT_ALG_HS256, secret, claims_for("alice", now_s + 60));
    const auto r = hs256_verifier().authenticate(token, now);
    ASSERT_EQ(outcome(r), "ok");
    EXPECT_EQ(r.value().user_id, "alice");
    EXPECT_EQ(r.value().expires_at, clock_point{std::chrono::seconds{now_s + 60}});
}

TEST(jwt_authenticator, rs256_token_is_accepted) {
    const auto token =
        sign(JWT_ALG_RS256, trusted_key().private_pem, claims_for("bob", now_s + 60));
    const auto r = rs256_verifier().authenticate(token, now);
    ASSERT_EQ(outcome(r), "ok");
    EXPECT_EQ(r.value().user_id, "bob");
    EXPECT_EQ(r.value().expires_at, clock_point{std::chrono::seconds{now_s + 60}});
}

TEST(jwt_authenticator, token_without_exp_has_no_expiry) {
    const auto r =
        hs256_verifier().authenticate(sign(JWT_ALG_HS256, secret, R"({"sub":"a"})"), now);
    ASSERT_EQ(outcome(r), "ok");
    EXPECT_FALSE(r.value().expires_at.has_value());
}

TEST(jwt_authenticator, non_integer_exp_is_a_valid_numeric_date) {
    const auto claims = R"({"sub":"a","exp":)" + std::to_string(now_s + 60) + ".75}";
    const auto r = hs256_verifier().authenticate(sign(JWT_ALG_HS256, secret, claims), now);
    ASSERT_EQ(outcome(r), "ok");
    EXPECT_EQ(r.value().expires_at, clock_point{std::chrono::seconds{now_s + 60}});
}

TEST(jwt_authenticator, far_future_exp_saturates_instead_of_overflowing) {
    for (const std::string exp : {"99999999999", "9000000000000000000", "1e300"}) {
        SCOPED_TRACE(exp);
        const auto claims = R"({"sub":"a","exp":)" + exp + "}";
        const auto r = hs256_verifier().authenticate(sign(JWT_ALG_HS256, secret, claims), now);
        ASSERT_EQ(outcome(r), "ok");
        ASSERT_TRUE(r.value().expires_at.has_value());
        EXPECT_GT(r.value().expires_at.value(), now + std::chrono::hours{24 * 365 * 100});
    }
}

// ---- signatures ----------------------------------------------------------------------------

TEST(jwt_authenticator, hs256_signed_with_another_secret_is_refused) {
    const auto token = sign(JWT_ALG_HS256, "another secret", claims_for("alice", now_s + 60));
    EXPECT_EQ(outcome(hs256_verifier().authenticate(token, now)), "token_signature_invalid");
}

TEST(jwt_authenticator, rs256_signed_with_another_key_is_refused) {
    const auto token =
        sign(JWT_ALG_RS256, forger_key().private_pem, claims_for("alice", now_s + 60));
    EXPECT_EQ(outcome(rs256_verifier().authenticate(token, now)), "token_signature_invalid");
}

TEST(jwt_authenticator, tampered_payload_is_refused) {
    const auto forged_claims = b64url(claims_for("mallory", now_s + 60));
    const auto hs = sign(JWT_ALG_HS256, secret, claims_for("alice", now_s + 60));
    const auto hs_forged = part(hs, 0) + "." + forged_claims + "." + part(hs, 2);
    EXPECT_EQ(outcome(hs256_verifier().authenticate(hs_forged, now)), "token_signature_invalid");

    const auto rs = sign(JWT_ALG_RS256, trusted_key().private_pem, claims_for("alice", now_s + 60));
    const auto rs_forged = part(rs, 0) + "." + forged_claims + "." + part(rs, 2);
    EXPECT_EQ(outcome(rs256_verifier().authenticate(rs_forged, now)), "token_signature_invalid");
}

TEST(jwt_authenticator, stripped_signature_is_refused) {
    const auto hs = sign(JWT_ALG_HS256, secret, claims_for("alice", now_s + 60));
    EXPECT_EQ(outcome(hs256_verifier().authenticate(hs.substr(0, hs.rfind('.') + 1), now)),
              "token_signature_invalid");
    const auto rs = sign(JWT_ALG_RS256, trusted_key().private_pem, claims_for("alice", now_s + 60));
    EXPECT_EQ(outcome(rs256_verifier().authenticate(rs.substr(0, rs.rfind('.') + 1), now)),
              "token_signature_invalid");
}

// ---- algorithms ----------------------------------------------------------------------------

TEST(jwt_authenticator, alg_none_is_refused_with_and_without_a_signature) {
    const auto hs = hs256_verifier();
    const auto rs = rs256_verifier();
    const auto claims = claims_for("alice", now_s + 60);
    for (const std::string header : {R"({"alg":"none"})", R"({"alg":"none","typ":"JWT"})",
                                     R"({"alg":"None"})", R"({"alg":"NONE","typ":"JWT"})"}) {
        for (const std::string signature : {"", "c2lnbmF0dXJl"}) {
            SCOPED_TRACE(header + " signature '" + signature + "'");
            const auto token = hand_made(header, claims, signature);
            EXPECT_EQ(outcome(hs.authenticate(token, now)), "token_algorithm_not_allowed");
            EXPECT_EQ(outcome(rs.authenticate(token, now)), "token_algorithm_not_allowed");
        }
    }
}

// The classic key confusion: the RS256 public key is public, so an attacker can HMAC a token
// with its PEM text. libjwt 1.10 verifies that token if asked to with the PEM as the key.
TEST(jwt_authenticator, hs256_keyed_with_the_public_key_is_refused_by_rs256) {
    const auto token =
        sign(JWT_ALG_HS256, trusted_key().public_pem, claims_for("mallory", now_s + 60));
    EXPECT_EQ(outcome(rs256_verifier().authenticate(token, now)), "token_algorithm_not_allowed");
}

TEST(jwt_authenticator, rs256_token_is_refused_by_hs256) {
    const auto token =
        sign(JWT_ALG_RS256, trusted_key().private_pem, claims_for("alice", now_s + 60));
    EXPECT_EQ(outcome(hs256_verifier().authenticate(token, now)), "token_algorithm_not_allowed");
}

TEST(jwt_authenticator, other_algorithms_are_refused) {
    const auto claims = claims_for("alice", now_s + 60);
    EXPECT_EQ(outcome(hs256_verifier().authenticate(sign(JWT_ALG_HS512, secret, claims), now)),
              "token_algorithm_not_allowed");
    EXPECT_EQ(outcome(rs256_verifier().authenticate(
                  sign(JWT_ALG_RS512, trusted_key().private_pem, claims), now)),
              "token_algorithm_not_allowed");
    // alg is case-sensitive (RFC 7515), although libjwt would read "hs256" as HS256.
    const auto good = sign(JWT_ALG_HS256, secret, claims);
    const auto lowercase =
        b64url(R"({"alg":"hs256","typ":"JWT"})") + "." + part(good, 1) + "." + part(good, 2);
    EXPECT_EQ(outcome(hs256_verifier().authenticate(lowercase, now)),
              "token_algorithm_not_allowed");
}

// ---- time ----------------------------------------------------------------------------------

TEST(jwt_authenticator, expired_token_is_refused) {
    const auto token = sign(JWT_ALG_HS256, secret, claims_for("alice", now_s - 31));
    EXPECT_EQ(outcome(hs256_verifier().authenticate(token, now)), "token_expired");
    // exp <= now - leeway is expired: now - 30 s is now_s - 29.5.
    const auto edge = sign(JWT_ALG_HS256, secret, claims_for("alice", now_s - 30));
    EXPECT_EQ(outcome(hs256_verifier().authenticate(edge, now)), "token_expired");
}

TEST(jwt_authenticator, expired_within_leeway_is_accepted) {
    const auto token = sign(JWT_ALG_HS256, secret, claims_for("alice", now_s - 29));
    EXPECT_EQ(outcome(hs256_verifier().authenticate(token, now)), "ok");
    EXPECT_EQ(outcome(hs256_verifier(std::chrono::seconds{0}).authenticate(token, now)),
              "token_expired");
}

TEST(jwt_authenticator, exp_equal_to_now_is_expired_without_leeway) {
    const auto at_now = sign(JWT_ALG_HS256, secret, claims_for("alice", now_s));
    const auto next_second = sign(JWT_ALG_HS256, secret, claims_for("alice", now_s + 1));
    const auto verifier = hs256_verifier(std::chrono::seconds{0});
    EXPECT_EQ(outcome(verifier.authenticate(at_now, now)), "token_expired");
    EXPECT_EQ(outcome(verifier.authenticate(next_second, now)), "ok");
}

TEST(jwt_authenticator, nbf_in_the_future_is_refused) {
    const auto claims = R"({"sub":"alice","nbf":)" + std::to_string(now_s + 31) + "}";
    EXPECT_EQ(outcome(hs256_verifier().authenticate(sign(JWT_ALG_HS256, secret, claims), now)),
              "token_not_yet_valid");
}

TEST(jwt_authenticator, nbf_within_leeway_is_accepted) {
    const auto claims = R"({"sub":"alice","nbf":)" + std::to_string(now_s + 30) + "}";
    const auto token = sign(JWT_ALG_HS256, secret, claims);
    EXPECT_EQ(outcome(hs256_verifier().authenticate(token, now)), "ok");
    EXPECT_EQ(outcome(hs256_verifier(std::chrono::seconds{0}).authenticate(token, now)),
              "token_not_yet_valid");
}

TEST(jwt_authenticator, non_numeric_exp_or_nbf_is_malformed) {
    for (const std::string claims : {R"({"sub":"a","exp":"tomorrow"})", R"({"sub":"a","exp":null})",
                                     R"({"sub":"a","nbf":true})", R"({"sub":"a","nbf":[1]})"}) {
        SCOPED_TRACE(claims);
        EXPECT_EQ(outcome(hs256_verifier().authenticate(sign(JWT_ALG_HS256, secret, claims), now)),
                  "token_malformed");
    }
}

// ---- subject -------------------------------------------------------------------------------

TEST(jwt_authenticator, missing_or_non_string_sub_is_refused) {
    const auto exp = std::to_string(now_s + 60);
    for (const std::string& claims :
         std::vector<std::string>{R"({"exp":)" + exp + "}", R"({"sub":"","exp":)" + exp + "}",
                                  R"({"sub":42,"exp":)" + exp + "}", R"({"sub":null})",
                                  R"({"sub":["alice"]})", R"({"sub":{"id":"alice"}})"}) {
        SCOPED_TRACE(claims);
        EXPECT_EQ(outcome(hs256_verifier().authenticate(sign(JWT_ALG_HS256, secret, claims), now)),
                  "token_subject_missing");
    }
}

// ---- malformed -----------------------------------------------------------------------------

TEST(jwt_authenticator, empty_token_is_missing) {
    EXPECT_EQ(outcome(hs256_verifier().authenticate("", now)), "token_missing");
}

TEST(jwt_authenticator, garbage_is_malformed) {
    const auto good = sign(JWT_ALG_HS256, secret, claims_for("alice", now_s + 60));
    const auto header = part(good, 0);
    const auto claims = part(good, 1);
    const auto signature = part(good, 2);
    const std::string nul_inside{"eyJh\0bGciOiJIUzI1NiJ9.e30.", 26};
    const std::vector<std::string> tokens = {
        "not a jwt",
        "Bearer " + good,
        "...",
        "a.b.c",                                                      // base64url, but not JSON
        "%%%.%%%.%%%",                                                // not base64url
        header + "." + claims,                                        // two parts
        header + "." + claims + "." + signature + ".x",               // four parts
        "." + claims + "." + signature,                               // empty header
        header + ".." + signature,                                    // empty claims
        header + "=." + claims + "." + signature,                     // padding
        header + "." + claims + "." + signature + "+/",               // base64, not base64url
        b64url(R"({"typ":"JWT"})") + "." + claims + "." + signature,  // no alg
        b64url(R"({"alg":256})") + "." + claims + "." + signature,    // alg not a string
        b64url(R"({"alg":"HS256","typ":"JOSE+JSON"})") + "." + claims + ".sig",  // bad typ
        header + "." + b64url(R"(["sub","alice"])") + "." + signature,     // claims not an object
        header + "." + b64url(R"({"sub":"alice")") + "." + signature,      // truncated JSON
        header + "." + b64url(R"({"sub":"a\u0000b"})") + "." + signature,  // NUL in a string
        nul_inside,
    };
    for (const auto& token : tokens) {
        SCOPED_TRACE(token);
        EXPECT_EQ(outcome(hs256_verifier().authenticate(token, now)), "token_malformed");
    }
}

// ---- construction --------------------------------------------------------------------------

TEST(jwt_authenticator, constructor_refuses_bad_configuration) {
    EXPECT_THROW(jwt_authenticator{jwt_config{}}, std::invalid_argument);

    jwt_config both;
    both.hs256_secret = secret;
    both.rs256_public_key_pem = trusted_key().public_pem;
    EXPECT_THROW(jwt_authenticator{both}, std::invalid_argument);

    const auto with_key = [](std::string pem) {
        jwt_config config;
        config.rs256_public_key_pem = std::move(pem);
        return config;
    };
    EXPECT_THROW(jwt_authenticator{with_key("not a pem")}, std::invalid_argument);
    EXPECT_THROW(jwt_authenticator{with_key(trusted_key().private_pem)}, std::invalid_argument);
    const pkey_ptr ec_key{EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256")};
    ASSERT_TRUE(ec_key);
    EXPECT_THROW(jwt_authenticator{with_key(pem_of(ec_key.get(), false))}, std::invalid_argument);

    jwt_config negative_leeway;
    negative_leeway.hs256_secret = secret;
    negative_leeway.leeway = std::chrono::seconds{-1};
    EXPECT_THROW(jwt_authenticator{negative_leeway}, std::invalid_argument);

    EXPECT_NO_THROW(jwt_authenticator{with_key(trusted_key().public_pem)});
}

TEST(jwt_authenticator, read_key_file_reads_the_whole_file_or_throws) {
    const auto dir =
        std::filesystem::temp_directory_path() / ("wsgate_auth_test_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    const auto key_path = (dir / "key.pem").string();
    const auto empty_path = (dir / "empty.pem").string();
    std::ofstream{key_path, std::ios::binary} << trusted_key().public_pem;
    std::ofstream{empty_path, std::ios::binary};

    EXPECT_EQ(jwt_authenticator::read_key_file(key_path), trusted_key().public_pem);
    EXPECT_THROW(jwt_authenticator::read_key_file(empty_path), std::runtime_error);
    EXPECT_THROW(jwt_authenticator::read_key_file((dir / "missing.pem").string()),
                 std::runtime_error);
    std::filesystem::remove_all(dir);
}

// ---- hygiene and threads -------------------------------------------------------------------

// OpenSSL's error queue is per thread and shared with TLS on the shard thread: a failed
// verification must leave it as it found it.
TEST(jwt_authenticator, failed_verification_leaves_openssl_error_queue_as_it_was) {
    const auto forged =
        sign(JWT_ALG_RS256, forger_key().private_pem, claims_for("alice", now_s + 60));
    const auto verifier = rs256_verifier();
    ERR_clear_error();
    EXPECT_EQ(outcome(verifier.authenticate(forged, now)), "token_signature_invalid");
    EXPECT_EQ(ERR_peek_error(), 0UL);

    ERR_raise(ERR_LIB_USER, 42);
    const auto earlier = ERR_peek_last_error();
    EXPECT_EQ(outcome(verifier.authenticate(forged, now)), "token_signature_invalid");
    EXPECT_EQ(ERR_peek_last_error(), earlier);
    ERR_clear_error();
}

TEST(jwt_authenticator, concurrent_calls_share_one_instance) {
    const auto hs = hs256_verifier();
    const auto rs = rs256_verifier();
    const auto hs_good = sign(JWT_ALG_HS256, secret, claims_for("alice", now_s + 60));
    const auto hs_bad = sign(JWT_ALG_HS256, "wrong", claims_for("alice", now_s + 60));
    const auto rs_good =
        sign(JWT_ALG_RS256, trusted_key().private_pem, claims_for("bob", now_s + 60));
    const auto rs_bad =
        sign(JWT_ALG_RS256, forger_key().private_pem, claims_for("bob", now_s + 60));

    std::atomic<int> wrong{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
        threads.emplace_back([&] {
            for (int i = 0; i < 50; ++i) {
                if (outcome(hs.authenticate(hs_good, now)) != "ok") ++wrong;
                if (outcome(hs.authenticate(hs_bad, now)) != "token_signature_invalid") ++wrong;
                if (outcome(rs.authenticate(rs_good, now)) != "ok") ++wrong;
                if (outcome(rs.authenticate(rs_bad, now)) != "token_signature_invalid") ++wrong;
            }
        });
    }
    for (auto& thread : threads) thread.join();
    EXPECT_EQ(wrong.load(), 0);
}

}  // namespace
