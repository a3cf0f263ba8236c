/*
 * Deterministic test data and its exact expected reductions (ref.h). The
 * value domains are chosen so that no result depends on the order in
 * which a library combines the ranks: that is what lets a check be bit
 * exact for every algorithm. Nothing here shares code with the library's
 * kernels: values are built from their mathematical definition (frexp,
 * ldexp, nearbyint) and the integer reference works in uint64_t.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ref.h"
#include "spawn.h"

/* Differing elements reported per check; the count says the rest. */
#define TT_REF_REPORTS 4
/* Elements regenerated per round of tt_ref_check_own. */
#define TT_REF_CHUNK   4096

uint64_t tt_ref_hash(uint64_t a, uint64_t b)
{
    uint64_t x = a * 0x9fb21c651e98df25ull ^ (b + 0x632be59bd9b4e019ull);

    /* two rounds of xor-shift-multiply; every input bit reaches every
     * output bit */
    x ^= x >> 32;
    x *= 0xd6e8feb86659fd93ull;
    x ^= x >> 29;
    x *= 0xd6e8feb86659fd93ull;
    return x ^ (x >> 32);
}

static uint64_t tt_ref_word(const tt_ref_stream_t *s, int rank, size_t j)
{
    return tt_ref_hash(s->seed + 0x51afd7ed558ccd00ull * (uint64_t)(rank + 1),
                       (uint64_t)j);
}

/* Explicit mantissa bits of a float type, 0 for the integer types. */
static int tt_ref_man_bits(tutti_datatype_t dt)
{
    switch (dt) {
    case TUTTI_FLOAT16:
        return 10;
    case TUTTI_BFLOAT16:
        return 7;
    case TUTTI_FLOAT32:
        return 23;
    case TUTTI_FLOAT64:
        return 52;
    default:
        return 0;
    }
}

static int tt_ref_is_float(tutti_datatype_t dt)
{
    return tt_ref_man_bits(dt) > 0;
}

/* float16 and bfloat16: accumulated in float32, stored in 16 bits. */
static int tt_ref_is_half(tutti_datatype_t dt)
{
    return tt_ref_man_bits(dt) > 0 && tutti_datatype_size(dt) == 2;
}

/* ---------------------------------------------------------------------- */
/* values                                                                 */
/* ---------------------------------------------------------------------- */

/*
 * A float element. PROD: +-1/2, +-1, +-2 (a product over TT_REF_MAX_RANKS
 * ranks, 2^-12 to 2^12, stays a normal float16). float16/bfloat16:
 * integers in [-8, 8] (sums stay below 2^7). float32/float64: multiples of
 * 1/32 in [-64, 64] (sums need 15 bits).
 */
static double tt_ref_fvalue(const tt_ref_stream_t *s, int rank, size_t j)
{
    uint64_t h = tt_ref_word(s, rank, j);

    if (s->op == TUTTI_PROD) {
        double mag = ldexp(1.0, (int)((h >> 8) % 3) - 1);
        return (h & 1u) ? -mag : mag;
    }
    if (tt_ref_is_half(s->dt)) {
        return (double)((int)((h >> 8) % 17) - 8);
    }
    return (double)((int64_t)((h >> 8) % 4097) - 2048) / 32.0;
}

static unsigned tt_ref_bits(tutti_datatype_t dt)
{
    return (unsigned)tutti_datatype_size(dt) * 8;
}

static uint64_t tt_ref_ivalue(const tt_ref_stream_t *s, int rank, size_t j)
{
    unsigned bits = tt_ref_bits(s->dt);
    uint64_t h    = tt_ref_word(s, rank, j);

    if (s->op == TUTTI_PROD) {
        h |= 1u; /* odd: a product of many does not collapse to 0 */
    }
    return bits == 64 ? h : h & ((1ull << bits) - 1);
}

static int64_t tt_ref_signed(uint64_t v, unsigned bits)
{
    if (bits == 64) {
        return (int64_t)v;
    }
    return (int64_t)(v << (64 - bits)) >> (64 - bits);
}

/* v rounded to nearest even with `bits` significant bits (normal range). */
static double tt_ref_round(double v, int bits)
{
    double m;
    int    e;

    if (v == 0.0 || !isfinite(v)) {
        return v;
    }
    m = frexp(v, &e); /* v = m * 2^e, 0.5 <= |m| < 1 */
    return ldexp(nearbyint(ldexp(m, bits)), e - bits);
}

/* Encoding of v, exactly representable and normal (or 0), in a 16-bit
 * format with man_bits mantissa bits and exponent bias `bias`. */
static uint16_t tt_ref_half_bits(double v, int man_bits, int bias)
{
    uint16_t sign = signbit(v) ? 0x8000u : 0;
    double   m;
    int      e;

    if (v == 0.0) {
        return sign;
    }
    m = frexp(fabs(v), &e); /* |v| = (2m) * 2^(e-1), 1 <= 2m < 2 */
    return (uint16_t)(sign | (uint16_t)((e - 1 + bias) << man_bits) |
                      (uint16_t)ldexp(2.0 * m - 1.0, man_bits));
}

/* Stores an exactly representable float value as element 0 of out. */
static void tt_ref_store_f(tutti_datatype_t dt, double v, void *out)
{
    uint16_t h;
    float    f;

    switch (dt) {
    case TUTTI_FLOAT64:
        memcpy(out, &v, sizeof(v));
        break;
    case TUTTI_FLOAT32:
        f = (float)v;
        memcpy(out, &f, sizeof(f));
        break;
    case TUTTI_FLOAT16:
        h = tt_ref_half_bits(v, 10, 15);
        memcpy(out, &h, sizeof(h));
        break;
    default:
        h = tt_ref_half_bits(v, 7, 127);
        memcpy(out, &h, sizeof(h));
        break;
    }
}

void tt_ref_fill(const tt_ref_stream_t *s, int rank, size_t first,
                 size_t count, void *buf)
{
    size_t         esize = tutti_datatype_size(s->dt), i;
    unsigned char *p     = buf;

    for (i = 0; i < count; i++, p += esize) {
        if (s->raw) {
            uint64_t h = tt_ref_word(s, rank, first + i);
            memcpy(p, &h, esize);
        } else if (tt_ref_is_float(s->dt)) {
            tt_ref_store_f(s->dt, tt_ref_fvalue(s, rank, first + i), p);
        } else {
            uint64_t v = tt_ref_ivalue(s, rank, first + i);
            memcpy(p, &v, esize); /* little-endian, as the test hosts */
        }
    }
}

/* ---------------------------------------------------------------------- */
/* reductions                                                             */
/* ---------------------------------------------------------------------- */

static double tt_ref_reduce_f(const tt_ref_stream_t *s, int nranks, size_t j)
{
    double acc = tt_ref_fvalue(s, 0, j);
    int    r;

    for (r = 1; r < nranks; r++) {
        double v = tt_ref_fvalue(s, r, j);

        if (s->op == TUTTI_SUM || s->op == TUTTI_AVG) {
            acc += v;
        } else if (s->op == TUTTI_PROD) {
            acc *= v;
        } else {
            /* no NaN among the values: fmax/fmin are MAX/MIN */
            acc = s->op == TUTTI_MAX ? fmax(acc, v) : fmin(acc, v);
        }
    }
    if (s->op == TUTTI_AVG) {
        /* the exact sum divided once: float32 and float64 round the
         * quotient once (double rounding through double is innocuous for
         * float32); the half types divide in float32, then narrow */
        acc /= nranks;
        if (s->dt != TUTTI_FLOAT64) {
            acc = (double)(float)acc;
        }
        if (tt_ref_is_half(s->dt)) {
            acc = tt_ref_round(acc, tt_ref_man_bits(s->dt) + 1);
        }
    }
    return acc;
}

static uint64_t tt_ref_reduce_i(const tt_ref_stream_t *s, int nranks,
                                size_t j)
{
    unsigned bits = tt_ref_bits(s->dt);
    uint64_t mask = bits == 64 ? ~0ull : (1ull << bits) - 1;
    uint64_t acc  = tt_ref_ivalue(s, 0, j);
    int      sgn  = s->dt == TUTTI_INT8 || s->dt == TUTTI_INT32 ||
                    s->dt == TUTTI_INT64;
    int      r;

    for (r = 1; r < nranks; r++) {
        uint64_t v = tt_ref_ivalue(s, r, j);
        int      less;

        less = sgn ? tt_ref_signed(v, bits) < tt_ref_signed(acc, bits)
                   : v < acc;
        switch (s->op) {
        case TUTTI_PROD:
            acc = (acc * v) & mask;
            break;
        case TUTTI_MAX:
            acc = less || v == acc ? acc : v;
            break;
        case TUTTI_MIN:
            acc = less ? v : acc;
            break;
        default: /* SUM, AVG: wrap */
            acc = (acc + v) & mask;
            break;
        }
    }
    if (s->op == TUTTI_AVG) {
        acc = sgn ? (uint64_t)(tt_ref_signed(acc, bits) / nranks)
                  : acc / (uint64_t)nranks;
        acc &= mask;
    }
    return acc;
}

void tt_ref_reduced(const tt_ref_stream_t *s, int nranks, size_t j,
                    void *out)
{
    if (nranks < 1 || nranks > TT_REF_MAX_RANKS) {
        fprintf(stderr, "tt_ref_reduced: %d ranks, the streams are exact "
                "up to %d\n", nranks, TT_REF_MAX_RANKS);
        abort();
    }
    if (tt_ref_is_float(s->dt)) {
        tt_ref_store_f(s->dt, tt_ref_reduce_f(s, nranks, j), out);
    } else {
        uint64_t v = tt_ref_reduce_i(s, nranks, j);
        memcpy(out, &v, tutti_datatype_size(s->dt));
    }
}

/* ---------------------------------------------------------------------- */
/* comparison                                                             */
/* ---------------------------------------------------------------------- */

/* Element equality: bits, except that +0 and -0 of a float type match. */
static int tt_ref_same(tutti_datatype_t dt, const void *a, const void *b)
{
    size_t   esize = tutti_datatype_size(dt);
    uint64_t x = 0, y = 0, sign;

    memcpy(&x, a, esize);
    memcpy(&y, b, esize);
    if (x == y) {
        return 1;
    }
    if (!tt_ref_is_float(dt)) {
        return 0;
    }
    sign = 1ull << (esize * 8 - 1);
    return (x & ~sign) == 0 && (y & ~sign) == 0;
}

/* Prints one element for a report: a number for float32/float64, the
 * bits otherwise. */
static void tt_ref_format(tutti_datatype_t dt, const void *p, char *buf,
                          size_t len)
{
    uint64_t v = 0;
    double   d;
    float    f;

    if (dt == TUTTI_FLOAT64) {
        memcpy(&d, p, sizeof(d));
        snprintf(buf, len, "%.17g", d);
    } else if (dt == TUTTI_FLOAT32) {
        memcpy(&f, p, sizeof(f));
        snprintf(buf, len, "%.9g", (double)f);
    } else {
        memcpy(&v, p, tutti_datatype_size(dt));
        snprintf(buf, len, "0x%" PRIx64, v);
    }
}

static void tt_ref_report(tutti_datatype_t dt, const char *what, size_t i,
                          const void *got, const void *want)
{
    char g[32], w[32];

    tt_ref_format(dt, got, g, sizeof(g));
    tt_ref_format(dt, want, w, sizeof(w));
    tt_test_fail(__FILE__, __LINE__, "%s: element %zu is %s, expected %s",
                 what, i, g, w);
}

static void tt_ref_report_total(int bad, size_t count, const char *what)
{
    if (bad > TT_REF_REPORTS) {
        tt_test_fail(__FILE__, __LINE__, "%s: %d of %zu elements differ",
                     what, bad, count);
    }
}

int tt_ref_check_own(const tt_ref_stream_t *s, int rank, size_t first,
                     size_t count, const void *buf, const char *what)
{
    size_t               esize = tutti_datatype_size(s->dt), done, i;
    const unsigned char *got   = buf;
    unsigned char       *want  = malloc(TT_REF_CHUNK * esize);
    int                  bad   = 0;

    if (want == NULL) {
        tt_test_fail(__FILE__, __LINE__, "%s: out of memory", what);
        return -1;
    }
    for (done = 0; done < count; done += TT_REF_CHUNK) {
        size_t n = count - done < TT_REF_CHUNK ? count - done : TT_REF_CHUNK;

        tt_ref_fill(s, rank, first + done, n, want);
        if (memcmp(got + done * esize, want, n * esize) == 0) {
            continue;
        }
        for (i = 0; i < n; i++) {
            const void *g = got + (done + i) * esize, *w = want + i * esize;

            if (memcmp(g, w, esize) != 0 && bad++ < TT_REF_REPORTS) {
                tt_ref_report(s->dt, what, done + i, g, w);
            }
        }
    }
    free(want);
    tt_ref_report_total(bad, count, what);
    return bad;
}

int tt_ref_check_reduced(const tt_ref_stream_t *s, int nranks, size_t first,
                         size_t count, const void *buf, const char *what)
{
    size_t               esize = tutti_datatype_size(s->dt), i;
    const unsigned char *got   = buf;
    unsigned char        want[8];
    int                  bad = 0;

    for (i = 0; i < count; i++) {
        tt_ref_reduced(s, nranks, first + i, want);
        if (!tt_ref_same(s->dt, got + i * esize, want) &&
            bad++ < TT_REF_REPORTS) {
            tt_ref_report(s->dt, what, i, got + i * esize, want);
        }
    }
    tt_ref_report_total(bad, count, what);
    return bad;
}

int tt_ref_check_bytes(const void *buf, size_t bytes, unsigned char byte,
                       const char *what)
{
    const unsigned char *p = buf;
    size_t               i;

    for (i = 0; i < bytes; i++) {
        if (p[i] != byte) {
            return tt_test_fail(__FILE__, __LINE__, "%s: byte %zu of %zu "
                                "was written (0x%02x, was 0x%02x)", what, i,
                                bytes, p[i], byte);
        }
    }
    return 0;
}
