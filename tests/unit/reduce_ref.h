/*
 * Reference float16/bfloat16 arithmetic and small helpers shared by the
 * reduction unit tests (reduce_ref.c says how the reference works).
 */
#ifndef TUTTI_TEST_REDUCE_REF_H
#define TUTTI_TEST_REDUCE_REF_H

#include <stdint.h>

/* A narrow floating-point format described by its field widths. */
typedef struct ref_fmt {
    const char *name;
    int         man_bits; /* 10 (float16) or 7 (bfloat16) */
    int         bias;     /* 15 or 127 */
    uint16_t    inf;      /* bits of +infinity: 0x7c00 or 0x7f80 */
    double     *values;   /* values[p] for every bit pattern p < inf */
    double      inf_from; /* |x| >= this rounds to infinity */
} ref_fmt_t;

extern ref_fmt_t ref_half;
extern ref_fmt_t ref_bf16;

/* Fills both tables; call before the functions below (idempotent). */
void ref_init(void);

int ref_is_nan(const ref_fmt_t *fmt, uint16_t h);
/* The value of h (NaN for any NaN pattern). */
double ref_decode(const ref_fmt_t *fmt, uint16_t h);
/*
 * x rounded to the nearest value of fmt, ties to the even pattern,
 * overflowing to infinity. NaN gives the canonical quiet NaN; callers
 * compare NaNs by class only.
 */
uint16_t ref_encode(const ref_fmt_t *fmt, double x);

uint32_t f32_bits(float f);
float    f32_of(uint32_t u);
uint64_t f64_bits(double d);

/* Deterministic pseudo-random 64-bit numbers (xorshift64*). */
uint64_t rng_next(void);

#endif /* TUTTI_TEST_REDUCE_REF_H */
