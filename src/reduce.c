/*
 * The typed reduction kernels behind tutti__reduce_fn() (contracts in
 * reduce.h; the AVG division lives in dtype.c).
 *
 * Layout: per element type, an inline "op" function that combines two
 * values for a given operator, and an inline loop over it. The kernels are
 * thin wrappers that pass a constant operator, so after inlining each one
 * is a plain element-wise loop that gcc -O3 vectorises. The loops are not
 * restrict-qualified because dst may equal a or b; each iteration reads
 * a[i] and b[i] before it writes dst[i], and gcc's runtime alias check lets
 * exact aliasing take the vector path (only a partial overlap, which the
 * contract excludes, falls back to scalar code).
 *
 * Two sets of kernels: the portable ones (baseline ISA: SSE2 on x86-64)
 * and, on x86-64, the same loops compiled for AVX2 plus F16C conversions.
 * tutti__reduce_fn() picks the second set when the CPU and OS support it;
 * tutti__reduce_fn_portable() always returns the first, so that tests check
 * both on any machine.
 *
 * Integers: SUM and PROD wrap modulo 2^n. They are computed in the unsigned
 * type, which is free of undefined behaviour and gives the same bits for
 * the signed type, so a signed type's SUM/PROD is its unsigned kernel.
 *
 * Floating point (and float16/bfloat16 through float32): NaN propagates
 * through every op, as a quiet NaN. MAX and MIN order -0.0 below +0.0, as
 * IEEE 754-2019's maximum/minimum do: max(-0, +0) = +0 and
 * min(-0, +0) = -0 whatever the operand order, so the result never depends
 * on which rank's value came first.
 *
 * float16 and bfloat16 are widened to float32, combined and rounded back
 * to nearest even. Since float32 carries more than 2p + 2 bits for p = 11
 * (float16) and p = 8 (bfloat16), that second rounding gives the correctly
 * rounded narrow result of + and * (no double-rounding error). The portable
 * kernels go through blocks of TT_REDUCE_BLOCK elements (widen a block of a
 * and b into float32 arrays on the stack, combine, narrow into dst), so
 * that each of the loops vectorises on its own; the x86 ones make one pass
 * with 8-wide conversions.
 */
#include <stddef.h>
#include <stdint.h>

#include "internal.h"
#include "reduce.h"
#include "reduce_impl.h"

#if TT_REDUCE_X86
#include <cpuid.h>
#include <immintrin.h>
#include <stdatomic.h>
#endif

/* Elements per float16/bfloat16 block: 2 x 1 KiB of float32 on the stack. */
#define TT_REDUCE_BLOCK 256

#define TT_F32_QUIET 0x00400000u
#define TT_F64_QUIET 0x0008000000000000ull

/*
 * Floating-point max/min. x > y ? x : y is exactly what x86's maxps
 * computes (y when the two are equal or unordered), so gcc emits one
 * instruction for it, and likewise with the operands swapped. For ordered
 * unequal values both give the larger; for equal values they give y and x,
 * which differ at most in the sign of zero, and the bitwise AND (max) or
 * OR (min) of the two picks +0 or -0 respectively. A NaN operand wins,
 * quieted by setting its quiet bit: x's NaN if both are NaN, as x86
 * arithmetic does. Only selects and bit operations: a float operation
 * under a condition (x + y is the obvious way to propagate NaN) may trap,
 * so gcc would neither if-convert nor vectorise the loop.
 */
static inline float tt_fmax32(float x, float y)
{
    float m1 = x > y ? x : y;
    float m2 = y > x ? y : x;
    float r  = tt_f32_from_bits(tt_f32_bits(m1) & tt_f32_bits(m2));

    r = y != y ? tt_f32_from_bits(tt_f32_bits(y) | TT_F32_QUIET) : r;
    r = x != x ? tt_f32_from_bits(tt_f32_bits(x) | TT_F32_QUIET) : r;
    return r;
}

static inline float tt_fmin32(float x, float y)
{
    float m1 = x < y ? x : y;
    float m2 = y < x ? y : x;
    float r  = tt_f32_from_bits(tt_f32_bits(m1) | tt_f32_bits(m2));

    r = y != y ? tt_f32_from_bits(tt_f32_bits(y) | TT_F32_QUIET) : r;
    r = x != x ? tt_f32_from_bits(tt_f32_bits(x) | TT_F32_QUIET) : r;
    return r;
}

static inline double tt_fmax64(double x, double y)
{
    double m1 = x > y ? x : y;
    double m2 = y > x ? y : x;
    double r  = tt_f64_from_bits(tt_f64_bits(m1) & tt_f64_bits(m2));

    r = y != y ? tt_f64_from_bits(tt_f64_bits(y) | TT_F64_QUIET) : r;
    r = x != x ? tt_f64_from_bits(tt_f64_bits(x) | TT_F64_QUIET) : r;
    return r;
}

static inline double tt_fmin64(double x, double y)
{
    double m1 = x < y ? x : y;
    double m2 = y < x ? y : x;
    double r  = tt_f64_from_bits(tt_f64_bits(m1) | tt_f64_bits(m2));

    r = y != y ? tt_f64_from_bits(tt_f64_bits(y) | TT_F64_QUIET) : r;
    r = x != x ? tt_f64_from_bits(tt_f64_bits(x) | TT_F64_QUIET) : r;
    return r;
}

/*
 * Per-type combine functions. `op` is always a constant at the call site,
 * so the switch folds away. AVG never reaches them (it is SUM here).
 */
static inline uint8_t tt_op_u8(uint8_t x, uint8_t y, tutti_redop_t op)
{
    switch (op) {
    case TUTTI_SUM:
        return (uint8_t)(x + y);
    case TUTTI_PROD:
        return (uint8_t)(x * y);
    case TUTTI_MAX:
        return x > y ? x : y;
    default:
        return x < y ? x : y;
    }
}

static inline uint32_t tt_op_u32(uint32_t x, uint32_t y, tutti_redop_t op)
{
    switch (op) {
    case TUTTI_SUM:
        return x + y;
    case TUTTI_PROD:
        return x * y;
    case TUTTI_MAX:
        return x > y ? x : y;
    default:
        return x < y ? x : y;
    }
}

static inline uint64_t tt_op_u64(uint64_t x, uint64_t y, tutti_redop_t op)
{
    switch (op) {
    case TUTTI_SUM:
        return x + y;
    case TUTTI_PROD:
        return x * y;
    case TUTTI_MAX:
        return x > y ? x : y;
    default:
        return x < y ? x : y;
    }
}

static inline float tt_op_f32(float x, float y, tutti_redop_t op)
{
    switch (op) {
    case TUTTI_SUM:
        return x + y;
    case TUTTI_PROD:
        return x * y;
    case TUTTI_MAX:
        return tt_fmax32(x, y);
    default:
        return tt_fmin32(x, y);
    }
}

static inline double tt_op_f64(double x, double y, tutti_redop_t op)
{
    switch (op) {
    case TUTTI_SUM:
        return x + y;
    case TUTTI_PROD:
        return x * y;
    case TUTTI_MAX:
        return tt_fmax64(x, y);
    default:
        return tt_fmin64(x, y);
    }
}

/* Signed types only need MAX and MIN here (see the top comment). */
static inline int8_t tt_op_i8(int8_t x, int8_t y, tutti_redop_t op)
{
    return op == TUTTI_MAX ? (x > y ? x : y) : (x < y ? x : y);
}

static inline int32_t tt_op_i32(int32_t x, int32_t y, tutti_redop_t op)
{
    return op == TUTTI_MAX ? (x > y ? x : y) : (x < y ? x : y);
}

static inline int64_t tt_op_i64(int64_t x, int64_t y, tutti_redop_t op)
{
    return op == TUTTI_MAX ? (x > y ? x : y) : (x < y ? x : y);
}

/* The element-wise loops; correct when dst == a or dst == b. */
static inline void tt_loop_u8(uint8_t *dst, const uint8_t *a,
                              const uint8_t *b, size_t n, tutti_redop_t op)
{
    for (size_t i = 0; i < n; i++) {
        dst[i] = tt_op_u8(a[i], b[i], op);
    }
}

static inline void tt_loop_i8(int8_t *dst, const int8_t *a, const int8_t *b,
                              size_t n, tutti_redop_t op)
{
    for (size_t i = 0; i < n; i++) {
        dst[i] = tt_op_i8(a[i], b[i], op);
    }
}

static inline void tt_loop_u32(uint32_t *dst, const uint32_t *a,
                               const uint32_t *b, size_t n, tutti_redop_t op)
{
    for (size_t i = 0; i < n; i++) {
        dst[i] = tt_op_u32(a[i], b[i], op);
    }
}

static inline void tt_loop_i32(int32_t *dst, const int32_t *a,
                               const int32_t *b, size_t n, tutti_redop_t op)
{
    for (size_t i = 0; i < n; i++) {
        dst[i] = tt_op_i32(a[i], b[i], op);
    }
}

static inline void tt_loop_u64(uint64_t *dst, const uint64_t *a,
                               const uint64_t *b, size_t n, tutti_redop_t op)
{
    for (size_t i = 0; i < n; i++) {
        dst[i] = tt_op_u64(a[i], b[i], op);
    }
}

static inline void tt_loop_i64(int64_t *dst, const int64_t *a,
                               const int64_t *b, size_t n, tutti_redop_t op)
{
    for (size_t i = 0; i < n; i++) {
        dst[i] = tt_op_i64(a[i], b[i], op);
    }
}

static inline void tt_loop_f32(float *dst, const float *a, const float *b,
                               size_t n, tutti_redop_t op)
{
    for (size_t i = 0; i < n; i++) {
        dst[i] = tt_op_f32(a[i], b[i], op);
    }
}

static inline void tt_loop_f64(double *dst, const double *a, const double *b,
                               size_t n, tutti_redop_t op)
{
    for (size_t i = 0; i < n; i++) {
        dst[i] = tt_op_f64(a[i], b[i], op);
    }
}

/*
 * float16 or bfloat16, block by block, through the given block conversions
 * (always constants, so the calls are direct). The whole block of a and b
 * is read before any of dst is written, which keeps dst == a and dst == b
 * correct. Forced inline so that the float32 loop is compiled for the
 * caller's target (the AVX2 kernels below).
 */
static inline __attribute__((always_inline)) void
tt_loop_narrow(uint16_t *dst, const uint16_t *a, const uint16_t *b, size_t n,
               tutti_redop_t op, tt_widen_fn widen, tt_narrow_fn narrow)
{
    float fa[TT_REDUCE_BLOCK];
    float fb[TT_REDUCE_BLOCK];

    for (size_t off = 0; off < n; off += TT_REDUCE_BLOCK) {
        size_t len = TT_MIN(n - off, (size_t)TT_REDUCE_BLOCK);

        widen(fa, a + off, len);
        widen(fb, b + off, len);
        tt_loop_f32(fa, fa, fb, len, op);
        narrow(dst + off, fa, len);
    }
}

/*
 * The kernels, one per (type, op) that differs in its bits. Signed SUM and
 * PROD use the unsigned kernels; AVG uses SUM.
 */
static void tt_sum_u8(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u8(dst, a, b, n, TUTTI_SUM);
}

static void tt_prod_u8(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u8(dst, a, b, n, TUTTI_PROD);
}

static void tt_max_u8(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u8(dst, a, b, n, TUTTI_MAX);
}

static void tt_min_u8(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u8(dst, a, b, n, TUTTI_MIN);
}

static void tt_max_i8(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_i8(dst, a, b, n, TUTTI_MAX);
}

static void tt_min_i8(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_i8(dst, a, b, n, TUTTI_MIN);
}

static void tt_sum_u32(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u32(dst, a, b, n, TUTTI_SUM);
}

static void tt_prod_u32(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u32(dst, a, b, n, TUTTI_PROD);
}

static void tt_max_u32(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u32(dst, a, b, n, TUTTI_MAX);
}

static void tt_min_u32(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u32(dst, a, b, n, TUTTI_MIN);
}

static void tt_max_i32(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_i32(dst, a, b, n, TUTTI_MAX);
}

static void tt_min_i32(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_i32(dst, a, b, n, TUTTI_MIN);
}

static void tt_sum_u64(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u64(dst, a, b, n, TUTTI_SUM);
}

static void tt_prod_u64(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u64(dst, a, b, n, TUTTI_PROD);
}

static void tt_max_u64(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u64(dst, a, b, n, TUTTI_MAX);
}

static void tt_min_u64(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u64(dst, a, b, n, TUTTI_MIN);
}

static void tt_max_i64(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_i64(dst, a, b, n, TUTTI_MAX);
}

static void tt_min_i64(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_i64(dst, a, b, n, TUTTI_MIN);
}

static void tt_sum_f32(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_f32(dst, a, b, n, TUTTI_SUM);
}

static void tt_prod_f32(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_f32(dst, a, b, n, TUTTI_PROD);
}

static void tt_max_f32(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_f32(dst, a, b, n, TUTTI_MAX);
}

static void tt_min_f32(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_f32(dst, a, b, n, TUTTI_MIN);
}

static void tt_sum_f64(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_f64(dst, a, b, n, TUTTI_SUM);
}

static void tt_prod_f64(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_f64(dst, a, b, n, TUTTI_PROD);
}

static void tt_max_f64(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_f64(dst, a, b, n, TUTTI_MAX);
}

static void tt_min_f64(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_f64(dst, a, b, n, TUTTI_MIN);
}

static void tt_sum_f16(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_narrow(dst, a, b, n, TUTTI_SUM, tutti__half_to_float_n,
                   tutti__float_to_half_n);
}

static void tt_prod_f16(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_narrow(dst, a, b, n, TUTTI_PROD, tutti__half_to_float_n,
                   tutti__float_to_half_n);
}

static void tt_max_f16(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_narrow(dst, a, b, n, TUTTI_MAX, tutti__half_to_float_n,
                   tutti__float_to_half_n);
}

static void tt_min_f16(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_narrow(dst, a, b, n, TUTTI_MIN, tutti__half_to_float_n,
                   tutti__float_to_half_n);
}

static void tt_sum_bf16(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_narrow(dst, a, b, n, TUTTI_SUM, tutti__bf16_to_float_n,
                   tutti__float_to_bf16_n);
}

static void tt_prod_bf16(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_narrow(dst, a, b, n, TUTTI_PROD, tutti__bf16_to_float_n,
                   tutti__float_to_bf16_n);
}

static void tt_max_bf16(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_narrow(dst, a, b, n, TUTTI_MAX, tutti__bf16_to_float_n,
                   tutti__float_to_bf16_n);
}

static void tt_min_bf16(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_narrow(dst, a, b, n, TUTTI_MIN, tutti__bf16_to_float_n,
                   tutti__float_to_bf16_n);
}

/*
 * The portable kernels, [datatype][op] for every op but AVG, which the
 * lookups map to SUM.
 */
static const tt_reduce_fn tt_reduce_portable[TUTTI_NUM_DATATYPES][TUTTI_AVG] = {
    [TUTTI_INT8] = {
        [TUTTI_SUM]  = tt_sum_u8,
        [TUTTI_PROD] = tt_prod_u8,
        [TUTTI_MAX]  = tt_max_i8,
        [TUTTI_MIN]  = tt_min_i8,
    },
    [TUTTI_UINT8] = {
        [TUTTI_SUM]  = tt_sum_u8,
        [TUTTI_PROD] = tt_prod_u8,
        [TUTTI_MAX]  = tt_max_u8,
        [TUTTI_MIN]  = tt_min_u8,
    },
    [TUTTI_INT32] = {
        [TUTTI_SUM]  = tt_sum_u32,
        [TUTTI_PROD] = tt_prod_u32,
        [TUTTI_MAX]  = tt_max_i32,
        [TUTTI_MIN]  = tt_min_i32,
    },
    [TUTTI_UINT32] = {
        [TUTTI_SUM]  = tt_sum_u32,
        [TUTTI_PROD] = tt_prod_u32,
        [TUTTI_MAX]  = tt_max_u32,
        [TUTTI_MIN]  = tt_min_u32,
    },
    [TUTTI_INT64] = {
        [TUTTI_SUM]  = tt_sum_u64,
        [TUTTI_PROD] = tt_prod_u64,
        [TUTTI_MAX]  = tt_max_i64,
        [TUTTI_MIN]  = tt_min_i64,
    },
    [TUTTI_UINT64] = {
        [TUTTI_SUM]  = tt_sum_u64,
        [TUTTI_PROD] = tt_prod_u64,
        [TUTTI_MAX]  = tt_max_u64,
        [TUTTI_MIN]  = tt_min_u64,
    },
    [TUTTI_FLOAT16] = {
        [TUTTI_SUM]  = tt_sum_f16,
        [TUTTI_PROD] = tt_prod_f16,
        [TUTTI_MAX]  = tt_max_f16,
        [TUTTI_MIN]  = tt_min_f16,
    },
    [TUTTI_FLOAT32] = {
        [TUTTI_SUM]  = tt_sum_f32,
        [TUTTI_PROD] = tt_prod_f32,
        [TUTTI_MAX]  = tt_max_f32,
        [TUTTI_MIN]  = tt_min_f32,
    },
    [TUTTI_FLOAT64] = {
        [TUTTI_SUM]  = tt_sum_f64,
        [TUTTI_PROD] = tt_prod_f64,
        [TUTTI_MAX]  = tt_max_f64,
        [TUTTI_MIN]  = tt_min_f64,
    },
    [TUTTI_BFLOAT16] = {
        [TUTTI_SUM]  = tt_sum_bf16,
        [TUTTI_PROD] = tt_prod_bf16,
        [TUTTI_MAX]  = tt_max_bf16,
        [TUTTI_MIN]  = tt_min_bf16,
    },
};

#if TT_REDUCE_X86
/*
 * Every kernel again, compiled for AVX2 (and F16C) by the target
 * attribute, for CPUs that have them: the same inline loops, twice as wide,
 * with single-instruction selects and 64-bit compares that SSE2 lacks.
 * float16 and bfloat16 get their own one-pass loop below. Measured with
 * tests/unit/bench_reduce.c on buffers in L1: float32/float64/int8 sum 2-3x
 * faster than SSE2, float32 max 2.7x, float16 sum 30x, bfloat16 sum 5x;
 * from DRAM both sets run at memory speed except float16/bfloat16, which
 * the portable code cannot keep up with.
 */
#define TT_AVX2 __attribute__((target("avx2,f16c")))

/*
 * 8 float16 or bfloat16 elements <-> a float32 vector, for the x86
 * kernels. float16 uses the F16C instructions: vcvtph2ps, and vcvtps2ph
 * with round-to-nearest-even as an immediate, so MXCSR's rounding mode
 * does not matter; both quiet a NaN keeping its leading payload bits and
 * neither honours DAZ/FTZ, exactly as the portable conversions in dtype.c.
 * bfloat16 has no such instruction before AVX-512 BF16 (whose conversions
 * flush subnormals), so it is the portable bit arithmetic in AVX2 integer
 * operations, minus the NaN cases: widening does not quiet a NaN because
 * every float32 op applied next does (SUM and PROD in hardware, MAX and
 * MIN explicitly), and narrowing needs no NaN case (see there). The
 * kernels' results are the portable ones bit for bit; the tests compare
 * both on every pattern.
 */
static inline __attribute__((always_inline, target("avx2,f16c"))) __m256
tt_widen8_x86(const uint16_t *src, int bf16)
{
    __m128i h = _mm_loadu_si128((const __m128i *)(const void *)src);

    if (!bf16) {
        return _mm256_cvtph_ps(h);
    }
    return _mm256_castsi256_ps(
        _mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
}

static inline __attribute__((always_inline, target("avx2,f16c"))) void
tt_narrow8_x86(uint16_t *dst, __m256 f, int bf16)
{
    __m256i x = _mm256_castps_si256(f);
    __m256i lsb;
    __m256i r;
    __m128i h;

    if (!bf16) {
        h = _mm256_cvtps_ph(f, _MM_FROUND_TO_NEAREST_INT);
    } else {
        /*
         * r = (x + 0x7fff + lsb) >> 16, with no NaN case: a NaN here is a
         * widened bfloat16 quieted by the op, or the default NaN, so its
         * low 16 bits are zero and the add cannot carry out of them.
         */
        lsb = _mm256_and_si256(_mm256_srli_epi32(x, 16), _mm256_set1_epi32(1));
        r   = _mm256_add_epi32(x, _mm256_set1_epi32(0x7fff));
        r   = _mm256_srli_epi32(_mm256_add_epi32(r, lsb), 16);
        /* every lane is <= 0xffff, so the saturating pack just narrows */
        h = _mm_packus_epi32(_mm256_castsi256_si128(r),
                             _mm256_extracti128_si256(r, 1));
    }
    _mm_storeu_si128((__m128i *)(void *)dst, h);
}

/*
 * tt_op_f32 on 8 lanes, the same rules in AVX intrinsics (the loop below
 * cannot rely on gcc vectorising 8 scalar calls: once it unrolls them, the
 * NaN selects become branches). vmaxps/vminps return the second operand
 * when the two are equal or unordered, as x > y ? x : y does in tt_fmax32.
 */
static inline __attribute__((always_inline, target("avx2,f16c"))) __m256
tt_op8_x86(__m256 x, __m256 y, tutti_redop_t op)
{
    __m256 quiet = _mm256_castsi256_ps(_mm256_set1_epi32((int)TT_F32_QUIET));
    __m256 r;

    switch (op) {
    case TUTTI_SUM:
        return _mm256_add_ps(x, y);
    case TUTTI_PROD:
        return _mm256_mul_ps(x, y);
    case TUTTI_MAX:
        r = _mm256_and_ps(_mm256_max_ps(x, y), _mm256_max_ps(y, x));
        break;
    default:
        r = _mm256_or_ps(_mm256_min_ps(x, y), _mm256_min_ps(y, x));
        break;
    }
    r = _mm256_blendv_ps(r, _mm256_or_ps(y, quiet),
                         _mm256_cmp_ps(y, y, _CMP_UNORD_Q));
    return _mm256_blendv_ps(r, _mm256_or_ps(x, quiet),
                            _mm256_cmp_ps(x, x, _CMP_UNORD_Q));
}

/*
 * float16/bfloat16 in one pass, 8 elements at a time: widen, combine and
 * narrow in registers. The portable block loop handles the last count % 8
 * elements.
 */
static inline __attribute__((always_inline, target("avx2,f16c"))) void
tt_loop_narrow_x86(uint16_t *dst, const uint16_t *a, const uint16_t *b,
                   size_t n, tutti_redop_t op, int bf16)
{
    size_t i = 0;

    for (; i + 8 <= n; i += 8) {
        __m256 x = tt_widen8_x86(a + i, bf16);
        __m256 y = tt_widen8_x86(b + i, bf16);

        tt_narrow8_x86(dst + i, tt_op8_x86(x, y, op), bf16);
    }
    if (bf16) {
        tt_loop_narrow(dst + i, a + i, b + i, n - i, op,
                       tutti__bf16_to_float_n, tutti__float_to_bf16_n);
    } else {
        tt_loop_narrow(dst + i, a + i, b + i, n - i, op,
                       tutti__half_to_float_n, tutti__float_to_half_n);
    }
}

TT_AVX2 static void
tt_sum_u8_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u8(dst, a, b, n, TUTTI_SUM);
}

TT_AVX2 static void
tt_prod_u8_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u8(dst, a, b, n, TUTTI_PROD);
}

TT_AVX2 static void
tt_max_u8_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u8(dst, a, b, n, TUTTI_MAX);
}

TT_AVX2 static void
tt_min_u8_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u8(dst, a, b, n, TUTTI_MIN);
}

TT_AVX2 static void
tt_max_i8_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_i8(dst, a, b, n, TUTTI_MAX);
}

TT_AVX2 static void
tt_min_i8_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_i8(dst, a, b, n, TUTTI_MIN);
}

TT_AVX2 static void
tt_sum_u32_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u32(dst, a, b, n, TUTTI_SUM);
}

TT_AVX2 static void
tt_prod_u32_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u32(dst, a, b, n, TUTTI_PROD);
}

TT_AVX2 static void
tt_max_u32_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u32(dst, a, b, n, TUTTI_MAX);
}

TT_AVX2 static void
tt_min_u32_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u32(dst, a, b, n, TUTTI_MIN);
}

TT_AVX2 static void
tt_max_i32_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_i32(dst, a, b, n, TUTTI_MAX);
}

TT_AVX2 static void
tt_min_i32_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_i32(dst, a, b, n, TUTTI_MIN);
}

TT_AVX2 static void
tt_sum_u64_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u64(dst, a, b, n, TUTTI_SUM);
}

TT_AVX2 static void
tt_prod_u64_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u64(dst, a, b, n, TUTTI_PROD);
}

TT_AVX2 static void
tt_max_u64_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u64(dst, a, b, n, TUTTI_MAX);
}

TT_AVX2 static void
tt_min_u64_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_u64(dst, a, b, n, TUTTI_MIN);
}

TT_AVX2 static void
tt_max_i64_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_i64(dst, a, b, n, TUTTI_MAX);
}

TT_AVX2 static void
tt_min_i64_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_i64(dst, a, b, n, TUTTI_MIN);
}

TT_AVX2 static void
tt_sum_f32_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_f32(dst, a, b, n, TUTTI_SUM);
}

TT_AVX2 static void
tt_prod_f32_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_f32(dst, a, b, n, TUTTI_PROD);
}

TT_AVX2 static void
tt_max_f32_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_f32(dst, a, b, n, TUTTI_MAX);
}

TT_AVX2 static void
tt_min_f32_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_f32(dst, a, b, n, TUTTI_MIN);
}

TT_AVX2 static void
tt_sum_f64_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_f64(dst, a, b, n, TUTTI_SUM);
}

TT_AVX2 static void
tt_prod_f64_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_f64(dst, a, b, n, TUTTI_PROD);
}

TT_AVX2 static void
tt_max_f64_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_f64(dst, a, b, n, TUTTI_MAX);
}

TT_AVX2 static void
tt_min_f64_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_f64(dst, a, b, n, TUTTI_MIN);
}

TT_AVX2 static void
tt_sum_f16_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_narrow_x86(dst, a, b, n, TUTTI_SUM, 0);
}

TT_AVX2 static void
tt_prod_f16_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_narrow_x86(dst, a, b, n, TUTTI_PROD, 0);
}

TT_AVX2 static void
tt_max_f16_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_narrow_x86(dst, a, b, n, TUTTI_MAX, 0);
}

TT_AVX2 static void
tt_min_f16_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_narrow_x86(dst, a, b, n, TUTTI_MIN, 0);
}

TT_AVX2 static void
tt_sum_bf16_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_narrow_x86(dst, a, b, n, TUTTI_SUM, 1);
}

TT_AVX2 static void
tt_prod_bf16_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_narrow_x86(dst, a, b, n, TUTTI_PROD, 1);
}

TT_AVX2 static void
tt_max_bf16_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_narrow_x86(dst, a, b, n, TUTTI_MAX, 1);
}

TT_AVX2 static void
tt_min_bf16_x86(void *dst, const void *a, const void *b, size_t n)
{
    tt_loop_narrow_x86(dst, a, b, n, TUTTI_MIN, 1);
}

#undef TT_AVX2

/* The same table for CPUs with AVX2 and F16C. */
static const tt_reduce_fn tt_reduce_x86[TUTTI_NUM_DATATYPES][TUTTI_AVG] = {
    [TUTTI_INT8] = {
        [TUTTI_SUM]  = tt_sum_u8_x86,
        [TUTTI_PROD] = tt_prod_u8_x86,
        [TUTTI_MAX]  = tt_max_i8_x86,
        [TUTTI_MIN]  = tt_min_i8_x86,
    },
    [TUTTI_UINT8] = {
        [TUTTI_SUM]  = tt_sum_u8_x86,
        [TUTTI_PROD] = tt_prod_u8_x86,
        [TUTTI_MAX]  = tt_max_u8_x86,
        [TUTTI_MIN]  = tt_min_u8_x86,
    },
    [TUTTI_INT32] = {
        [TUTTI_SUM]  = tt_sum_u32_x86,
        [TUTTI_PROD] = tt_prod_u32_x86,
        [TUTTI_MAX]  = tt_max_i32_x86,
        [TUTTI_MIN]  = tt_min_i32_x86,
    },
    [TUTTI_UINT32] = {
        [TUTTI_SUM]  = tt_sum_u32_x86,
        [TUTTI_PROD] = tt_prod_u32_x86,
        [TUTTI_MAX]  = tt_max_u32_x86,
        [TUTTI_MIN]  = tt_min_u32_x86,
    },
    [TUTTI_INT64] = {
        [TUTTI_SUM]  = tt_sum_u64_x86,
        [TUTTI_PROD] = tt_prod_u64_x86,
        [TUTTI_MAX]  = tt_max_i64_x86,
        [TUTTI_MIN]  = tt_min_i64_x86,
    },
    [TUTTI_UINT64] = {
        [TUTTI_SUM]  = tt_sum_u64_x86,
        [TUTTI_PROD] = tt_prod_u64_x86,
        [TUTTI_MAX]  = tt_max_u64_x86,
        [TUTTI_MIN]  = tt_min_u64_x86,
    },
    [TUTTI_FLOAT16] = {
        [TUTTI_SUM]  = tt_sum_f16_x86,
        [TUTTI_PROD] = tt_prod_f16_x86,
        [TUTTI_MAX]  = tt_max_f16_x86,
        [TUTTI_MIN]  = tt_min_f16_x86,
    },
    [TUTTI_FLOAT32] = {
        [TUTTI_SUM]  = tt_sum_f32_x86,
        [TUTTI_PROD] = tt_prod_f32_x86,
        [TUTTI_MAX]  = tt_max_f32_x86,
        [TUTTI_MIN]  = tt_min_f32_x86,
    },
    [TUTTI_FLOAT64] = {
        [TUTTI_SUM]  = tt_sum_f64_x86,
        [TUTTI_PROD] = tt_prod_f64_x86,
        [TUTTI_MAX]  = tt_max_f64_x86,
        [TUTTI_MIN]  = tt_min_f64_x86,
    },
    [TUTTI_BFLOAT16] = {
        [TUTTI_SUM]  = tt_sum_bf16_x86,
        [TUTTI_PROD] = tt_prod_bf16_x86,
        [TUTTI_MAX]  = tt_max_bf16_x86,
        [TUTTI_MIN]  = tt_min_bf16_x86,
    },
};
#endif /* TT_REDUCE_X86 */

/*
 * AVX2 as libgcc (or compiler-rt) reports it, which includes the check that
 * the OS saves the AVX state (XGETBV); F16C straight from CPUID leaf 1,
 * since not every compiler knows "f16c" for __builtin_cpu_supports. CPUID
 * traps to the hypervisor in a virtual machine, so the answer is computed
 * once and cached; racing first callers store the same value.
 */
int tutti__reduce_x86_ok(void)
{
#if TT_REDUCE_X86
    static atomic_int cached = -1;
    int               ok     = atomic_load_explicit(&cached,
                                                    memory_order_relaxed);
    unsigned int      eax, ebx, ecx, edx;

    if (ok < 0) {
        ok = __builtin_cpu_supports("avx2") &&
             __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C);
        atomic_store_explicit(&cached, ok, memory_order_relaxed);
    }
    return ok;
#else
    return 0;
#endif
}

/* Valid (datatype, op) with AVG mapped to SUM, or -1. */
static int tt_reduce_index(tutti_datatype_t datatype, tutti_redop_t *op)
{
    /* Unsigned compares reject negative enum values as well. */
    if ((unsigned)datatype >= TUTTI_NUM_DATATYPES ||
        (unsigned)*op >= TUTTI_NUM_REDOPS) {
        return -1;
    }
    if (*op == TUTTI_AVG) {
        *op = TUTTI_SUM;
    }
    return 0;
}

tt_reduce_fn tutti__reduce_fn_portable(tutti_datatype_t datatype,
                                       tutti_redop_t op)
{
    if (tt_reduce_index(datatype, &op) < 0) {
        return NULL;
    }
    return tt_reduce_portable[datatype][op];
}

tt_reduce_fn tutti__reduce_fn(tutti_datatype_t datatype, tutti_redop_t op)
{
    if (tt_reduce_index(datatype, &op) < 0) {
        return NULL;
    }
#if TT_REDUCE_X86
    if (tutti__reduce_x86_ok()) {
        return tt_reduce_x86[datatype][op];
    }
#endif
    return tt_reduce_portable[datatype][op];
}
