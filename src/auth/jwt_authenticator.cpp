#include "auth/jwt_authenticator.hpp"

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <limits>
#include <memory>
#include <stdexcept>
#include <system_error>
#include <utility>

namespace wsgate::auth {
namespace {

using core::error;
using seconds_rep = std::chrono::seconds::rep;

struct jwt_deleter {
    void operator()(jwt_t* jwt) const noexcept { jwt_free(jwt); }
};
using jwt_ptr = std::unique_ptr<jwt_t, jwt_deleter>;

// Strings that libjwt returns from jwt_get_grants_json() are malloc'd.
struct free_deleter {
    void operator()(char* p) const noexcept { std::free(p); }
};
using malloc_string = std::unique_ptr<char, free_deleter>;

struct bio_deleter {
    void operator()(BIO* bio) const noexcept { BIO_free(bio); }
};
struct pkey_deleter {
    void operator()(EVP_PKEY* key) const noexcept { EVP_PKEY_free(key); }
};

// OpenSSL's error queue is per thread, and shard threads also run TLS, where a stale entry
// makes SSL_get_error() misreport. libjwt leaves entries behind when an RS256 signature
// fails, so every OpenSSL-backed call here drops what it added and keeps older entries.
class openssl_error_scope {
public:
    openssl_error_scope() noexcept { ERR_set_mark(); }
    ~openssl_error_scope() { ERR_pop_to_mark(); }
    openssl_error_scope(const openssl_error_scope&) = delete;
    openssl_error_scope& operator=(const openssl_error_scope&) = delete;
};

bool is_base64url(std::string_view part) noexcept {
    return std::all_of(part.begin(), part.end(), [](char c) {
        return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
               c == '-' || c == '_';
    });
}

// JWS compact serialization: header.payload.signature, each unpadded base64url. The
// signature may be empty (alg none), which is refused later with a more precise code. This
// also rules out embedded NULs before the token reaches libjwt as a C string.
bool has_compact_jws_shape(std::string_view token) noexcept {
    const auto first = token.find('.');
    if (first == std::string_view::npos) return false;
    const auto second = token.find('.', first + 1);
    if (second == std::string_view::npos) return false;
    if (token.find('.', second + 1) != std::string_view::npos) return false;
    const auto header = token.substr(0, first);
    const auto payload = token.substr(first + 1, second - first - 1);
    const auto signature = token.substr(second + 1);
    return !header.empty() && !payload.empty() && is_base64url(header) && is_base64url(payload) &&
           is_base64url(signature);
}

// Null unless libjwt decoded the token; with a key, that includes a good signature.
jwt_ptr decode(const std::string& token, const std::string* key) {
    jwt_t* raw = nullptr;
    const int rc = key == nullptr ? jwt_decode(&raw, token.c_str(), nullptr, 0)
                                  : jwt_decode(&raw, token.c_str(),
                                               reinterpret_cast<const unsigned char*>(key->data()),
                                               static_cast<int>(key->size()));
    jwt_ptr jwt{raw};
    if (rc != 0) return nullptr;
    return jwt;
}

// RFC 7519 requires the claims set to be a JSON object; libjwt 1.10 also accepts an array.
bool has_object_payload(jwt_t* jwt) {
    const malloc_string claims{jwt_get_grants_json(jwt, nullptr)};
    return claims && claims.get()[0] == '{';
}

struct numeric_date {
    enum class state { absent, present, invalid } status = state::absent;
    seconds_rep seconds = 0;  // rounded down to the second
};

// A NumericDate (RFC 7519 section 2) is a JSON number of seconds and may be non-integer.
// jwt_get_grant_int() in libjwt 1.10 returns 0, errno untouched, for an integer 0 and for a
// real or a string alike, so the claim is read as its JSON text and parsed here instead.
numeric_date read_numeric_date(jwt_t* jwt, const char* name) {
    const malloc_string json{jwt_get_grants_json(jwt, name)};
    if (!json) return {};
    const std::string_view text{json.get()};
    const char* const first = text.data();
    const char* const last = first + text.size();

    seconds_rep integer = 0;
    if (const auto [end, ec] = std::from_chars(first, last, integer);
        ec == std::errc{} && end == last) {
        return {numeric_date::state::present, integer};
    }
    double real = 0;
    if (const auto [end, ec] = std::from_chars(first, last, real);
        ec == std::errc{} && end == last && std::isfinite(real)) {
        // Saturate far beyond any real date rather than overflow the conversion.
        constexpr double limit = 9.0e18;
        return {numeric_date::state::present,
                static_cast<seconds_rep>(std::clamp(std::floor(real), -limit, limit))};
    }
    return {numeric_date::state::invalid, 0};
}

seconds_rep saturating_add(seconds_rep a, seconds_rep b) noexcept {  // b >= 0
    return a > std::numeric_limits<seconds_rep>::max() - b ? std::numeric_limits<seconds_rep>::max()
                                                           : a + b;
}

seconds_rep saturating_sub(seconds_rep a, seconds_rep b) noexcept {  // b >= 0
    return a < std::numeric_limits<seconds_rep>::min() + b ? std::numeric_limits<seconds_rep>::min()
                                                           : a - b;
}

std::chrono::system_clock::time_point to_time_point(seconds_rep seconds) noexcept {
    using namespace std::chrono;
    using clock_point = system_clock::time_point;
    constexpr auto max_seconds = floor<std::chrono::seconds>(clock_point::max().time_since_epoch());
    constexpr auto min_seconds = ceil<std::chrono::seconds>(clock_point::min().time_since_epoch());
    const auto clamped = std::clamp(std::chrono::seconds{seconds}, min_seconds, max_seconds);
    return clock_point{duration_cast<system_clock::duration>(clamped)};
}

void require_rsa_public_key(const std::string& pem) {
    const openssl_error_scope errors;
    const std::unique_ptr<BIO, bio_deleter> bio{
        BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()))};
    if (!bio) throw std::runtime_error("JWT: out of memory reading the RS256 public key");
    const std::unique_ptr<EVP_PKEY, pkey_deleter> key{
        PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr)};
    if (!key) {
        throw std::invalid_argument(
            "JWT: the RS256 public key is not a PEM public key "
            "(expected \"-----BEGIN PUBLIC KEY-----\")");
    }
    if (EVP_PKEY_get_base_id(key.get()) != EVP_PKEY_RSA) {
        throw std::invalid_argument("JWT: the RS256 public key is not an RSA key");
    }
}

}  // namespace

jwt_authenticator::jwt_authenticator(jwt_config config) : leeway_{config.leeway} {
    const bool has_secret = !config.hs256_secret.empty();
    const bool has_key = !config.rs256_public_key_pem.empty();
    if (has_secret && has_key) {
        throw std::invalid_argument(
            "JWT: set either an HS256 secret or an RS256 public key, not both");
    }
    if (!has_secret && !has_key) {
        throw std::invalid_argument("JWT: neither an HS256 secret nor an RS256 public key is set");
    }
    if (leeway_ < std::chrono::seconds::zero()) {
        throw std::invalid_argument("JWT: the leeway must not be negative");
    }
    key_ = has_secret ? std::move(config.hs256_secret) : std::move(config.rs256_public_key_pem);
    // libjwt takes key lengths as int.
    if (key_.size() > static_cast<std::size_t>(INT_MAX)) {
        throw std::invalid_argument("JWT: the secret or key is too large");
    }
    if (has_key) require_rsa_public_key(key_);
    algorithm_ = has_secret ? algorithm::hs256 : algorithm::rs256;
}

core::result<core::identity> jwt_authenticator::authenticate(
    std::string_view token, std::chrono::system_clock::time_point now) const {
    if (token.empty()) return error::token_missing;
    if (!has_compact_jws_shape(token)) return error::token_malformed;
    const std::string token_z{token};  // libjwt wants a NUL-terminated string

    // 1. Parse without a key: JSON header and claims, no signature check. Nothing read
    //    from this object is trusted beyond choosing which error to report.
    const jwt_ptr unverified = decode(token_z, nullptr);
    if (!unverified || !has_object_payload(unverified.get())) return error::token_malformed;

    // 2. The algorithm, before any key touches the token. libjwt would verify whatever the
    //    header names with our key: an HS256 token keyed with the RS256 public key's PEM
    //    text verifies (key confusion). jwt_get_alg() cannot be used here: libjwt 1.10
    //    reports JWT_ALG_NONE for every token decoded without a key. The header is compared
    //    exactly (alg is case-sensitive, RFC 7515; libjwt's own parsing is not), so "none",
    //    "hs256" and every other algorithm are refused.
    const char* header_alg = jwt_get_header(unverified.get(), "alg");
    if (header_alg == nullptr) return error::token_malformed;
    const std::string_view expected_alg = algorithm_ == algorithm::hs256 ? "HS256" : "RS256";
    if (header_alg != expected_alg) return error::token_algorithm_not_allowed;

    // 3. The signature. For HS256 libjwt recomputes the HMAC, base64url-encodes it and
    //    compares the strings with jwt_strcmp(): Debian's 1.10.2-1+deb12u1 (CVE-2024-25189)
    //    ORs the XOR of every byte over the longer length, so timing does not depend on
    //    where the strings differ (upstream 1.10.2 used strcmp). RS256 goes to OpenSSL's
    //    EVP_DigestVerify with the PEM public key.
    jwt_ptr verified;
    {
        const openssl_error_scope errors;
        verified = decode(token_z, &key_);
    }
    if (!verified) return error::token_signature_invalid;
    const jwt_alg_t expected_jwt_alg =
        algorithm_ == algorithm::hs256 ? JWT_ALG_HS256 : JWT_ALG_RS256;
    if (jwt_get_alg(verified.get()) != expected_jwt_alg) {
        return error::token_algorithm_not_allowed;
    }

    // 4. Claims, from the verified object only. exp and nbf are whole seconds; comparing
    //    them with floor(now) is exact for integers.
    const numeric_date exp = read_numeric_date(verified.get(), "exp");
    const numeric_date nbf = read_numeric_date(verified.get(), "nbf");
    if (exp.status == numeric_date::state::invalid || nbf.status == numeric_date::state::invalid) {
        return error::token_malformed;
    }
    const seconds_rep now_s =
        std::chrono::floor<std::chrono::seconds>(now.time_since_epoch()).count();
    if (exp.status == numeric_date::state::present &&
        exp.seconds <= saturating_sub(now_s, leeway_.count())) {
        return error::token_expired;
    }
    if (nbf.status == numeric_date::state::present &&
        nbf.seconds > saturating_add(now_s, leeway_.count())) {
        return error::token_not_yet_valid;
    }

    // jwt_get_grant() returns only string claims; jansson refuses \u0000 inside strings.
    const char* sub = jwt_get_grant(verified.get(), "sub");
    if (sub == nullptr || *sub == '\0') return error::token_subject_missing;

    core::identity id;
    id.user_id = sub;
    if (exp.status == numeric_date::state::present) id.expires_at = to_time_point(exp.seconds);
    return id;
}

std::string jwt_authenticator::read_key_file(const std::string& path) {
    std::ifstream in{path, std::ios::binary};
    if (!in) {
        throw std::runtime_error("JWT: cannot open key file '" + path +
                                 "': " + std::generic_category().message(errno));
    }
    std::string content;
    std::array<char, 4096> chunk{};
    while (in.read(chunk.data(), chunk.size()) || in.gcount() > 0) {
        content.append(chunk.data(), static_cast<std::size_t>(in.gcount()));
    }
    if (in.bad()) throw std::runtime_error("JWT: error reading key file '" + path + "'");
    if (content.empty()) {
        throw std::runtime_error("JWT: key file '" + path + "' is empty or unreadable");
    }
    return content;
}

}  // namespace wsgate::auth
