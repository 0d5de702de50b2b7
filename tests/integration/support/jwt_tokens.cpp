#include "support/jwt_tokens.hpp"

#include <jwt.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include <boost/json/object.hpp>
#include <boost/json/serialize.hpp>

#include <chrono>
#include <cstdlib>
#include <memory>
#include <stdexcept>

namespace wsgate::test {

namespace {

struct jwt_deleter {
    void operator()(jwt_t* j) const { jwt_free(j); }
};

std::string sign(jwt_alg_t alg, std::string_view key, const jwt_claims& claims) {
    jwt_t* raw = nullptr;
    if (jwt_new(&raw) != 0) throw std::runtime_error("jwt_new failed");
    std::unique_ptr<jwt_t, jwt_deleter> token(raw);
    if (claims.sub) jwt_add_grant(raw, "sub", claims.sub->c_str());
    if (claims.exp) jwt_add_grant_int(raw, "exp", static_cast<long>(*claims.exp));
    if (claims.nbf) jwt_add_grant_int(raw, "nbf", static_cast<long>(*claims.nbf));
    if (claims.iat) jwt_add_grant_int(raw, "iat", static_cast<long>(*claims.iat));
    for (const auto& [name, value] : claims.extra) jwt_add_grant(raw, name.c_str(), value.c_str());
    if (jwt_set_alg(raw, alg, reinterpret_cast<const unsigned char*>(key.data()),
                    static_cast<int>(key.size())) != 0) {
        throw std::runtime_error(std::string("jwt_set_alg(") + jwt_alg_str(alg) + ") failed");
    }
    char* encoded = jwt_encode_str(raw);
    if (encoded == nullptr) {
        throw std::runtime_error(std::string("jwt_encode_str(") + jwt_alg_str(alg) + ") failed");
    }
    std::string out(encoded);
    std::free(encoded);
    return out;
}

std::string base64url(std::string_view bytes) {
    static constexpr char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string out;
    std::size_t i = 0;
    for (; i + 2 < bytes.size(); i += 3) {
        const auto n = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                       static_cast<unsigned char>(bytes[i + 2]);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
        out += alphabet[n & 63];
    }
    if (i + 1 == bytes.size()) {
        const auto n = static_cast<unsigned char>(bytes[i]) << 16;
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
    } else if (i + 2 == bytes.size()) {
        const auto n = (static_cast<unsigned char>(bytes[i]) << 16) |
                       (static_cast<unsigned char>(bytes[i + 1]) << 8);
        out += alphabet[(n >> 18) & 63];
        out += alphabet[(n >> 12) & 63];
        out += alphabet[(n >> 6) & 63];
    }
    return out;
}

std::string bio_string(BIO* bio) {
    char* data = nullptr;
    const long len = BIO_get_mem_data(bio, &data);
    return std::string(data, static_cast<std::size_t>(len));
}

}  // namespace

std::int64_t seconds_from_now(std::int64_t delta) {
    const auto now = std::chrono::duration_cast<std::chrono::seconds>(
                         std::chrono::system_clock::now().time_since_epoch())
                         .count();
    return now + delta;
}

jwt_claims valid_claims(std::string_view sub) {
    jwt_claims c;
    c.sub = std::string(sub);
    c.iat = seconds_from_now(0);
    c.exp = seconds_from_now(3600);
    return c;
}

std::string make_hs256_token(std::string_view secret, const jwt_claims& claims) {
    return sign(JWT_ALG_HS256, secret, claims);
}

std::string make_hs512_token(std::string_view secret, const jwt_claims& claims) {
    return sign(JWT_ALG_HS512, secret, claims);
}

std::string make_rs256_token(std::string_view private_key_pem, const jwt_claims& claims) {
    return sign(JWT_ALG_RS256, private_key_pem, claims);
}

std::string make_alg_none_token(const jwt_claims& claims) {
    boost::json::object body;
    if (claims.sub) body["sub"] = *claims.sub;
    if (claims.exp) body["exp"] = *claims.exp;
    if (claims.nbf) body["nbf"] = *claims.nbf;
    if (claims.iat) body["iat"] = *claims.iat;
    for (const auto& [name, value] : claims.extra) body[name] = value;
    return base64url(R"({"alg":"none","typ":"JWT"})") + "." +
           base64url(boost::json::serialize(body)) + ".";
}

rsa_key_pair generate_rsa_key_pair(int bits) {
    std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)> key(
        EVP_RSA_gen(static_cast<unsigned>(bits)), &EVP_PKEY_free);
    if (!key) throw std::runtime_error("EVP_RSA_gen failed");
    std::unique_ptr<BIO, decltype(&BIO_free)> priv(BIO_new(BIO_s_mem()), &BIO_free);
    std::unique_ptr<BIO, decltype(&BIO_free)> pub(BIO_new(BIO_s_mem()), &BIO_free);
    if (!priv || !pub ||
        PEM_write_bio_PrivateKey(priv.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
            1 ||
        PEM_write_bio_PUBKEY(pub.get(), key.get()) != 1) {
        throw std::runtime_error("writing the RSA key pair as PEM failed");
    }
    return {bio_string(priv.get()), bio_string(pub.get())};
}

}  // namespace wsgate::test
