/*
 * Deterministic test data and its expected reductions, for multi-rank
 * tests that must agree, without talking, on what every rank holds.
 *
 * A stream is an endless vector per rank: element j of rank r is a pure
 * function of (stream, r, j), so any rank can regenerate any other rank's
 * data and compute the exact result of a collective locally. A raw stream
 * is random bits (NaN and infinity patterns included), for collectives
 * that move data without looking at it. A reducing stream draws values on
 * which (dt, op) over up to TT_REF_MAX_RANKS ranks is exact in any order:
 * dyadic fractions and small integers for the float types, powers of two
 * for PROD, random bits for the integer types (which wrap). AVG is then
 * the exact sum divided once, rounded to float32 first for float16 and
 * bfloat16 (tutti.h: they are accumulated in float32), so every expected
 * element is exact and compared bit for bit, +0 and -0 alike.
 */
#ifndef TT_TEST_REF_H
#define TT_TEST_REF_H

#include <stddef.h>
#include <stdint.h>

#include <tutti.h>

/* Ranks over which reducing streams stay exact. */
#define TT_REF_MAX_RANKS 12

typedef struct tt_ref_stream {
    tutti_datatype_t dt;
    tutti_redop_t    op;   /* value domain and operator; unused when raw */
    int              raw;  /* 1: random bits, for data movement */
    uint64_t         seed; /* any value; equal seeds give equal streams */
} tt_ref_stream_t;

/* A 64-bit hash of two words (not cryptographic). */
uint64_t tt_ref_hash(uint64_t a, uint64_t b);

/* Writes elements [first, first + count) of rank's stream into buf. */
void tt_ref_fill(const tt_ref_stream_t *s, int rank, size_t first,
                 size_t count, void *buf);

/* Writes into out (one element) the op over ranks 0..nranks-1 of their
 * element j: what a reducing collective must produce there. */
void tt_ref_reduced(const tt_ref_stream_t *s, int nranks, size_t j,
                    void *out);

/*
 * Compare buf[0, count) with elements [first, first + count) of rank's
 * stream (tt_ref_check_own) or of the reduction over nranks ranks
 * (tt_ref_check_reduced). Each reports up to a few differing elements,
 * prefixed with `what`, through tt_test_fail() and returns the number of
 * differing elements (0 when equal; -1 if memory ran out).
 */
int tt_ref_check_own(const tt_ref_stream_t *s, int rank, size_t first,
                     size_t count, const void *buf, const char *what);
int tt_ref_check_reduced(const tt_ref_stream_t *s, int nranks, size_t first,
                         size_t count, const void *buf, const char *what);

/* 0 if all `bytes` bytes of buf are `byte`; else reports the first other
 * byte and returns 1. For buffers a call must leave alone. */
int tt_ref_check_bytes(const void *buf, size_t bytes, unsigned char byte,
                       const char *what);

#endif /* TT_TEST_REF_H */
