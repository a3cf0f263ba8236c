/*
 * Unit tests of the datatype helpers in src/dtype.c: names and sizes, and
 * the float16/bfloat16 <-> float32 conversions (scalar and block), checked
 * exhaustively or on every rounding boundary against the reference in
 * reduce_ref.c.
 */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reduce.h"
#include "reduce_impl.h"
#include "reduce_ref.h"

/* ---- names and sizes -------------------------------------------------- */

Test(dtype, sizes_and_names)
{
    static const size_t sizes[TUTTI_NUM_DATATYPES] = {1, 1, 4, 4, 8,
                                                      8, 2, 4, 8, 2};
    static const char *const names[TUTTI_NUM_DATATYPES] = {
        "int8",    "uint8",   "int32",   "uint32",  "int64",
        "uint64",  "float16", "float32", "float64", "bfloat16"};
    static const char *const ops[TUTTI_NUM_REDOPS] = {"sum", "prod", "max",
                                                      "min", "avg"};

    for (int d = 0; d < TUTTI_NUM_DATATYPES; d++) {
        cr_assert_eq(tutti_datatype_size((tutti_datatype_t)d), sizes[d]);
        cr_assert_str_eq(tutti_datatype_name((tutti_datatype_t)d), names[d]);
    }
    for (int o = 0; o < TUTTI_NUM_REDOPS; o++) {
        cr_assert_str_eq(tutti_redop_name((tutti_redop_t)o), ops[o]);
    }
    cr_assert_eq(tutti_datatype_size(TUTTI_NUM_DATATYPES), 0);
    cr_assert_eq(tutti_datatype_size((tutti_datatype_t)-1), 0);
    cr_assert_null(tutti_datatype_name(TUTTI_NUM_DATATYPES));
    cr_assert_null(tutti_datatype_name((tutti_datatype_t)-1));
    cr_assert_null(tutti_redop_name(TUTTI_NUM_REDOPS));
    cr_assert_null(tutti_redop_name((tutti_redop_t)-1));
}

typedef struct conv_api {
    const ref_fmt_t *fmt;
    float (*widen)(uint16_t);
    uint16_t (*narrow)(float);
    void (*widen_n)(float *, const uint16_t *, size_t);
    void (*narrow_n)(uint16_t *, const float *, size_t);
    uint32_t quiet; /* quiet bit of the narrow format */
} conv_api_t;

static const conv_api_t conv_half = {
    &ref_half, tutti__half_to_float, tutti__float_to_half,
    tutti__half_to_float_n, tutti__float_to_half_n, 0x0200};
static const conv_api_t conv_bf16 = {
    &ref_bf16, tutti__bf16_to_float, tutti__float_to_bf16,
    tutti__bf16_to_float_n, tutti__float_to_bf16_n, 0x0040};

/*
 * All 65536 patterns: widening gives the reference value (a quiet NaN of
 * the same sign for NaN), and narrowing back restores the pattern exactly,
 * a NaN's with its quiet bit set. Scalar and block functions alike.
 */
static void check_round_trip(const conv_api_t *api)
{
    static float    wide[65536];
    static uint16_t back[65536];
    static uint16_t all[65536];
    const ref_fmt_t *fmt = api->fmt;

    ref_init();
    for (unsigned p = 0; p < 65536; p++) {
        all[p] = (uint16_t)p;
    }
    api->widen_n(wide, all, 65536);
    api->narrow_n(back, wide, 65536);
    for (unsigned p = 0; p < 65536; p++) {
        uint16_t h   = (uint16_t)p;
        float    f   = api->widen(h);
        double   ref = ref_decode(fmt, h);

        cr_assert_eq(f32_bits(f), f32_bits(wide[p]), "%s %#06x block",
                     fmt->name, p);
        if (ref_is_nan(fmt, h)) {
            cr_assert(isnan(f), "%s %#06x", fmt->name, p);
            cr_assert_eq(!!signbit(f), !!(h & 0x8000));
            cr_assert(f32_bits(f) & 0x00400000u, "%s %#06x not quiet",
                      fmt->name, p);
            cr_assert_eq(api->narrow(f), h | api->quiet, "%s %#06x",
                         fmt->name, p);
        } else {
            cr_assert_eq((double)f, ref, "%s %#06x: %a != %a", fmt->name, p,
                         (double)f, ref);
            cr_assert_eq(!!signbit(f), !!(h & 0x8000), "%s %#06x sign",
                         fmt->name, p);
            cr_assert_eq(api->narrow(f), h, "%s %#06x round trip",
                         fmt->name, p);
        }
        cr_assert_eq(back[p], api->narrow(f), "%s %#06x block", fmt->name,
                     p);
    }
}

Test(convert, half_round_trip_exhaustive)
{
    check_round_trip(&conv_half);
}

Test(convert, bf16_round_trip_exhaustive)
{
    check_round_trip(&conv_bf16);
}

/* Narrow one float both ways and compare (NaN: by class and sign). */
static int narrow_ok(const conv_api_t *api, float f, uint16_t *got_p,
                     uint16_t *want_p)
{
    const ref_fmt_t *fmt  = api->fmt;
    uint16_t         got  = api->narrow(f);
    uint16_t         want = ref_encode(fmt, (double)f);

    *got_p  = got;
    *want_p = want;
    if (isnan(f)) {
        return ref_is_nan(fmt, got) && (got & api->quiet) &&
               !!(got & 0x8000) == !!signbit(f);
    }
    return got == want;
}

/*
 * Rounding boundaries: for every pair of adjacent finite values of the
 * narrow format (and between the largest and 2^(emax+1)), the float32
 * midpoint and its float32 neighbours on either side, both signs. Ties
 * must go to the even pattern, one float32 ulp either side must not tie.
 */
static void check_boundaries(const conv_api_t *api)
{
    const ref_fmt_t *fmt   = api->fmt;
    size_t           fails = 0;

    ref_init();
    for (unsigned p = 0; p < fmt->inf; p++) {
        double lo  = fmt->values[p];
        double hi  = p + 1 < fmt->inf ? fmt->values[p + 1] :
                                        ldexp(1.0, fmt->bias + 1);
        float  mid = (float)((lo + hi) / 2);
        float  probes[5];

        cr_assert_eq((double)mid, (lo + hi) / 2, "midpoint not a float");
        probes[0] = mid;
        probes[1] = nextafterf(mid, 0.0f);
        probes[2] = nextafterf(mid, INFINITY);
        probes[3] = (float)lo;
        probes[4] = nextafterf((float)lo, INFINITY);
        for (int k = 0; k < 10; k++) {
            float    f = k < 5 ? probes[k] : -probes[k - 5];
            uint16_t got;
            uint16_t want;

            if (!narrow_ok(api, f, &got, &want) && fails++ < 10) {
                cr_log_error("%s: %a -> %#06x, want %#06x", fmt->name,
                             (double)f, got, want);
            }
        }
    }
    cr_assert_eq(fails, 0, "%zu boundary cases wrong", fails);
}

Test(convert, half_rounding_boundaries)
{
    check_boundaries(&conv_half);
}

Test(convert, bf16_rounding_boundaries)
{
    check_boundaries(&conv_bf16);
}

/*
 * Float32 patterns spread over the whole range (a stride through the 2^32
 * patterns, prime so that every mantissa bit varies), plus the specials.
 */
static void check_float_sweep(const conv_api_t *api)
{
    static const uint32_t specials[] = {
        0x00000000, 0x80000000, 0x00000001, 0x807fffff, 0x7f7fffff,
        0x7f800000, 0xff800000, 0x7fc00000, 0xffc00000, 0x7f800001,
        0x7fbfffff, 0xff800001, 0x7f802000, 0x7f801fff, 0x477fefff,
        0x477ff000, 0x477ff001, 0x33000000, 0x33000001, 0x337fffff,
        0x38800000, 0x387fffff, 0x7f7f8000, 0x7f7f7fff, 0x7f7fffff};
    const size_t n      = 1u << 20;
    float       *src    = malloc(n * sizeof(float));
    uint16_t    *blk    = malloc(n * sizeof(uint16_t));
    size_t       fails  = 0;
    uint32_t     stride = 251;

    cr_assert_not_null(src);
    cr_assert_not_null(blk);
    ref_init();
    for (uint64_t base = 0; base < (1ull << 32); base += (uint64_t)n *
                                                       stride) {
        size_t len = 0;

        for (uint64_t u = base; u < base + (uint64_t)n * stride &&
                                u < (1ull << 32);
             u += stride) {
            src[len++] = f32_of((uint32_t)u);
        }
        if (base == 0) {
            for (size_t k = 0; k < sizeof(specials) / sizeof(specials[0]);
                 k++) {
                src[k] = f32_of(specials[k]);
            }
        }
        api->narrow_n(blk, src, len);
        for (size_t i = 0; i < len; i++) {
            uint16_t got;
            uint16_t want;

            if ((!narrow_ok(api, src[i], &got, &want) || blk[i] != got) &&
                fails++ < 10) {
                cr_log_error("%s: %#010x -> %#06x (block %#06x), want %#06x",
                             api->fmt->name, f32_bits(src[i]), got, blk[i],
                             want);
            }
        }
    }
    free(src);
    free(blk);
    cr_assert_eq(fails, 0, "%zu conversions wrong", fails);
}

Test(convert, half_float_sweep, .timeout = 60)
{
    check_float_sweep(&conv_half);
}

Test(convert, bf16_float_sweep, .timeout = 60)
{
    check_float_sweep(&conv_bf16);
}

Test(convert, known_values)
{
    /* float16 */
    cr_assert_eq(tutti__float_to_half(1.0f), 0x3c00);
    cr_assert_eq(tutti__float_to_half(-2.0f), 0xc000);
    cr_assert_eq(tutti__float_to_half(65504.0f), 0x7bff);
    cr_assert_eq(tutti__float_to_half(65519.99f), 0x7bff);
    cr_assert_eq(tutti__float_to_half(65520.0f), 0x7c00);
    cr_assert_eq(tutti__float_to_half(1e10f), 0x7c00);
    cr_assert_eq(tutti__float_to_half(-INFINITY), 0xfc00);
    cr_assert_eq(tutti__float_to_half(0x1p-24f), 0x0001);
    cr_assert_eq(tutti__float_to_half(0x1p-25f), 0x0000); /* tie: even */
    cr_assert_eq(tutti__float_to_half(0x1.8p-24f), 0x0002); /* tie: even */
    cr_assert_eq(tutti__float_to_half(-0x1.000002p-25f), 0x8001);
    cr_assert_eq(tutti__float_to_half(0x1.ff8p-15f), 0x03ff);
    /* a tie between the largest subnormal and the smallest normal */
    cr_assert_eq(tutti__float_to_half(0x1.ffcp-15f), 0x0400);
    cr_assert_eq(tutti__float_to_half(nextafterf(0x1.ffcp-15f, 0)), 0x03ff);
    cr_assert_eq(tutti__float_to_half(1.0f + 0x1p-11f), 0x3c00); /* tie */
    cr_assert_eq(tutti__float_to_half(1.0f + 0x1.8p-10f), 0x3c02); /* tie */
    cr_assert_eq(tutti__float_to_half(f32_of(0x00000001)), 0x0000);
    cr_assert_eq(tutti__float_to_half(f32_of(0x80000001)), 0x8000);
    cr_assert_eq(tutti__half_to_float(0x0001), 0x1p-24f);
    cr_assert_eq(tutti__half_to_float(0x03ff), 0x1.ff8p-15f);
    cr_assert_eq(tutti__half_to_float(0x7bff), 65504.0f);
    cr_assert(isinf(tutti__half_to_float(0xfc00)));
    /* NaN: quiet, payload's top bits kept; a low-only payload stays NaN */
    cr_assert_eq(tutti__float_to_half(f32_of(0x7f800001)), 0x7e00);
    cr_assert_eq(tutti__float_to_half(f32_of(0xffa00000)), 0xff00);
    cr_assert_eq(f32_bits(tutti__half_to_float(0x7c01)), 0x7fc02000u);
    /* bfloat16 */
    cr_assert_eq(tutti__float_to_bf16(1.0f), 0x3f80);
    cr_assert_eq(tutti__float_to_bf16(f32_of(0x3f808000)), 0x3f80); /* tie */
    cr_assert_eq(tutti__float_to_bf16(f32_of(0x3f818000)), 0x3f82); /* tie */
    cr_assert_eq(tutti__float_to_bf16(f32_of(0x3f808001)), 0x3f81);
    cr_assert_eq(tutti__float_to_bf16(f32_of(0x7f7fffff)), 0x7f80);
    cr_assert_eq(tutti__float_to_bf16(f32_of(0x7f7f7fff)), 0x7f7f);
    cr_assert_eq(tutti__float_to_bf16(f32_of(0x00008000)), 0x0000);
    cr_assert_eq(tutti__float_to_bf16(f32_of(0x00018000)), 0x0002);
    cr_assert_eq(tutti__float_to_bf16(f32_of(0x7f800001)), 0x7fc0);
    cr_assert_eq(tutti__float_to_bf16(f32_of(0xffffffff)), 0xffff);
    cr_assert_eq(f32_bits(tutti__bf16_to_float(0x7f81)), 0x7fc10000u);
}
