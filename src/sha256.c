/*
 * SHA-256 and HMAC-SHA256, written from FIPS 180-4 (sections 4.1.2, 4.2.2,
 * 5.1.1, 6.2) and RFC 2104, for the bootstrap's authentication. Straight
 * reference code: one 64-round compression per block, big-endian loads and
 * stores by hand so the result does not depend on the host's byte order.
 */
#include <string.h>

#include "sha256.h"

/* First 32 bits of the fractional parts of the cube roots of the first 64
 * primes (FIPS 180-4, 4.2.2). */
static const uint32_t tt_sha256_k[64] = {
    0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u,
    0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
    0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u,
    0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
    0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu,
    0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
    0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u,
    0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
    0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u,
    0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
    0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u,
    0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
    0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u,
    0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
    0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u,
    0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

/* First 32 bits of the fractional parts of the square roots of the first 8
 * primes (FIPS 180-4, 5.3.3). */
static const uint32_t tt_sha256_h0[8] = {
    0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
    0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
};

static inline uint32_t tt_rotr(uint32_t x, unsigned n)
{
    return (x >> n) | (x << (32 - n));
}

static inline uint32_t tt_load_be32(const uint8_t *p)
{
    return ((uint32_t)p[0] << 24) | ((uint32_t)p[1] << 16) |
           ((uint32_t)p[2] << 8) | (uint32_t)p[3];
}

static inline void tt_store_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

/* Compresses one 64-byte block into the chaining value (FIPS 180-4 6.2.2). */
static void tt_sha256_block(uint32_t h[8], const uint8_t *block)
{
    uint32_t w[64];
    uint32_t a, b, c, d, e, f, g, hh;
    int      t;

    for (t = 0; t < 16; t++) {
        w[t] = tt_load_be32(block + 4 * t);
    }
    for (t = 16; t < 64; t++) {
        uint32_t s0 = tt_rotr(w[t - 15], 7) ^ tt_rotr(w[t - 15], 18) ^
                      (w[t - 15] >> 3);
        uint32_t s1 = tt_rotr(w[t - 2], 17) ^ tt_rotr(w[t - 2], 19) ^
                      (w[t - 2] >> 10);
        w[t] = w[t - 16] + s0 + w[t - 7] + s1;
    }

    a  = h[0];
    b  = h[1];
    c  = h[2];
    d  = h[3];
    e  = h[4];
    f  = h[5];
    g  = h[6];
    hh = h[7];
    for (t = 0; t < 64; t++) {
        uint32_t s1  = tt_rotr(e, 6) ^ tt_rotr(e, 11) ^ tt_rotr(e, 25);
        uint32_t ch  = (e & f) ^ (~e & g);
        uint32_t t1  = hh + s1 + ch + tt_sha256_k[t] + w[t];
        uint32_t s0  = tt_rotr(a, 2) ^ tt_rotr(a, 13) ^ tt_rotr(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2  = s0 + maj;

        hh = g;
        g  = f;
        f  = e;
        e  = d + t1;
        d  = c;
        c  = b;
        b  = a;
        a  = t1 + t2;
    }
    h[0] += a;
    h[1] += b;
    h[2] += c;
    h[3] += d;
    h[4] += e;
    h[5] += f;
    h[6] += g;
    h[7] += hh;
    tutti__wipe(w, sizeof(w));
}

void tutti__sha256_init(tt_sha256_t *s)
{
    memcpy(s->h, tt_sha256_h0, sizeof(s->h));
    s->nbytes = 0;
    s->fill   = 0;
}

void tutti__sha256_update(tt_sha256_t *s, const void *data, size_t len)
{
    const uint8_t *p = data;

    s->nbytes += len;
    if (s->fill > 0) {
        size_t take = TT_SHA256_BLOCK_LEN - s->fill;

        if (take > len) {
            take = len;
        }
        memcpy(s->buf + s->fill, p, take);
        s->fill += take;
        p += take;
        len -= take;
        if (s->fill < TT_SHA256_BLOCK_LEN) {
            return;
        }
        tt_sha256_block(s->h, s->buf);
        s->fill = 0;
    }
    while (len >= TT_SHA256_BLOCK_LEN) {
        tt_sha256_block(s->h, p);
        p += TT_SHA256_BLOCK_LEN;
        len -= TT_SHA256_BLOCK_LEN;
    }
    if (len > 0) {
        memcpy(s->buf, p, len);
        s->fill = len;
    }
}

void tutti__sha256_final(tt_sha256_t *s, uint8_t out[TT_SHA256_DIGEST_LEN])
{
    uint64_t bits = s->nbytes * 8;
    int      i;

    /* Padding (FIPS 180-4 5.1.1): a 1 bit, zeros, then the 64-bit length,
     * spilling into a second block when fewer than 8 bytes are left. */
    s->buf[s->fill++] = 0x80;
    if (s->fill > TT_SHA256_BLOCK_LEN - 8) {
        memset(s->buf + s->fill, 0, TT_SHA256_BLOCK_LEN - s->fill);
        tt_sha256_block(s->h, s->buf);
        s->fill = 0;
    }
    memset(s->buf + s->fill, 0, TT_SHA256_BLOCK_LEN - 8 - s->fill);
    tt_store_be32(s->buf + 56, (uint32_t)(bits >> 32));
    tt_store_be32(s->buf + 60, (uint32_t)bits);
    tt_sha256_block(s->h, s->buf);

    for (i = 0; i < 8; i++) {
        tt_store_be32(out + 4 * i, s->h[i]);
    }
    tutti__wipe(s, sizeof(*s));
}

void tutti__sha256(const void *data, size_t len,
                   uint8_t out[TT_SHA256_DIGEST_LEN])
{
    tt_sha256_t s;

    tutti__sha256_init(&s);
    tutti__sha256_update(&s, data, len);
    tutti__sha256_final(&s, out);
}

void tutti__hmac_sha256_init(tt_hmac_sha256_t *h, const void *key,
                             size_t keylen)
{
    uint8_t k[TT_SHA256_BLOCK_LEN] = {0};
    uint8_t ikey[TT_SHA256_BLOCK_LEN];
    size_t  i;

    /* RFC 2104: keys longer than a block are hashed, shorter ones padded
     * with zeros. */
    if (keylen > TT_SHA256_BLOCK_LEN) {
        tutti__sha256(key, keylen, k);
    } else if (keylen > 0) {
        memcpy(k, key, keylen);
    }
    for (i = 0; i < TT_SHA256_BLOCK_LEN; i++) {
        ikey[i]    = k[i] ^ 0x36;
        h->okey[i] = k[i] ^ 0x5c;
    }
    tutti__sha256_init(&h->inner);
    tutti__sha256_update(&h->inner, ikey, sizeof(ikey));
    tutti__wipe(k, sizeof(k));
    tutti__wipe(ikey, sizeof(ikey));
}

void tutti__hmac_sha256_update(tt_hmac_sha256_t *h, const void *data,
                               size_t len)
{
    tutti__sha256_update(&h->inner, data, len);
}

void tutti__hmac_sha256_final(tt_hmac_sha256_t *h,
                              uint8_t out[TT_SHA256_DIGEST_LEN])
{
    uint8_t     ihash[TT_SHA256_DIGEST_LEN];
    tt_sha256_t outer;

    tutti__sha256_final(&h->inner, ihash);
    tutti__sha256_init(&outer);
    tutti__sha256_update(&outer, h->okey, sizeof(h->okey));
    tutti__sha256_update(&outer, ihash, sizeof(ihash));
    tutti__sha256_final(&outer, out);
    tutti__wipe(ihash, sizeof(ihash));
    tutti__wipe(h, sizeof(*h));
}

void tutti__hmac_sha256(const void *key, size_t keylen, const void *data,
                        size_t len, uint8_t out[TT_SHA256_DIGEST_LEN])
{
    tt_hmac_sha256_t h;

    tutti__hmac_sha256_init(&h, key, keylen);
    tutti__hmac_sha256_update(&h, data, len);
    tutti__hmac_sha256_final(&h, out);
}

int tutti__ct_equal(const void *a, const void *b, size_t len)
{
    const volatile uint8_t *pa = a;
    const volatile uint8_t *pb = b;
    uint8_t                 diff = 0;
    size_t                  i;

    /* Accumulate every difference; no early exit. */
    for (i = 0; i < len; i++) {
        diff |= (uint8_t)(pa[i] ^ pb[i]);
    }
    return diff == 0;
}

void tutti__wipe(void *p, size_t len)
{
    volatile uint8_t *v = p;

    while (len-- > 0) {
        *v++ = 0;
    }
}
