/*
 * SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104), the primitives behind the
 * bootstrap's challenge-response, plus a constant-time comparison. Small and
 * portable rather than fast: the bootstrap hashes a few hundred bytes per
 * connection. Checked against the FIPS 180-4 examples and RFC 4231 vectors in
 * tests/boot/test_bootstrap.c.
 */
#ifndef TUTTI_SHA256_H
#define TUTTI_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define TT_SHA256_DIGEST_LEN 32
#define TT_SHA256_BLOCK_LEN  64

/* Incremental hash state; caller-owned, no allocation. */
typedef struct tt_sha256 {
    uint32_t h[8];                       /* chaining value */
    uint64_t nbytes;                     /* bytes hashed so far */
    uint8_t  buf[TT_SHA256_BLOCK_LEN];   /* partial block */
    size_t   fill;                       /* bytes used in buf */
} tt_sha256_t;

/* HMAC state: the inner hash and the outer key block it finishes with. */
typedef struct tt_hmac_sha256 {
    tt_sha256_t inner;
    uint8_t     okey[TT_SHA256_BLOCK_LEN]; /* key ^ 0x5c.. */
} tt_hmac_sha256_t;

void tutti__sha256_init(tt_sha256_t *s);
void tutti__sha256_update(tt_sha256_t *s, const void *data, size_t len);
/* Writes the digest and wipes the state. */
void tutti__sha256_final(tt_sha256_t *s, uint8_t out[TT_SHA256_DIGEST_LEN]);
/* One shot. */
void tutti__sha256(const void *data, size_t len,
                   uint8_t out[TT_SHA256_DIGEST_LEN]);

/* HMAC-SHA256 with a key of any length (long keys are hashed first). */
void tutti__hmac_sha256_init(tt_hmac_sha256_t *h, const void *key,
                             size_t keylen);
void tutti__hmac_sha256_update(tt_hmac_sha256_t *h, const void *data,
                               size_t len);
/* Writes the tag and wipes the state (key material included). */
void tutti__hmac_sha256_final(tt_hmac_sha256_t *h,
                              uint8_t out[TT_SHA256_DIGEST_LEN]);
void tutti__hmac_sha256(const void *key, size_t keylen, const void *data,
                        size_t len, uint8_t out[TT_SHA256_DIGEST_LEN]);

/*
 * 1 when a and b hold the same len bytes, else 0. The time taken depends on
 * len only, never on where the buffers differ.
 */
int tutti__ct_equal(const void *a, const void *b, size_t len);

/* Zeroes len bytes in a way the compiler may not optimise away. */
void tutti__wipe(void *p, size_t len);

#endif /* TUTTI_SHA256_H */
