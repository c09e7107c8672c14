/* Kernels of the compute room: x @ W.T (and x @ W) straight from a sparse layout of W, never
 * materialising the dense matrix. Called by sparsecodecs.compute, which validated the parts
 * (codes, indices, counts) with the codec's decode_parts; the kernels still check every index
 * they read from frame data and return an error code rather than read outside a buffer.
 *
 * Shapes: W is (rows, cols). xt is x transposed, (k_in, nb) float32 C-contiguous, and yt the
 * result transposed, (k_out, nb):
 *   trans 0:  yt[r, :]  = sum_c W[r, c] * xt[c, :]        (Y.T  = W @ X.T;  yt written)
 *   trans 1:  yt[c, :] += W[r, c] * xt[r, :]              (Y.T += W.T @ X.T; yt accumulated)
 * Only kept values are multiplied (the IEEE fix-up for non-finite x is the caller's, see
 * compute.py). Values arrive as bit patterns and become float32 by `mode`:
 *   TABLE  vtab[bits] (8/16-bit dtypes: the dtype's own astype), BF16 bits << 16,
 *   FLOATS vf[i] (a float32 array of the values), ONES 1.0 (counts kept entries),
 *   F16    like TABLE (vtab is float16's table) but lets the AVX2 path convert with F16C.
 *
 * Paths:
 *   - generic, any layout: a row's kept columns and values go to scratch (cidx, vals), then
 *     nb == 1: a gather dot product with four sums; nb >= 2, not transposed: the zero-skipping
 *     SpMM, each kept value times a row of xt (blocks of 32 lanes one chain a lane; the nb % 32
 *     lanes after them four chains, t mod 4; AVX2+FMA, AVX-512 64 lanes at once, or the scalar
 *     twin with fmaf: the same bytes; from 32 lanes and 32 KB of xt, SIMD only, in column
 *     blocks over a stash of 32 rows, see stash_t; from 9 lanes, except 16, on x padded with
 *     zero lanes to a multiple of 32, see padded_rows); transposed: a scatter (yt rows += v *
 *     xt row);
 *   - 2:4, NM24_MAX_NB < nb <= 8, not transposed: that SpMM fused with the pattern codes
 *     (AVX2; the generic path is its twin): each kept value's row of xt found from its code,
 *     no column list; 16 rows at a time over 512-column blocks of xt (see nm24_spmm8_avx2;
 *     batch 5-7 on xt padded to 8 lanes, see rows_on_lanes; on AVX-512, two bfloat16 rows'
 *     chains in one 16-lane vector, see nm24_spmm8_pair512);
 *   - 2:4, nb >= 9, not transposed, AVX-512: the generic SpMM fused with the pattern codes
 *     (the generic path is its twin), on x padded as the generic path pads it (9-15 lanes it
 *     pads to 32: to 16, the same chains): 32 rows at a time, two interleaved, over
 *     128-column blocks of xt (see nm24_spmm_avx512);
 *   - 2:4 bfloat16 values, x bfloat16 (the caller's flag), nb >= BDOT_MIN_NB, not transposed:
 *     pairs of bfloat16 products as vdpbf16ps takes them, one chain a lane (see "2:4 bfloat16
 *     weights times bfloat16 x" below; AVX-512 BF16, an AVX2 twin under DAZ/FTZ, a scalar
 *     twin);
 *   - 2:4, nb <= NM24_MAX_NB, not transposed, bf16/fp16/fp32 values: the fused GEMV. Per four
 *     groups, two permutes of x by a table indexed by the pair of pattern codes put the x entries
 *     of the eight kept values in one vector; bf16 becomes fp32 by a shift; FMA into two
 *     accumulators. Its scalar twin does the same per lane (fmaf), so the two write the same
 *     bytes. At batch 1 on bf16 values, rows two at a time (nm24_dot2: the same sums per row,
 *     interleaved; the two rows share x's loads). On AVX-512, one vpermt2ps a column of x
 *     takes the x of 16 kept values, rows two at a time (nm24_rows512: the same sums).
 * Threads: the rows (trans 0) are split into `threads` contiguous ranges run by sc_parallel
 * (the caller and a pool of workers), each with its own scratch; a transposed product runs on
 * one thread (its rows scatter into shared output rows). Every result is independent of the
 * thread count.
 *
 * Return: the kept values multiplied (per batch column), or SC_BAD_PAD (-1: a non-zero value
 * in an N:M padding slot), SC_BAD_FRAME (-3: an index, code or count out of range), SC_NOMEM
 * (-2). */
#include "native.h"
#include "window.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

enum { MODE_TABLE = 0, MODE_BF16 = 1, MODE_FLOATS = 2, MODE_ONES = 3, MODE_F16 = 4 };
enum { SC_BAD_PAD = -1, SC_NOMEM = -2, SC_BAD_FRAME = -3 };
#define NM24_MAX_NB 4
#define BDOT_MIN_NB 5 /* pair products (bfloat16 x) from this batch on */

/* -- helpers ------------------------------------------------------------------------------ */

typedef struct {
    const void *vbits;
    int vsize;
    int64_t nvals;
    const float *vtab;
    int64_t ntab;
    const float *vf;
    int mode;
    const float *xt;
    float *yt;
    int64_t nb;
    int trans;
    int simd; /* read once per call: 0 scalar, 1 AVX2+FMA, 2 and AVX-512 */
    int64_t rows, cols;
} prod_t;

/* Items of frame data may sit at any address (a section's offset in the frame): read them
 * with memcpy, which compiles to a plain load on x86. */
SC_INLINE uint16_t ld16(const void *p, int64_t i) {
    uint16_t v;
    memcpy(&v, (const char *)p + 2 * i, 2);
    return v;
}

SC_INLINE uint64_t rd_uint(const void *p, int size, int64_t i) {
    const char *c = (const char *)p + size * i;
    switch (size) {
    case 1: return *(const uint8_t *)c;
    case 2: { uint16_t v; memcpy(&v, c, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, c, 4); return v; }
    default: { uint64_t v; memcpy(&v, c, 8); return v; }
    }
}

SC_INLINE float bits_to_f(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int has_fma(void) {
#if SC_X86
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("fma") && __builtin_cpu_supports("avx2");
    }
    return cached;
#else
    return 0;
#endif
}

SC_INLINE int use_avx2(void) { return sc_simd >= SC_SIMD_AVX2 && has_fma(); }

#if SC_X86
static void bf16_to_f32_avx2(const char *src, int64_t cnt, float *vals);
static void f16_to_f32_f16c(const char *src, int64_t cnt, const float *tab, float *vals);
#endif

/* vals[0:cnt] = values v0 .. v0+cnt-1 as float32; 0, or SC_BAD_FRAME if out of range. */
static int convert(const prod_t *P, int64_t v0, int64_t cnt, float *vals) {
    if (v0 < 0 || cnt < 0 || v0 + cnt > P->nvals) return SC_BAD_FRAME;
    switch (P->mode) {
    case MODE_BF16: {
#if SC_X86
        if (P->simd) { /* the same floats, 8 at a time */
            bf16_to_f32_avx2((const char *)P->vbits + 2 * v0, cnt, vals);
            break;
        }
#endif
        const char *b = (const char *)P->vbits + 2 * v0;
        for (int64_t t = 0; t < cnt; t++) vals[t] = bits_to_f((uint32_t)ld16(b, t) << 16);
        break;
    }
    case MODE_FLOATS: memcpy(vals, P->vf + v0, (size_t)cnt * 4); break;
    case MODE_ONES:
        for (int64_t t = 0; t < cnt; t++) vals[t] = 1.0f;
        break;
    default: /* TABLE, F16 */
#if SC_X86
        if (P->mode == MODE_F16 && P->simd) { /* the table's floats (exact), 8 at a time */
            f16_to_f32_f16c((const char *)P->vbits + 2 * v0, cnt, P->vtab, vals);
            break;
        }
#endif
        if (P->vsize == 1) {
            const uint8_t *b = (const uint8_t *)P->vbits + v0;
            for (int64_t t = 0; t < cnt; t++) vals[t] = P->vtab[b[t]];
        } else {
            const char *b = (const char *)P->vbits + 2 * v0;
            for (int64_t t = 0; t < cnt; t++) vals[t] = P->vtab[ld16(b, t)];
        }
    }
    return 0;
}

/* nb >= 2, not transposed: yt[r, b] = sum_t vals[t] * xt[cidx[t], b]. The lanes of whole
 * blocks of 32 are each one chain of fused multiply-adds in ascending t (a block is four
 * vectors of independent chains already); the lanes after them (nb % 32) are four chains each,
 * of the kept values t = 0, 1, 2, 3 (mod 4), added as (c0 + c1) + (c2 + c3), so that a short
 * batch does not wait on one chain's latency. Every twin computes exactly this. */
static void spmm_row_scalar(const prod_t *P, int64_t r, const int64_t *cidx, const float *vals,
                            int64_t cnt, float *acc) {
    const int64_t nb = P->nb, b32 = nb / 32 * 32, rest = nb - b32;
    float *y = P->yt + r * nb;
    for (int64_t b = 0; b < b32; b++) acc[b] = 0.0f;
    for (int64_t b = 0; b < 4 * rest; b++) acc[nb + b] = 0.0f;
    for (int64_t t = 0; t < cnt; t++) {
        const float v = vals[t];
        const float *xr = P->xt + cidx[t] * nb;
        for (int64_t b = 0; b < b32; b++) acc[b] = fmaf(v, xr[b], acc[b]);
        float *c = acc + nb + (t & 3) * rest;
        for (int64_t b = 0; b < rest; b++) c[b] = fmaf(v, xr[b32 + b], c[b]);
    }
    memcpy(y, acc, (size_t)b32 * 4);
    const float *c = acc + nb;
    for (int64_t b = 0; b < rest; b++)
        y[b32 + b] = (c[b] + c[rest + b]) + (c[2 * rest + b] + c[3 * rest + b]);
}

#if SC_X86
/* The lanes after the whole blocks of 32, from b = b32 on: four chains of 8 lanes a vector
 * (the last nb % 8 by masked loads; masked-off lanes are never read). */
SC_TARGET("avx2,fma")
static void spmm_rest_avx2(const prod_t *P, int64_t b32, const int64_t *cidx, const float *vals,
                           int64_t cnt, float *y) {
    const int64_t nb = P->nb;
    const float *xt = P->xt;
    for (int64_t b = b32; b < nb; b += 8) {
        const int64_t left = nb - b;
        const __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32(left < 8 ? (int)left : 8),
                                                 _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
        __m256 c[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(),
                       _mm256_setzero_ps()};
        int64_t t = 0;
        for (; t + 4 <= cnt; t += 4)
            for (int k = 0; k < 4; k++)
                c[k] = _mm256_fmadd_ps(_mm256_broadcast_ss(vals + t + k),
                                       _mm256_maskload_ps(xt + cidx[t + k] * nb + b, lanes),
                                       c[k]);
        for (int k = 0; t < cnt; t++, k++)
            c[k] = _mm256_fmadd_ps(_mm256_broadcast_ss(vals + t),
                                   _mm256_maskload_ps(xt + cidx[t] * nb + b, lanes), c[k]);
        _mm256_maskstore_ps(y + b, lanes,
                            _mm256_add_ps(_mm256_add_ps(c[0], c[1]), _mm256_add_ps(c[2], c[3])));
    }
}

/* spmm_rest_avx2 with 16 lanes a vector, the last nb % 16 by a load mask (AVX-512 masks cost
 * nothing, AVX2's masked loads do): the same chains, the same bytes. */
SC_TARGET("avx512f,avx512bw,avx512vl,avx2,fma")
static void spmm_rest_avx512(const prod_t *P, int64_t b32, const int64_t *cidx,
                             const float *vals, int64_t cnt, float *y) {
    const int64_t nb = P->nb;
    const float *xt = P->xt;
    for (int64_t b = b32; b < nb; b += 16) {
        const __mmask16 lanes = (__mmask16)(nb - b < 16 ? (1u << (nb - b)) - 1 : 0xFFFFu);
        __m512 c[4] = {_mm512_setzero_ps(), _mm512_setzero_ps(), _mm512_setzero_ps(),
                       _mm512_setzero_ps()};
        int64_t t = 0;
        for (; t + 4 <= cnt; t += 4)
            for (int k = 0; k < 4; k++)
                c[k] = _mm512_fmadd_ps(_mm512_set1_ps(vals[t + k]),
                                       _mm512_maskz_loadu_ps(lanes, xt + cidx[t + k] * nb + b),
                                       c[k]);
        for (int k = 0; t < cnt; t++, k++)
            c[k] = _mm512_fmadd_ps(_mm512_set1_ps(vals[t]),
                                   _mm512_maskz_loadu_ps(lanes, xt + cidx[t] * nb + b), c[k]);
        _mm512_mask_storeu_ps(y + b, lanes,
                              _mm512_add_ps(_mm512_add_ps(c[0], c[1]), _mm512_add_ps(c[2], c[3])));
    }
}

/* Lanes b .. b + NV W of the SpMM over kept values 0 .. cnt-1: NV vectors of W lanes, each
 * lane one chain, started at zero if `first`, else continued from y (vector type V and its
 * intrinsics: the AVX2 and AVX-512 builds share the body). */
#define SPMM_BLOCK(V, zero, set1, load, fma, store, W, NV)                                    \
    do {                                                                                      \
        V a[NV];                                                                              \
        for (int k = 0; k < (NV); k++) a[k] = first ? zero() : load(y + b + k * (W));         \
        for (int64_t t = 0; t < cnt; t++) {                                                   \
            const V v = set1(vals[t]);                                                        \
            const float *xr = xt + cidx[t] * nb + b;                                          \
            for (int k = 0; k < (NV); k++) a[k] = fma(v, load(xr + k * (W)), a[k]);           \
        }                                                                                     \
        for (int k = 0; k < (NV); k++) store(y + b + k * (W), a[k]);                          \
    } while (0)
/* The blocks of 32 lanes of a row's y (b from 0 to nb / 32 * 32; a WIDE loop first). */
#define SPMM_SPAN(name, target, WIDE)                                                         \
    SC_TARGET(target)                                                                         \
    static void name(const prod_t *P, float *y, const int64_t *cidx, const float *vals,       \
                     int64_t cnt, int first) {                                                \
        const int64_t nb = P->nb;                                                             \
        const float *xt = P->xt;                                                              \
        int64_t b = 0;                                                                        \
        WIDE;                                                                                 \
        for (; b + 32 <= nb; b += 32)                                                         \
            SPMM_BLOCK(__m256, _mm256_setzero_ps, _mm256_set1_ps, _mm256_loadu_ps,            \
                       _mm256_fmadd_ps, _mm256_storeu_ps, 8, 4);                              \
    }

SPMM_SPAN(spmm_span_avx2, "avx2,fma", (void)0)
/* The same with 16 lanes a vector: blocks of 32 lanes two at a time (four vectors of chains,
 * as the AVX2 twin's four), then a block of 32 as two vectors. */
SPMM_SPAN(spmm_span_avx512, "avx512f,avx512bw,avx512vl,avx2,fma",
          for (; b + 64 <= nb; b += 64) SPMM_BLOCK(__m512, _mm512_setzero_ps, _mm512_set1_ps,
                                                   _mm512_loadu_ps, _mm512_fmadd_ps,
                                                   _mm512_storeu_ps, 16, 4);
          if (b + 32 <= nb) {
              SPMM_BLOCK(__m512, _mm512_setzero_ps, _mm512_set1_ps, _mm512_loadu_ps,
                         _mm512_fmadd_ps, _mm512_storeu_ps, 16, 2);
              b += 32;
          })
#undef SPMM_SPAN
#undef SPMM_BLOCK

SC_INLINE void spmm_rest(const prod_t *P, int64_t b32, const int64_t *cidx, const float *vals,
                         int64_t cnt, float *y) {
    if (P->simd >= 2)
        spmm_rest_avx512(P, b32, cidx, vals, cnt, y);
    else
        spmm_rest_avx2(P, b32, cidx, vals, cnt, y);
}

SC_INLINE void spmm_span(const prod_t *P, float *y, const int64_t *cidx, const float *vals,
                         int64_t cnt, int first) {
    if (P->simd >= 2)
        spmm_span_avx512(P, y, cidx, vals, cnt, first);
    else
        spmm_span_avx2(P, y, cidx, vals, cnt, first);
}
#endif

/* One row of W (cnt kept values at columns cidx) into the product; see the file comment. */
static void emit(const prod_t *P, int64_t r, const int64_t *cidx, const float *vals,
                 int64_t cnt, float *acc) {
    const int64_t nb = P->nb;
    const float *xt = P->xt;
    float *yt = P->yt;
    if (P->trans) {
        const float *xr = xt + r * nb;
        for (int64_t t = 0; t < cnt; t++) {
            const float v = vals[t];
            float *yr = yt + cidx[t] * nb;
            for (int64_t b = 0; b < nb; b++) yr[b] += v * xr[b];
        }
    } else if (nb == 1) {
        float s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
        int64_t t = 0;
        for (; t + 4 <= cnt; t += 4) {
            s0 += vals[t] * xt[cidx[t]];
            s1 += vals[t + 1] * xt[cidx[t + 1]];
            s2 += vals[t + 2] * xt[cidx[t + 2]];
            s3 += vals[t + 3] * xt[cidx[t + 3]];
        }
        for (; t < cnt; t++) s0 += vals[t] * xt[cidx[t]];
        yt[r] = (s0 + s1) + (s2 + s3);
    } else {
#if SC_X86
        if (P->simd) {
            float *y = yt + r * nb;
            spmm_span(P, y, cidx, vals, cnt, 1);
            spmm_rest(P, nb / 32 * 32, cidx, vals, cnt, y);
            return;
        }
#endif
        spmm_row_scalar(P, r, cidx, vals, cnt, acc);
    }
}

/* -- the SpMM in column blocks ------------------------------------------------------------ */

/* From 32 lanes on, a kept value's row of xt is nb * 4 bytes, and row by row each output row
 * reads all of xt (cols * nb * 4 bytes: 1 MB at 4096 columns and batch 64), from L2 at best.
 * So the row loops stash the kept values of up to STASH_ROWS rows and run them column block by
 * column block, a block of xt (about 32 KB) read from L1 by every stashed row: 2:4 at batch 64,
 * 4096x4096, 27.7-28.1 -> 24.2-24.7 ms a layer with xt on 64-byte lines (matmul allocates it
 * so; straddling lines cost more than this saves). Each lane is still one chain of FMAs in
 * ascending t, stored into y and reloaded between blocks: the same bytes as row by row (the
 * nb % 32 lanes after the blocks go row by row, as before). From xt of 32 KB (an L1 data
 * cache), not 64 KB as first: nm 2:4 bf16 on 384 columns, batch 20-32, 384 rows 249-323 ->
 * 199-256 us, 1536 rows 839-858 -> 645-670 us (the two builds swapped in turn, best of 10). */
#define STASH_ROWS 32
#define STASH_VALS 65536     /* kept values a stash holds (12 bytes each), or one row's */
#define STASH_XT_BYTES 32768 /* xt at most this size is left to the row-by-row SpMM */

typedef struct {
    int64_t r0, rows, used, cap, cb;
    int64_t start[STASH_ROWS + 1], cur[STASH_ROWS];
    int64_t *cidx;
    float *vals;
} stash_t;

/* A stash for rows of up to `slots` kept values, or none (cap 0: rows go straight to emit)
 * when the product is not an SpMM the blocks help; SC_NOMEM if out of memory. */
static int stash_init(const prod_t *P, stash_t *st, int64_t slots) {
    memset(st, 0, sizeof *st);
    if (!P->simd || P->trans || P->nb < 32 || P->cols * P->nb * 4 <= STASH_XT_BYTES) return 0;
    st->cap = slots > STASH_VALS ? slots : STASH_VALS;
    st->cb = 32768 / (P->nb * 4) < 16 ? 16 : 32768 / (P->nb * 4);
    st->cidx = malloc((size_t)st->cap * 8);
    st->vals = malloc((size_t)st->cap * 4);
    return st->cidx && st->vals ? 0 : SC_NOMEM;
}

static void stash_free(stash_t *st) {
    free(st->cidx);
    free(st->vals);
}

/* The stashed rows into the product, column block by column block; the stash is then empty. */
static void stash_flush(const prod_t *P, stash_t *st) {
    if (!st->rows) return;
#if SC_X86
    const int64_t nb = P->nb, cb = st->cb;
    for (int64_t i = 0; i < st->rows; i++) st->cur[i] = st->start[i];
    for (int64_t c0 = 0; c0 < P->cols; c0 += cb)
        for (int64_t i = 0; i < st->rows; i++) {
            /* the row's kept values in this block: columns ascend, so eight, then four, two
             * and one at a time (were a row's columns out of order, a block would take a
             * value early or late, and every value would still be added once, in order) */
            const int64_t t0 = st->cur[i], end = st->start[i + 1], lim = c0 + cb;
            const int64_t *c = st->cidx;
            int64_t t1 = t0;
            while (t1 + 8 <= end && c[t1 + 7] < lim) t1 += 8;
            if (t1 + 4 <= end && c[t1 + 3] < lim) t1 += 4;
            if (t1 + 2 <= end && c[t1 + 1] < lim) t1 += 2;
            if (t1 < end && c[t1] < lim) t1++;
            spmm_span(P, P->yt + (st->r0 + i) * nb, st->cidx + t0, st->vals + t0, t1 - t0,
                      c0 == 0);
            st->cur[i] = t1;
        }
    if (nb % 32)
        for (int64_t i = 0; i < st->rows; i++)
            spmm_rest(P, nb / 32 * 32, st->cidx + st->start[i], st->vals + st->start[i],
                      st->start[i + 1] - st->start[i], P->yt + (st->r0 + i) * nb);
#else
    (void)P;
#endif
    st->rows = st->used = 0;
}

/* Room in the stash for row r's up to `slots` kept values (flushing it first if full):
 * *cidx and *vals point there, for the row loop to decode into, then stash_commit. */
static void stash_reserve(const prod_t *P, stash_t *st, int64_t r, int64_t slots,
                          int64_t **cidx, float **vals) {
    if (st->rows && (st->rows == STASH_ROWS || st->used + slots > st->cap ||
                     r != st->r0 + st->rows))
        stash_flush(P, st);
    if (!st->rows) st->r0 = r;
    *cidx = st->cidx + st->used;
    *vals = st->vals + st->used;
}

/* The row stash_reserve made room for, with its cnt kept values. */
static void stash_commit(stash_t *st, int64_t cnt) {
    st->used += cnt;
    st->start[++st->rows] = st->used;
}

/* Row r (cnt kept values at ascending columns cidx) into the product: stashed, or at once. */
static void put_row(const prod_t *P, stash_t *st, int64_t r, const int64_t *cidx,
                    const float *vals, int64_t cnt, float *acc) {
    if (!st->cap) {
        emit(P, r, cidx, vals, cnt, acc);
        return;
    }
    int64_t *c;
    float *v;
    stash_reserve(P, st, r, cnt, &c, &v);
    memcpy(c, cidx, (size_t)cnt * 8);
    memcpy(v, vals, (size_t)cnt * 4);
    stash_commit(st, cnt);
}

/* -- threads ------------------------------------------------------------------------------ */

typedef int64_t (*rows_fn)(const void *job, int64_t r0, int64_t r1);

typedef struct {
    rows_fn fn;
    const void *job;
    int64_t rows;
    int parts;
    int64_t result[SC_MAX_THREADS];
} rows_split;

static void rows_part(void *ctx, int i) {
    rows_split *t = ctx;
    t->result[i] = t->fn(t->job, t->rows * i / t->parts, t->rows * (i + 1) / t->parts);
}

/* fn over rows [0, rows) in `threads` contiguous ranges (sc_parallel); the counts add up, the
 * first error wins. */
static int64_t parallel_rows(rows_fn fn, const void *job, int64_t rows, int64_t threads) {
    if (threads > SC_MAX_THREADS) threads = SC_MAX_THREADS;
    if (threads > rows) threads = rows;
    if (threads <= 1) return fn(job, 0, rows);
    rows_split t = {fn, job, rows, (int)threads, {0}};
    sc_parallel((int)threads, rows_part, &t);
    int64_t total = 0;
    for (int i = 0; i < t.parts; i++) {
        if (t.result[i] < 0) return t.result[i];
        total += t.result[i];
    }
    return total;
}

/* parallel_rows over a generic row loop (nm_rows, mask_rows, csr_rows: the SpMM from 2 lanes)
 * whose job begins with *P. From 9 lanes on, except 16, x gets zero lanes up to a multiple of
 * 32, in a copy whose rows start on 64-byte lines, and the result is the padded product's first
 * nb lanes: the SpMM then runs whole blocks of 32 lanes (one chain a lane) on aligned rows of
 * xt, where the nb % 32 lanes after the blocks (four chains, masked loads) on rows straddling
 * lines cost more than the padding's extra multiply-adds (nm 2:4 4096x4096, sc.matmul: batch
 * 100 60 -> 39-41 ms, 33 37 -> 21-22 ms, 24 33 -> 17 ms; 16 lanes, 12 ms as they are, stay).
 * Under 16 lanes with x of at most PAD16_MAX_COLS columns, 16 lanes instead: x padded to 16
 * lanes is at most 48 KB and stays in L1 or near it, where 32 lanes would not (nm 2:4 at batch
 * 13, AVX2 on a Zen 3 core: 384 columns 232 -> 162 us (384 rows), 832 -> 549 us (1536 rows);
 * 512 and 768 columns 35% and 16% faster; from 1024 columns no faster, at 4096 slower). The
 * scalar twin pads the same. Not for a transposed product, nor past PAD_MAX_BYTES of copies. */
#define PAD_MAX_BYTES ((int64_t)256 << 20)
#define PAD16_MAX_COLS 768

static int64_t rows_on_lanes(rows_fn fn, const void *job, prod_t *P, int64_t rows,
                             int64_t threads, int64_t nbp, int64_t tile);

/* The lanes padded_rows runs a product of `rows` rows on: nb itself if it does not pad. */
static int64_t padded_lanes(const prod_t *P, int64_t rows) {
    const int64_t nb = P->nb, cols = P->cols;
    const int64_t nbp = nb < 16 && cols <= PAD16_MAX_COLS ? 16 : (nb + 31) / 32 * 32;
    if (P->trans || nb < 9 || nb == 16 || (cols + rows) * nbp * 4 > PAD_MAX_BYTES) return nb;
    return nbp;
}

static int64_t padded_rows(rows_fn fn, const void *job, prod_t *P, int64_t rows,
                           int64_t threads) {
    const int64_t nbp = padded_lanes(P, rows);
    if (nbp == P->nb) return parallel_rows(fn, job, rows, P->trans ? 1 : threads);
    return rows_on_lanes(fn, job, P, rows, threads, nbp, nbp);
}

/* fn over the rows (not transposed) on a copy of xt padded with zero lanes to nbp >= nb lanes,
 * 64-byte aligned, into a result of nbp lanes whose first nb are copied out: every lane is
 * its own chains, so the padding changes no lane's bytes. The copy is in tiles of `tile`
 * lanes (the last one what is left), each tile's columns one after another: tile >= nbp is
 * xt's own layout. With nbp == nb the result is written in place. */
static int64_t rows_on_lanes(rows_fn fn, const void *job, prod_t *P, int64_t rows,
                             int64_t threads, int64_t nbp, int64_t tile) {
    const int64_t nb = P->nb, cols = P->cols;
    const size_t xbytes = (size_t)(cols * nbp * 4 + 63) / 64 * 64;
    const size_t ybytes = nbp == nb ? 0 : (size_t)(rows * nbp * 4 + 63) / 64 * 64;
    float *xp = aligned_alloc(64, xbytes ? xbytes : 64);
    float *yp = ybytes ? aligned_alloc(64, ybytes) : P->yt;
    int64_t count = SC_NOMEM;
    if (xp && yp) {
        for (int64_t l0 = 0; l0 < nbp; l0 += tile) {
            const int64_t wl = nbp - l0 < tile ? nbp - l0 : tile;
            const int64_t have = nb - l0 < wl ? (nb > l0 ? nb - l0 : 0) : wl;
            float *t = xp + l0 * cols;
            for (int64_t c = 0; c < cols; c++) {
                memcpy(t + c * wl, P->xt + c * nb + l0, (size_t)have * 4);
                memset(t + c * wl + have, 0, (size_t)(wl - have) * 4);
            }
        }
        const float *xt = P->xt;
        float *yt = P->yt;
        P->xt = xp;
        P->yt = yp;
        P->nb = nbp;
        count = parallel_rows(fn, job, rows, threads);
        P->xt = xt;
        P->yt = yt;
        P->nb = nb;
        if (count >= 0 && ybytes)
            for (int64_t r = 0; r < rows; r++) memcpy(yt + r * nb, yp + r * nbp, (size_t)nb * 4);
    }
    free(xp);
    if (ybytes) free(yp);
    return count;
}

/* x (in, nb) transposed to nb rows of `cols` (malloc'd, `extra` spare bytes; NULL if out of
 * memory): the GEMV kernels read one batch column of x as a row. */
static float *x_by_rows(const float *xt, int64_t cols, int64_t nb, size_t extra) {
    float *xrows = malloc((size_t)(nb * cols) * 4 + extra);
    if (xrows)
        for (int64_t c = 0; c < cols; c++)
            for (int64_t b = 0; b < nb; b++) xrows[b * cols + c] = xt[c * nb + b];
    return xrows;
}

/* -- N:M ---------------------------------------------------------------------------------- */

typedef struct {
    prod_t P;
    const void *packed;
    int psize;
    int64_t npacked;
    const uint16_t *lut;
    int64_t lutrows, k; /* lut: (lutrows, k) */
    const uint8_t *pos; /* (ncodes, n) */
    int64_t ncodes, n, m, gpr;
    const float *xrows; /* nb rows of x (batch, cols), for the 2:4 GEMV */
    uint32_t *xpairs;       /* x's pairs by group and code, for the bfloat16 SpMM (bdot), */
    int64_t lane0, lanes;   /* of batch lanes lane0 .. lane0 + lanes - 1 */
    int64_t nbp, bgroups;   /* that table's lanes a row, and groups a column block */
    int one16;              /* 16 lanes of one chain each (nm24_spmm_avx512 at batch 9-15) */
    int tiled;              /* xt in tiles of lanes (nm24_spmm_tiles), for nm24_spmm_avx512 */
} nm_job;

/* The codes of groups g0 .. g0+count-1 into codes[]; SC_BAD_FRAME if a word or code is out of
 * range. For bytes of three 2:4 codes, whole bytes go through one table look-up each. */
static int row_codes(const nm_job *J, int64_t g0, int64_t count, uint16_t *codes) {
    const int64_t k = J->k;
    int64_t w = g0 / k, j = g0 % k, q = 0;
    while (q < count) {
        if (w >= J->npacked) return SC_BAD_FRAME;
        uint64_t word = rd_uint(J->packed, J->psize, w);
        if ((int64_t)word >= J->lutrows) return SC_BAD_FRAME;
        const uint16_t *l = J->lut + word * k;
        if (j == 0 && q + k <= count) {
            for (int64_t d = 0; d < k; d++) codes[q + d] = l[d];
            q += k;
            w++;
            continue;
        }
        codes[q++] = l[j++];
        if (j == k) {
            j = 0;
            w++;
        }
    }
    for (int64_t t = 0; t < count; t++)
        if (codes[t] >= J->ncodes) return SC_BAD_FRAME;
    return 0;
}

typedef struct {
    int64_t *cidx;
    float *vals, *acc;
    uint16_t *codes;
} scratch_t;

static int scratch_alloc(scratch_t *s, int64_t slots, int64_t nb, int64_t ncodes) {
    s->cidx = malloc((size_t)(slots + 1) * 8);
    s->vals = malloc((size_t)(slots + 8) * 4);
    s->acc = malloc((size_t)(5 * nb + 1) * 4); /* nb lanes + 4 chains of nb % 32 */
    s->codes = malloc((size_t)(ncodes + 1) * 2);
    if (!s->cidx || !s->vals || !s->acc || !s->codes) return SC_NOMEM;
    return 0;
}

static void scratch_free(scratch_t *s) {
    free(s->cidx);
    free(s->vals);
    free(s->acc);
    free(s->codes);
}

static const uint8_t nm24_pos[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};
/* 2:4 codes as bytes: byte b of a "pattern" section holds the base-6 digits of three codes;
 * nm24_byte[b] has them in its three low bytes (0x80 in every byte for b >= 216). */
static uint32_t nm24_byte[256];

/* Sixteen pattern bytes at pk as their 48 codes at out (byte b holds b % 6, b / 6 % 6, b / 36):
 * the digits by multiplying by 2**16 / 6 (exact for bytes), then two byte shuffles a half. The
 * same codes as nm24_byte; non-zero if a byte is past 215, which is not three codes. */
typedef int (*codes48_fn)(const uint8_t *pk, uint8_t *out);

#if SC_X86
SC_TARGET("avx2") SC_INLINE int nm24_codes48_avx2(const uint8_t *pk, uint8_t *out) {
    const __m256i inv6 = _mm256_set1_epi16(10923), six = _mm256_set1_epi16(6);
    __m256i b = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)pk));
    __m256i q1 = _mm256_mulhi_epu16(b, inv6), q2 = _mm256_mulhi_epu16(q1, inv6);
    __m256i d0 = _mm256_sub_epi16(b, _mm256_mullo_epi16(q1, six));
    __m256i d1 = _mm256_sub_epi16(q1, _mm256_mullo_epi16(q2, six));
    __m256i d01 = _mm256_or_si256(d0, _mm256_slli_epi16(d1, 8)); /* bytes d0 d1 per value */
    /* output byte k of a half (8 values, 24 bytes) is digit k % 3 of value k / 3: digits 0, 1
     * from byte 2 (k / 3) + k % 3 of d01, digit 2 from byte 2 (k / 3) of q2 */
    const __m256i a01 = _mm256_setr_epi8(0, 1, -1, 2, 3, -1, 4, 5, -1, 6, 7, -1, 8, 9, -1, 10,
                                         0, 1, -1, 2, 3, -1, 4, 5, -1, 6, 7, -1, 8, 9, -1, 10);
    const __m256i a2 = _mm256_setr_epi8(-1, -1, 0, -1, -1, 2, -1, -1, 4, -1, -1, 6, -1, -1, 8, -1,
                                        -1, -1, 0, -1, -1, 2, -1, -1, 4, -1, -1, 6, -1, -1, 8, -1);
    const __m256i b01 = _mm256_setr_epi8(11, -1, 12, 13, -1, 14, 15, -1, -1, -1, -1, -1, -1, -1,
                                         -1, -1, 11, -1, 12, 13, -1, 14, 15, -1, -1, -1, -1, -1,
                                         -1, -1, -1, -1);
    const __m256i b2 = _mm256_setr_epi8(-1, 10, -1, -1, 12, -1, -1, 14, -1, -1, -1, -1, -1, -1,
                                        -1, -1, -1, 10, -1, -1, 12, -1, -1, 14, -1, -1, -1, -1, -1,
                                        -1, -1, -1);
    __m256i lo = _mm256_or_si256(_mm256_shuffle_epi8(d01, a01), _mm256_shuffle_epi8(q2, a2));
    __m256i hi = _mm256_or_si256(_mm256_shuffle_epi8(d01, b01), _mm256_shuffle_epi8(q2, b2));
    _mm_storeu_si128((__m128i *)out, _mm256_castsi256_si128(lo));
    _mm_storel_epi64((__m128i *)(out + 16), _mm256_castsi256_si128(hi));
    _mm_storeu_si128((__m128i *)(out + 24), _mm256_extracti128_si256(lo, 1));
    _mm_storel_epi64((__m128i *)(out + 40), _mm256_extracti128_si256(hi, 1));
    return _mm256_movemask_epi8(_mm256_cmpgt_epi16(q2, _mm256_set1_epi16(5)));
}
#endif

/* The codes of groups g0 .. g0+count-1 of a 2:4 weight into codes[] (one byte each, count + 4
 * bytes of room): whole pattern bytes through nm24_byte (48 codes at a time through codes48 if
 * not NULL), one-code-per-item codes copied. */
SC_INLINE int row_codes24(const nm_job *J, int64_t g0, int64_t count, uint8_t *codes,
                          uint16_t *tmp, codes48_fn codes48) {
    if (J->psize == 1 && J->k == 3) {
        int64_t w = g0 / 3, j = g0 % 3, q = 0;
        const uint8_t *pk = (const uint8_t *)J->packed;
        if ((count + j + 2) / 3 + w > J->npacked) return SC_BAD_FRAME;
        uint32_t bad = 0;
        if (j) { /* the rest of a byte shared with the previous row */
            uint32_t t = nm24_byte[pk[w++]];
            bad |= t;
            for (; j < 3 && q < count; j++) codes[q++] = (uint8_t)(t >> (8 * j));
        }
        if (codes48) /* the bytes of codes q .. q+47 all belong to this row */
            for (; q + 48 <= count; q += 48, w += 16)
                if (codes48(pk + w, codes + q)) return SC_BAD_FRAME;
        for (; q < count; q += 3) { /* 4-byte stores, 3 codes each; the last may overhang */
            uint32_t t = nm24_byte[pk[w++]];
            bad |= t;
            memcpy(codes + q, &t, 4);
        }
        return bad & 0x80808080u ? SC_BAD_FRAME : 0;
    }
    if (J->psize == 1 && J->k == 1 && J->lutrows == 6) { /* one byte a group, identity lut */
        if (g0 + count > J->npacked) return SC_BAD_FRAME;
        const uint8_t *c = (const uint8_t *)J->packed + g0;
        uint8_t bad = 0;
        for (int64_t q = 0; q < count; q++) {
            bad |= (uint8_t)(c[q] >= 6);
            codes[q] = c[q];
        }
        return bad ? SC_BAD_FRAME : 0;
    }
    if (J->psize == 2 && J->k == 1 && J->lutrows == 6) { /* one code per group, identity lut */
        if (g0 + count > J->npacked) return SC_BAD_FRAME;
        const char *c = (const char *)J->packed + 2 * g0;
        uint16_t bad = 0;
        for (int64_t q = 0; q < count; q++) {
            const uint16_t code = ld16(c, q);
            bad |= (uint16_t)(code >= 6);
            codes[q] = (uint8_t)code;
        }
        return bad ? SC_BAD_FRAME : 0;
    }
    int err = row_codes(J, g0, count, tmp);
    for (int64_t q = 0; q < count; q++) codes[q] = (uint8_t)tmp[q];
    return err;
}

/* Generic N:M rows [r0, r1). */
static int64_t nm_rows(const void *job, int64_t r0, int64_t r1) {
    const nm_job *J = (const nm_job *)job;
    const prod_t *P = &J->P;
    const int64_t n = J->n, m = J->m, gpr = J->gpr, cols = P->cols;
    scratch_t s;
    stash_t st = {0}; /* freed even if never set up */
    int64_t count = 0, err = scratch_alloc(&s, gpr * n, P->nb, gpr);
    if (!err) err = stash_init(P, &st, gpr * n);
    const int two_four = n == 2 && m == 4 && J->ncodes == 6;
#if SC_X86
    const codes48_fn codes48 = P->simd ? nm24_codes48_avx2 : NULL;
#else
    const codes48_fn codes48 = NULL;
#endif
    uint8_t *codes8 = two_four && !err ? malloc((size_t)gpr + 8) : NULL;
    if (two_four && !err && !codes8) err = SC_NOMEM;
    for (int64_t r = r0; r < r1 && !err; r++) {
        int64_t *cidx = s.cidx; /* the row's columns and values: in scratch, or in the stash */
        float *vals = s.vals;
        if (st.cap) stash_reserve(P, &st, r, gpr * n, &cidx, &vals);
        if (two_four) { /* 2:4: codes a byte at a time, two columns per code */
            if ((err = row_codes24(J, r * gpr, gpr, codes8, s.codes, codes48))) break;
            for (int64_t q = 0; q < gpr; q++) {
                cidx[2 * q] = 4 * q + nm24_pos[codes8[q]][0];
                cidx[2 * q + 1] = 4 * q + nm24_pos[codes8[q]][1];
            }
        } else {
            if ((err = row_codes(J, r * gpr, gpr, s.codes))) break;
            for (int64_t q = 0; q < gpr; q++) {
                const uint8_t *p = J->pos + (int64_t)s.codes[q] * n;
                for (int64_t t = 0; t < n; t++) cidx[q * n + t] = q * m + p[t];
            }
        }
        int64_t cnt = gpr * n;
        const int64_t v0 = r * cnt;
        if (v0 + cnt > P->nvals) {
            err = SC_BAD_FRAME;
            break;
        }
        while (cnt && cidx[cnt - 1] >= cols) { /* padding slots hold zeros */
            cnt--;
            if (rd_uint(P->vbits, P->vsize, v0 + cnt) != 0) err = SC_BAD_PAD;
        }
        if (err || (err = convert(P, v0, cnt, vals))) break;
        if (st.cap)
            stash_commit(&st, cnt);
        else
            emit(P, r, cidx, vals, cnt, s.acc);
        count += cnt;
    }
    if (!err) stash_flush(P, &st);
    stash_free(&st);
    free(codes8);
    scratch_free(&s);
    return err ? err : count;
}

/* pair[(c0 * 6 + c1) * 8 + lane]: the x index (0..7, within 8 columns = two groups) of kept
 * value `lane % 4` of the group pair with codes (c0, c1); lanes 4..7 repeat lanes 0..3. */
static int32_t nm24_pair[36 * 8];
/* lane_pair[(c0 * 6 + c1) * 8 + lane]: in-lane selectors (vpermilps) for two groups, one per
 * 128-bit lane: lanes 0, 1 the kept positions of code c0, lanes 4, 5 those of c1 (2, 3, 6, 7
 * unused, 0). */
static int32_t nm24_lane_pair[36 * 8];

static void nm24_init(void) {
    for (int b = 0; b < 256; b++)
        nm24_byte[b] = b >= 216 ? 0x80808080u
                                : (uint32_t)(b % 6) | (uint32_t)(b / 6 % 6) << 8 | (uint32_t)(b / 36) << 16;
    for (int a = 0; a < 6; a++)
        for (int b = 0; b < 6; b++) {
            int32_t *e = nm24_pair + (a * 6 + b) * 8;
            e[0] = e[4] = nm24_pos[a][0];
            e[1] = e[5] = nm24_pos[a][1];
            e[2] = e[6] = 4 + nm24_pos[b][0];
            e[3] = e[7] = 4 + nm24_pos[b][1];
            int32_t *f = nm24_lane_pair + (a * 6 + b) * 8;
            f[0] = nm24_pos[a][0];
            f[1] = nm24_pos[a][1];
            f[4] = nm24_pos[b][0];
            f[5] = nm24_pos[b][1];
        }
}

/* The 2:4 GEMV, scalar twin: lanes l of two accumulators (even / odd steps of 4 groups), each
 * a chain of fmaf; then the horizontal sum in the fixed order the AVX2 path uses, plus the
 * leftover groups (fewer than 4, or padded) one fmaf at a time. */
SC_INLINE float nm24_hsum(const float *a) {
    float h[4];
    for (int l = 0; l < 4; l++) h[l] = a[l] + a[l + 4];
    return (h[0] + h[2]) + (h[1] + h[3]);
}

/* The tail of one row from group q0 on, in both twins; -1 for a non-zero padding value. */
static int nm24_tail(const nm_job *J, const float *x, const float *vals, const uint8_t *codes,
                     int64_t q0, float *sum) {
    const int64_t cols = J->P.cols;
    float s = *sum;
    for (int64_t q = q0; q < J->gpr; q++)
        for (int t = 0; t < 2; t++) {
            int64_t c = q * 4 + nm24_pos[codes[q]][t];
            if (c < cols) {
                s = fmaf(vals[2 * q + t], x[c], s);
            } else if (vals[2 * q + t] != 0.0f || signbit(vals[2 * q + t])) {
                return SC_BAD_PAD;
            }
        }
    *sum = s;
    return 0;
}

static int64_t nm24_rows_scalar(const void *job, int64_t r0, int64_t r1) {
    const nm_job *J = (const nm_job *)job;
    const prod_t *P = &J->P;
    const int64_t gpr = J->gpr, nb = P->nb, full = (P->cols / 16) * 4; /* groups in steps */
    scratch_t s;
    int64_t err = scratch_alloc(&s, gpr * 2, nb, gpr);
    uint8_t *codes = err ? NULL : malloc((size_t)gpr + 8);
    if (!err && !codes) err = SC_NOMEM;
    for (int64_t r = r0; r < r1 && !err; r++) {
        if ((err = row_codes24(J, r * gpr, gpr, codes, s.codes, NULL))) break;
        if ((err = convert(P, r * gpr * 2, gpr * 2, s.vals))) break;
        for (int64_t b = 0; b < nb; b++) {
            const float *x = J->xrows + b * P->cols;
            float acc[2][8] = {{0}};
            for (int64_t q = 0; q < full; q += 4) {
                float *a = acc[(q >> 2) & 1];
                const int32_t *ia = nm24_pair + (codes[q] * 6 + codes[q + 1]) * 8;
                const int32_t *ib = nm24_pair + (codes[q + 2] * 6 + codes[q + 3]) * 8;
                const float *xa = x + q * 4, *xb = xa + 8, *v = s.vals + q * 2;
                for (int l = 0; l < 8; l++)
                    a[l] = fmaf(v[l], l < 4 ? xa[ia[l]] : xb[ib[l]], a[l]);
            }
            float sum8[8];
            for (int l = 0; l < 8; l++) sum8[l] = acc[0][l] + acc[1][l];
            float y = 0.0f;
            if ((err = nm24_tail(J, x, s.vals, codes, full, &y))) break;
            P->yt[r * nb + b] = nm24_hsum(sum8) + y;
        }
    }
    free(codes);
    scratch_free(&s);
    return err ? err : (r1 - r0) * (P->cols / 4 * 2 + (P->cols % 4 < 2 ? P->cols % 4 : 2));
}

#if SC_X86
/* cnt bfloat16 bit patterns at src (any alignment) as float32, by a shift, 8 at a time: what
 * convert() writes for MODE_BF16. Each 64-byte step prefetches the line BF16_AHEAD bytes on: a
 * 2:4 row of 4096 columns keeps 4 KB of values, one page, and the hardware prefetcher does
 * not cross pages, so without it every row began with a cold stream (nm at batch 1, 4096x4096:
 * 4.35 -> 3.74 ms a layer, bench/compute_bench.py --ratios). */
#define BF16_AHEAD 16384
SC_TARGET("avx2") static void bf16_to_f32_avx2(const char *src, int64_t cnt, float *vals) {
    int64_t t = 0;
    for (; t + 8 <= cnt; t += 8) {
        if (!(t & 31)) /* a hint, never a fault; the address is formed as an integer, since
                        * near the end it lies past the buffer */
            __builtin_prefetch((const void *)((uintptr_t)src + 2 * (uintptr_t)t + BF16_AHEAD));
        __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + 2 * t)));
        _mm256_storeu_ps(vals + t, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
    }
    for (; t < cnt; t++) vals[t] = bits_to_f((uint32_t)ld16(src, t) << 16);
}

/* cnt float16 bit patterns at src (any alignment) as float32 by vcvtph2ps, 8 at a time, the
 * rest by the product's table `tab`: what convert() writes for MODE_F16 through the table
 * alone (a 256 KiB one, a lookup a value: 4096x4096 2:4 at batch 8, 9.4-9.7 -> 6.0-9.0 ms a
 * layer, batch 64 18.2-21.5 -> 14.1-14.9; docs/compute.md, thirty-sixth session). The
 * conversion is exact; a signalling NaN comes out quiet, as the GEMV's in-register widening
 * gives it. */
SC_TARGET("avx2,f16c") static void f16_to_f32_f16c(const char *src, int64_t cnt,
                                                   const float *tab, float *vals) {
    int64_t t = 0;
    for (; t + 8 <= cnt; t += 8)
        _mm256_storeu_ps(vals + t, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + 2 * t))));
    for (; t < cnt; t++) vals[t] = tab[ld16(src, t)];
}

/* x reordered for nm24_gather: in every step of 4 groups q .. q+3 (16 columns), the columns
 * of groups q, q+2, q+1, q+3, so that one 32-byte load holds groups q and q+2 (one per
 * 128-bit lane) and the next q+1 and q+3. The first `full` groups of each of the nb rows. */
SC_TARGET("avx2") static void nm24_lane_order(const float *x, int64_t cols, int64_t nb,
                                              int64_t full, float *xp) {
    for (int64_t b = 0; b < nb; b++, x += cols, xp += full * 4)
        for (int64_t q = 0; q < full; q += 4) {
            const __m256 a = _mm256_loadu_ps(x + 4 * q), c = _mm256_loadu_ps(x + 4 * q + 8);
            _mm256_storeu_ps(xp + 4 * q, _mm256_permute2f128_ps(a, c, 0x20));
            _mm256_storeu_ps(xp + 4 * q + 8, _mm256_permute2f128_ps(a, c, 0x31));
        }
}

/* The x of the 8 kept values of groups q .. q+3 in the values' order, from xp = the step's
 * 16 columns in nm24_lane_order: each 128-bit lane's two kept columns moved to its front by
 * an in-lane shuffle (ia: lane_pair of codes q, q+2; ib: of q+1, q+3), then the fronts
 * interleaved: [q | q+1 || q+2 | q+3]. In-lane shuffles, not lane-crossing permutes
 * (vpermps), which on an AMD Zen 3 core made the 2:4 GEMV 10-20% slower. */
SC_TARGET("avx2,fma") SC_INLINE __m256 nm24_gather(const float *xp, __m256i ia, __m256i ib) {
    return _mm256_shuffle_ps(_mm256_permutevar_ps(_mm256_loadu_ps(xp), ia),
                             _mm256_permutevar_ps(_mm256_loadu_ps(xp + 8), ib), 0x44);
}

/* 8 bfloat16 bit patterns at src as float32 (a shift). */
SC_TARGET("avx2") SC_INLINE __m256 bf16x8(const char *src) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)src));
    return _mm256_castsi256_ps(_mm256_slli_epi32(w, 16));
}

/* 8 float16 (f16, exact) or bfloat16 values at src as float32, where `f16` is in scope. */
#define NM24_V8(at)                                                                            \
    (f16 ? _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(at))) : bf16x8(at))

/* The whole steps of one 2:4 row against nc (1 to NM24_MAX_NB) rows of x (groups 0 ..
 * full-1; xp, xp + stride, ...: the rows in nm24_lane_order; poff: the byte offsets in
 * nm24_lane_pair of the code pairs (q, q+2), (q+1, q+3) of each step of 4 groups q), into h[c]:
 * per column two accumulators, even and odd steps, the leftover step into the first, summed as
 * nm24_hsum sums (the scalar twin's order). The values are float32 (vals), or, with src not
 * NULL, bfloat16 read and widened in registers, never stored as float32: batch 1 reads them
 * once, so a converting pass would be a quarter more loads and stores. The columns share the
 * row's selectors and values, loaded once a step; a pass a column read them nc
 * times (4096x4096 bfloat16, ms a layer: batch 2 4.1-4.7 -> 2.5-2.8, batch 3 5.7 -> 3.2-3.3,
 * batch 4 6.7-7.1 -> 3.7-3.8). Inlined with nc and src constants (NULL or not), the
 * accumulators stay in registers and one loop serves every case. */
SC_TARGET("avx2,fma,f16c") SC_INLINE void nm24_dot_cols(const float *xp, int64_t stride, int nc,
                                                        const uint32_t *poff, int64_t full,
                                                        const char *src, const float *vals,
                                                        float *h, int f16) {
    const char *pairs = (const char *)nm24_lane_pair;
    __m256 a[NM24_MAX_NB][2];
    for (int c = 0; c < nc; c++) a[c][0] = a[c][1] = _mm256_setzero_ps();
#define NM24_LANES(k) _mm256_loadu_si256((const __m256i *)(pairs + o[k]))
    int64_t q = 0;
    for (; q + 8 <= full; q += 8) {
        if (src && !(q & 15)) /* 64 bytes of values every other step; see bf16_to_f32_avx2 */
            __builtin_prefetch((const void *)((uintptr_t)src + 4 * (uintptr_t)q + BF16_AHEAD));
        const uint32_t *o = poff + q / 2;
        const __m256i i0 = NM24_LANES(0), i1 = NM24_LANES(1), i2 = NM24_LANES(2),
                      i3 = NM24_LANES(3);
        const __m256 v0 = src ? NM24_V8(src + 4 * q) : _mm256_loadu_ps(vals + q * 2);
        const __m256 v1 = src ? NM24_V8(src + 4 * q + 16) : _mm256_loadu_ps(vals + q * 2 + 8);
        for (int c = 0; c < nc; c++) {
            const float *xq = xp + c * stride + q * 4;
            a[c][0] = _mm256_fmadd_ps(v0, nm24_gather(xq, i0, i1), a[c][0]);
            a[c][1] = _mm256_fmadd_ps(v1, nm24_gather(xq + 16, i2, i3), a[c][1]);
        }
    }
    if (q < full) { /* one step of 4 groups left: an even step, into a[c][0] */
        const uint32_t *o = poff + q / 2;
        const __m256i i0 = NM24_LANES(0), i1 = NM24_LANES(1);
        const __m256 v0 = src ? NM24_V8(src + 4 * q) : _mm256_loadu_ps(vals + q * 2);
        for (int c = 0; c < nc; c++)
            a[c][0] = _mm256_fmadd_ps(v0, nm24_gather(xp + c * stride + q * 4, i0, i1), a[c][0]);
    }
#undef NM24_LANES
    for (int c = 0; c < nc; c++) {
        float sum8[8];
        _mm256_storeu_ps(sum8, _mm256_add_ps(a[c][0], a[c][1]));
        h[c] = nm24_hsum(sum8);
    }
}

/* nm24_dot_cols of one column. */
SC_TARGET("avx2,fma,f16c") SC_INLINE float nm24_dot(const float *xp, const uint32_t *poff,
                                                    int64_t full, const char *src,
                                                    const float *vals, int f16) {
    float h;
    nm24_dot_cols(xp, 0, 1, poff, full, src, vals, &h, f16);
    return h;
}

/* Two rows of 2:4 against one row of x: nm24_dot of (pa, sa) and of (pb, sb), interleaved.
 * Each row's sums are those nm24_dot makes, in the same order; the two rows share the loads of
 * x and give the core two independent chains of loads and multiply-adds. */
SC_TARGET("avx2,fma,f16c") SC_INLINE void nm24_dot2(const float *xp, const uint32_t *pa,
                                                    const uint32_t *pb, int64_t full,
                                                    const char *sa, const char *sb, float *h,
                                                    int f16) {
    const char *pairs = (const char *)nm24_lane_pair;
    __m256 a0 = _mm256_setzero_ps(), a1 = a0, b0 = a0, b1 = a0;
#define NM24_LANES(o, k) _mm256_loadu_si256((const __m256i *)(pairs + (o)[k]))
#define NM24_PAIR(x0, x1, o, k)                                                               \
    _mm256_shuffle_ps(_mm256_permutevar_ps(x0, NM24_LANES(o, k)),                               \
                      _mm256_permutevar_ps(x1, NM24_LANES(o, (k) + 1)), 0x44)
    int64_t q = 0;
    for (; q + 8 <= full; q += 8) {
        if (!(q & 15)) { /* see nm24_dot */
            __builtin_prefetch((const void *)((uintptr_t)sa + 4 * (uintptr_t)q + BF16_AHEAD));
            __builtin_prefetch((const void *)((uintptr_t)sb + 4 * (uintptr_t)q + BF16_AHEAD));
        }
        const uint32_t *o = pa + q / 2, *p = pb + q / 2;
        const float *xq = xp + q * 4;
        const __m256 x0 = _mm256_loadu_ps(xq), x1 = _mm256_loadu_ps(xq + 8);
        const __m256 x2 = _mm256_loadu_ps(xq + 16), x3 = _mm256_loadu_ps(xq + 24);
        a0 = _mm256_fmadd_ps(NM24_V8(sa + 4 * q), NM24_PAIR(x0, x1, o, 0), a0);
        b0 = _mm256_fmadd_ps(NM24_V8(sb + 4 * q), NM24_PAIR(x0, x1, p, 0), b0);
        a1 = _mm256_fmadd_ps(NM24_V8(sa + 4 * q + 16), NM24_PAIR(x2, x3, o, 2), a1);
        b1 = _mm256_fmadd_ps(NM24_V8(sb + 4 * q + 16), NM24_PAIR(x2, x3, p, 2), b1);
    }
    if (q < full) { /* one step of 4 groups left: an even step, into a0 and b0 */
        const uint32_t *o = pa + q / 2, *p = pb + q / 2;
        const __m256 x0 = _mm256_loadu_ps(xp + q * 4), x1 = _mm256_loadu_ps(xp + q * 4 + 8);
        a0 = _mm256_fmadd_ps(NM24_V8(sa + 4 * q), NM24_PAIR(x0, x1, o, 0), a0);
        b0 = _mm256_fmadd_ps(NM24_V8(sb + 4 * q), NM24_PAIR(x0, x1, p, 0), b0);
    }
#undef NM24_PAIR
#undef NM24_LANES
    float sum8[8];
    _mm256_storeu_ps(sum8, _mm256_add_ps(a0, a1));
    h[0] = nm24_hsum(sum8);
    _mm256_storeu_ps(sum8, _mm256_add_ps(b0, b1));
    h[1] = nm24_hsum(sum8);
}

/* Row r's codes (codes, count gpr + 8) and the byte offsets in nm24_lane_pair of its code
 * pairs (poff), then the check that its values lie in the section: SC_BAD_FRAME if not. */
SC_TARGET("avx2") static int nm24_row_prep(const nm_job *J, int64_t r, uint8_t *codes,
                                           uint16_t *tmp, uint32_t *poff) {
    const int64_t gpr = J->gpr, full = (J->P.cols / 16) * 4;
    int err = row_codes24(J, r * gpr, gpr, codes, tmp, nm24_codes48_avx2);
    if (err) return err;
    /* the table row of each pair (a, b) = codes (q, q+2) and (q+1, q+3) of a step of 4 groups
     * q, in bytes: (6 a + b) * 32; sixteen pairs at once by reordering the codes of each step
     * (pshufb) and one multiply-add of byte pairs (maddubs), the rest one by one */
    int64_t i = 0;
    const __m256i six_one = _mm256_set1_epi16(0x0106); /* bytes 6, 1: 6 a + b per pair */
    const __m256i order = _mm256_setr_epi8(0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15,
                                           0, 2, 1, 3, 4, 6, 5, 7, 8, 10, 9, 11, 12, 14, 13, 15);
    for (; i + 16 <= full / 2; i += 16) {
        __m256i c = _mm256_shuffle_epi8(_mm256_loadu_si256((const __m256i *)(codes + 2 * i)),
                                        order);
        __m256i row = _mm256_slli_epi16(_mm256_maddubs_epi16(c, six_one), 5);
        _mm256_storeu_si256((__m256i *)(poff + i),
                            _mm256_cvtepu16_epi32(_mm256_castsi256_si128(row)));
        _mm256_storeu_si256((__m256i *)(poff + i + 8),
                            _mm256_cvtepu16_epi32(_mm256_extracti128_si256(row, 1)));
    }
    for (; i < full / 2; i++) { /* pair i: codes 2i and 2i+2 (even i), 2i-1 and 2i+1 */
        const int64_t a = i & 1 ? 2 * i - 1 : 2 * i;
        poff[i] = (uint32_t)((codes[a] * 6 + codes[a + 2]) * 32);
    }
    return r * gpr * 2 + gpr * 2 > J->P.nvals ? SC_BAD_FRAME : 0;
}

/* The values of row src (its first; mode MODE_BF16, MODE_F16 or MODE_FLOATS) past the full
 * groups into vals[2 full .. 2 gpr) as float32, for nm24_tail: widened, or copied (float32
 * values may lie at any address in the frame, where nm24_tail's loads are typed). */
SC_INLINE void nm24_tail_vals(const nm_job *J, const char *src, float *vals, int64_t full,
                              int mode) {
    const int64_t gpr = J->gpr;
    if (mode == MODE_BF16)
        bf16_to_f32_avx2(src + 4 * full, 2 * (gpr - full), vals + 2 * full);
    else if (mode == MODE_F16)
        f16_to_f32_f16c(src + 4 * full, 2 * (gpr - full), J->P.vtab, vals + 2 * full);
    else
        memcpy(vals + 2 * full, src + 8 * full, (size_t)(gpr - full) * 8);
}

/* y[b] = h[b] + the row's tail against row b of x, for each of the product's nb rows of x,
 * as nm24_tail adds it (vals: the row's values as float32 past its full groups; codes: its
 * codes). */
SC_INLINE int nm24_tails(const nm_job *J, const float *vals, const uint8_t *codes,
                         int64_t full, const float *h, float *y) {
    for (int64_t b = 0; b < J->P.nb; b++) {
        float tail = 0.0f;
        const int err = nm24_tail(J, J->xrows + b * J->P.cols, vals, codes, full, &tail);
        if (err) return err;
        y[b] = h[b] + tail;
    }
    return 0;
}

/* nm24_tails of row src (codes: its codes; vals: scratch), its tail widened into vals first. */
SC_INLINE int nm24_finish(const nm_job *J, const char *src, const uint8_t *codes, float *vals,
                          int64_t full, const float *h, float *y, int mode) {
    nm24_tail_vals(J, src, vals, full, mode);
    return nm24_tails(J, vals, codes, full, h, y);
}

/* Batch 1 on 16-bit float values (f16: float16, else bfloat16) read where they lie, no
 * float32 copy of the row: row *r, and *r + 1 with it when that row checks out (then *r
 * advances); a next row that does not is done on its own turn, after this one, so errors come
 * in row order. Float16 rows were widened into float32 first: 4096x4096, 3.8 -> 1.9 ms a
 * layer (docs/compute.md, thirty-fifth session). */
SC_TARGET("avx2,fma,f16c") SC_INLINE int nm24_b1_rows16(
        const nm_job *J, int64_t *r, int64_t r1, const float *xp, uint8_t *codes,
        uint8_t *codes2, uint32_t *poff, uint32_t *poff2, scratch_t *s, int64_t full, int f16) {
    const int64_t gpr = J->gpr;
    const char *src = (const char *)J->P.vbits + 4 * *r * gpr;
    float *y = J->P.yt + *r;
    const int mode = f16 ? MODE_F16 : MODE_BF16;
#define NM24_FINISH(at, c, hv, yp) nm24_finish(J, at, c, s->vals, full, hv, yp, mode)
    if (*r + 1 < r1 && !nm24_row_prep(J, *r + 1, codes2, s->codes, poff2)) {
        float h[2];
        nm24_dot2(xp, poff, poff2, full, src, src + 4 * gpr, h, f16);
        const int err = NM24_FINISH(src, codes, h, y);
        if (err) return err;
        ++*r;
        return NM24_FINISH(src + 4 * gpr, codes2, h + 1, y + 1);
    }
    const float h = nm24_dot(xp, poff, full, src, NULL, f16);
    return NM24_FINISH(src, codes, &h, y);
#undef NM24_FINISH
}

SC_TARGET("avx2,fma,f16c")
static int64_t nm24_rows_avx2(const void *job, int64_t r0, int64_t r1) {
    const nm_job *J = (const nm_job *)job;
    const prod_t *P = &J->P;
    const int64_t gpr = J->gpr, nb = P->nb, cols = P->cols, full = (cols / 16) * 4;
    const int mode = P->mode;
    scratch_t s;
    int64_t err = scratch_alloc(&s, gpr * 2, nb, gpr);
    uint8_t *codes = err ? NULL : malloc(2 * ((size_t)gpr + 8)); /* two rows' */
    uint32_t *poff = err ? NULL : malloc(2 * ((size_t)gpr / 2 + 16) * 4); /* pair offsets */
    float *xp = err ? NULL : malloc(((size_t)nb * full * 4 + 1) * 4); /* x in lane order */
    if (!err && (!codes || !poff || !xp)) err = SC_NOMEM;
    if (!err) nm24_lane_order(J->xrows, cols, nb, full, xp);
    uint8_t *codes2 = err ? NULL : codes + gpr + 8;        /* the second row's */
    uint32_t *poff2 = err ? NULL : poff + gpr / 2 + 16;
    for (int64_t r = r0; r < r1 && !err; r++) {
        if ((err = nm24_row_prep(J, r, codes, s.codes, poff))) break;
        const int64_t v0 = r * gpr * 2;
        if (nb == 1 && (mode == MODE_BF16 || mode == MODE_F16)) { /* one pass, two rows */
            err = mode == MODE_F16
                      ? nm24_b1_rows16(J, &r, r1, xp, codes, codes2, poff, poff2, &s, full, 1)
                      : nm24_b1_rows16(J, &r, r1, xp, codes, codes2, poff, poff2, &s, full, 0);
            continue;
        }
        /* the values: bfloat16 and float16 read where they lie (the tail widened into
         * s.vals for nm24_tail), float32 copied into s.vals */
        const char *src = NULL;
        if (mode == MODE_BF16 || mode == MODE_F16) {
            src = (const char *)P->vbits + 2 * v0;
            nm24_tail_vals(J, src, s.vals, full, mode);
        } else {
            memcpy(s.vals, P->vf + v0, (size_t)gpr * 2 * 4);
        }
        float h[NM24_MAX_NB];
        const int f16 = mode == MODE_F16; /* each call below inlined with it constant */
#define NM24_COLS(k)                                                                           \
    (f16 ? nm24_dot_cols(xp, full * 4, k, poff, full, src, s.vals, h, 1)                       \
         : nm24_dot_cols(xp, full * 4, k, poff, full, src, s.vals, h, 0))
        if (nb == 1) /* float32's batch 1 */
            h[0] = nm24_dot(xp, poff, full, NULL, s.vals, 0);
        else if (nb == 2)
            NM24_COLS(2);
        else if (nb == 3)
            NM24_COLS(3);
        else
            NM24_COLS(4);
#undef NM24_COLS
        err = nm24_tails(J, s.vals, codes, full, h, P->yt + r * nb);
    }
    free(codes);
    free(poff);
    free(xp);
    scratch_free(&s);
    return err ? err : (r1 - r0) * (cols / 4 * 2 + (cols % 4 < 2 ? cols % 4 : 2));
}

/* The 2:4 GEMV at batch 1 to 4, AVX-512 (bfloat16, float16 and float32 values): the AVX2
 * path's sums (its two accumulators a column are the low and high halves of one 512-bit one,
 * a step of 8 groups filling both), with fewer shuffles a kept value. The AVX2 path spends four
 * shuffle-port uops on 8 bfloat16 values (two vpermilps, a vshufps, the widening of the
 * values); here it is three on 16: the widening, the index's widening and one two-source
 * vpermt2ps that takes each value's x from the step's 32 columns in their own order (no
 * lane-ordered copy of x). Float16 and float32 values are read where they lie too, where the
 * AVX2 path copies each row into float32 first. On an Intel Xeon, 4096x4096 over a stack of
 * layers, one thread, ms a layer: bfloat16 2.76-2.77 -> 1.88-2.11 (0.58-0.68x -> 0.48-0.55x
 * torch's dense time), float16 3.68-4.09 -> 1.81-2.23, float32 4.40-5.05 -> 3.31-3.61
 * (docs/compute.md, thirty-fifth session). Batches 2-4 share a row's index and values between
 * the columns of x (bfloat16, 4096x4096, batch 4: 4.58-6.04 -> 2.97-3.09 ms; thirty-sixth
 * session). */

/* Row r's codes (codes, gpr + 40 bytes) and each full group's two kept columns as bytes
 * (cix, 2 a group): 4 (g mod 8) + the code's positions, the index vpermt2ps reads in a step
 * of 8 groups (one 128-bit lane of the 512-bit vectors here: 32 groups an iteration); then
 * nm24_row_prep's check that the row's values lie in the section. */
SC_TARGET("avx512f,avx512bw,avx512vl,avx2,fma") static int nm24_row_prep512(
        const nm_job *J, int64_t r, uint8_t *codes, uint16_t *tmp, uint8_t *cix) {
    const int64_t gpr = J->gpr, full = (J->P.cols / 16) * 4;
    int err = row_codes24(J, r * gpr, gpr, codes, tmp, nm24_codes48_avx2);
    if (err) return err;
    const __m512i second = _mm512_set1_epi16(0x0600); /* a word's high byte: the second kept */
    const __m512i at = _mm512_broadcast_i32x4(
        _mm_setr_epi8(0, 0, 4, 4, 8, 8, 12, 12, 16, 16, 20, 20, 24, 24, 28, 28));
    /* bytes 0..5: the first kept position of codes 0..5, 6..11 the second (nm24_pos) */
    const __m512i pos = _mm512_broadcast_i32x4(
        _mm_setr_epi8(0, 0, 0, 1, 1, 2, 1, 2, 3, 2, 3, 3, 0, 0, 0, 0));
    for (int64_t q = 0; q < full; q += 32) { /* past full (up to 28 groups): bytes unused,
                                              * within codes' 40 spare bytes and cix's */
        __m512i w = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i *)(codes + q)));
        w = _mm512_add_epi8(_mm512_or_si512(w, _mm512_slli_epi16(w, 8)), second);
        _mm512_storeu_si512((void *)(cix + 2 * q),
                            _mm512_add_epi8(_mm512_shuffle_epi8(pos, w), at));
    }
    return r * gpr * 2 + gpr * 2 > J->P.nvals ? SC_BAD_FRAME : 0;
}

/* Rows ra (and rb, with two) against the NC rows of x (x, `xs` floats apart): the full
 * groups' sums of nm24_dot_cols, in its order: lanes 0-7 of a column's accumulator are its
 * even steps' (a[c][0] there), 8-15 its odd steps', a leftover step of 4 groups into lanes 0-7
 * only. The rows share the loads of x, the columns a row's values and index. The values (sa,
 * sb: the rows' first) are read where they lie, as the product's mode VM says: MODE_BF16
 * widened by a shift, MODE_F16 by vcvtph2ps (exact), MODE_FLOATS as they are. ha, hb: the
 * rows' NC sums. */

SC_TARGET("avx512f,avx512bw,avx512vl,avx2,fma") SC_INLINE __m512 nm24_vals16(const char *s,
                                                                            int64_t q, int VM) {
    if (VM == MODE_FLOATS) return _mm512_loadu_ps((const float *)s + 2 * q);
    const __m256i h = _mm256_loadu_si256((const __m256i *)(s + 4 * q));
    if (VM == MODE_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

/* The 8 values of a leftover step of 4 groups in lanes 0-7 (8-15 zero). */
SC_TARGET("avx512f,avx512bw,avx512vl,avx2,fma") SC_INLINE __m512 nm24_vals8(const char *s,
                                                                           int64_t q, int VM) {
    if (VM == MODE_FLOATS) return _mm512_maskz_loadu_ps(0x00FF, (const float *)s + 2 * q);
    const __m256i h = _mm256_zextsi128_si256(_mm_loadu_si128((const __m128i *)(s + 4 * q)));
    if (VM == MODE_F16) return _mm512_cvtph_ps(h);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
}

SC_TARGET("avx512f,avx512bw,avx512vl,avx2,fma") SC_INLINE void nm24_dot512(
        const float *x, int64_t xs, const int NC, int64_t full, const int two, const uint8_t *ca,
        const char *sa, const uint8_t *cb, const char *sb, float *ha, float *hb, int VM) {
    const int64_t vb = VM == MODE_FLOATS ? 8 : 4; /* value bytes a group */
    __m512 a[NM24_MAX_NB], b[NM24_MAX_NB];
    for (int c = 0; c < NC; c++) a[c] = b[c] = _mm512_setzero_ps();
#define NM24_IDX(cc, q) _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i *)((cc) + 2 * (q))))
    int64_t q = 0;
    for (; q + 8 <= full; q += 8) {
        if (!(q & (VM == MODE_FLOATS ? 7 : 15))) { /* a 64-byte line of values ahead, each
                                                     * line; see bf16_to_f32_avx2 */
            __builtin_prefetch((const void *)((uintptr_t)sa + vb * (uintptr_t)q + BF16_AHEAD));
            if (two)
                __builtin_prefetch((const void *)((uintptr_t)sb + vb * (uintptr_t)q + BF16_AHEAD));
        }
        const __m512i ia = NM24_IDX(ca, q);
        const __m512 va = nm24_vals16(sa, q, VM);
        const __m512i ib = two ? NM24_IDX(cb, q) : ia;
        const __m512 vbv = two ? nm24_vals16(sb, q, VM) : va;
        for (int c = 0; c < NC; c++) {
            const float *xq = x + c * xs + 4 * q;
            const __m512 x0 = _mm512_loadu_ps(xq), x1 = _mm512_loadu_ps(xq + 16);
            a[c] = _mm512_fmadd_ps(va, _mm512_permutex2var_ps(x0, ia, x1), a[c]);
            if (two) b[c] = _mm512_fmadd_ps(vbv, _mm512_permutex2var_ps(x0, ib, x1), b[c]);
        }
    }
    if (q < full) { /* 4 groups (q is a multiple of 8: their indices are below 16) */
        const __m512i ia = NM24_IDX(ca, q);
        const __m512 va = nm24_vals8(sa, q, VM);
        const __m512i ib = two ? NM24_IDX(cb, q) : ia;
        const __m512 vbv = two ? nm24_vals8(sb, q, VM) : va;
        for (int c = 0; c < NC; c++) {
            const __m512 x0 = _mm512_loadu_ps(x + c * xs + 4 * q);
            a[c] = _mm512_mask3_fmadd_ps(va, _mm512_permutexvar_ps(ia, x0), a[c], 0x00FF);
            if (two)
                b[c] = _mm512_mask3_fmadd_ps(vbv, _mm512_permutexvar_ps(ib, x0), b[c], 0x00FF);
        }
    }
#undef NM24_IDX
#define NM24_HI(v) _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))
    for (int c = 0; c < NC; c++) {
        float sum8[8];
        _mm256_storeu_ps(sum8, _mm256_add_ps(_mm512_castps512_ps256(a[c]), NM24_HI(a[c])));
        ha[c] = nm24_hsum(sum8);
        if (two) {
            _mm256_storeu_ps(sum8, _mm256_add_ps(_mm512_castps512_ps256(b[c]), NM24_HI(b[c])));
            hb[c] = nm24_hsum(sum8);
        }
    }
#undef NM24_HI
}

/* Rows ra and rb (with two) against the NB rows of x: nm24_dot512 with NB constant. */
SC_TARGET("avx512f,avx512bw,avx512vl,avx2,fma") SC_INLINE void nm24_dots512(
        const nm_job *J, const int NB, int64_t full, const int two, const uint8_t *ca,
        const char *sa, const uint8_t *cb, const char *sb, float *ha, float *hb, int VM) {
    const float *x = J->xrows;
    const int64_t xs = J->P.cols;
    if (NB == 1)
        nm24_dot512(x, xs, 1, full, two, ca, sa, cb, sb, ha, hb, VM);
    else if (NB == 2)
        nm24_dot512(x, xs, 2, full, two, ca, sa, cb, sb, ha, hb, VM);
    else if (NB == 3)
        nm24_dot512(x, xs, 3, full, two, ca, sa, cb, sb, ha, hb, VM);
    else
        nm24_dot512(x, xs, 4, full, two, ca, sa, cb, sb, ha, hb, VM);
}

/* The rows [r0, r1) in value mode VM against the NB (1 to 4) rows of x (constants where
 * this is inlined). */
SC_TARGET("avx512f,avx512bw,avx512vl,avx2,fma") SC_INLINE int64_t nm24_rows512(
        const nm_job *J, int64_t r0, int64_t r1, int VM, const int NB) {
    const prod_t *P = &J->P;
    const int64_t gpr = J->gpr, cols = P->cols, full = (cols / 16) * 4;
    const int64_t rb = (VM == MODE_FLOATS ? 8 : 4) * gpr; /* value bytes a row */
    const char *base = VM == MODE_FLOATS ? (const char *)P->vf : (const char *)P->vbits;
    scratch_t s;
    int64_t err = scratch_alloc(&s, gpr * 2, 1, gpr);
    uint8_t *codes = err ? NULL : calloc(2 * ((size_t)gpr + 40), 1); /* two rows' (read past
                                                                    * gpr by the prep: zeros) */
    uint8_t *cix = err ? NULL : malloc(2 * (2 * (size_t)gpr + 64)); /* their column bytes */
    if (!err && (!codes || !cix)) err = SC_NOMEM;
    uint8_t *codes2 = err ? NULL : codes + gpr + 40, *cix2 = err ? NULL : cix + 2 * gpr + 64;
    for (int64_t r = r0; r < r1 && !err; r++) {
        if ((err = nm24_row_prep512(J, r, codes, s.codes, cix))) break;
        const char *src = base + rb * r;
        float ha[NM24_MAX_NB], hb[NM24_MAX_NB];
        /* two rows at a time; a next row that does not check out is done on its own turn,
         * after this one, so errors come in row order (as nm24_rows_avx2) */
        if (r + 1 < r1 && !nm24_row_prep512(J, r + 1, codes2, s.codes, cix2)) {
            nm24_dots512(J, NB, full, 1, cix, src, cix2, src + rb, ha, hb, VM);
            if ((err = nm24_finish(J, src, codes, s.vals, full, ha, P->yt + r * NB, VM)))
                break;
            r++;
            err = nm24_finish(J, src + rb, codes2, s.vals, full, hb, P->yt + r * NB, VM);
            continue;
        }
        nm24_dots512(J, NB, full, 0, cix, src, NULL, NULL, ha, hb, VM);
        err = nm24_finish(J, src, codes, s.vals, full, ha, P->yt + r * NB, VM);
    }
    free(codes);
    free(cix);
    scratch_free(&s);
    return err ? err : (r1 - r0) * (cols / 4 * 2 + (cols % 4 < 2 ? cols % 4 : 2));
}

/* nm24_rows512 at batch NB, for each value mode: nm24_rows_{bf16,f16,f32}_avx512_NB */
#define NM512(NB)                                                                              \
    SC_TARGET("avx512f,avx512bw,avx512vl,avx2,fma") static int64_t nm24_rows_bf16_avx512_##NB( \
        const void *job, int64_t r0, int64_t r1) {                                             \
        return nm24_rows512((const nm_job *)job, r0, r1, MODE_BF16, NB);                       \
    }                                                                                          \
    SC_TARGET("avx512f,avx512bw,avx512vl,avx2,fma") static int64_t nm24_rows_f16_avx512_##NB(  \
        const void *job, int64_t r0, int64_t r1) {                                             \
        return nm24_rows512((const nm_job *)job, r0, r1, MODE_F16, NB);                        \
    }                                                                                          \
    SC_TARGET("avx512f,avx512bw,avx512vl,avx2,fma") static int64_t nm24_rows_f32_avx512_##NB(  \
        const void *job, int64_t r0, int64_t r1) {                                             \
        return nm24_rows512((const nm_job *)job, r0, r1, MODE_FLOATS, NB);                     \
    }
NM512(1)
NM512(2)
NM512(3)
NM512(4)
#undef NM512
#define NM512(NB) {nm24_rows_bf16_avx512_##NB, nm24_rows_f16_avx512_##NB, nm24_rows_f32_avx512_##NB}
/* [nb - 1][bfloat16, float16, float32] */
static const rows_fn nm24_avx512[NM24_MAX_NB][3] = {NM512(1), NM512(2), NM512(3), NM512(4)};
#undef NM512
#endif

/* The rows [r0, r0 + n) of the block: their codes (gpr + 8 bytes a row) and kept counts less
 * trailing padding (checked zero); 0 or an error, row by row as nm_rows reports them. */
SC_INLINE int nm24_block_codes(const nm_job *J, scratch_t *s, int64_t r0, int64_t n,
                            uint8_t *codes, int64_t *cnts, codes48_fn codes48) {
    const prod_t *P = &J->P;
    const int64_t gpr = J->gpr, cols = P->cols;
    for (int64_t i = 0; i < n; i++) {
        const int64_t r = r0 + i;
        uint8_t *rc = codes + i * (gpr + 8);
        int err = row_codes24(J, r * gpr, gpr, rc, s->codes, codes48);
        if (err) return err;
        const int64_t v0 = r * gpr * 2;
        int64_t cnt = gpr * 2;
        if (v0 + cnt > P->nvals) return SC_BAD_FRAME;
        while (cnt && 4 * ((cnt - 1) / 2) + nm24_pos[rc[(cnt - 1) / 2]][(cnt - 1) & 1] >= cols) {
            cnt--; /* padding slots hold zeros */
            if (rd_uint(P->vbits, P->vsize, v0 + cnt) != 0) err = SC_BAD_PAD;
        }
        if (err) return err;
        cnts[i] = cnt;
    }
    return 0;
}

#if SC_X86
/* 2:4, NM24_MAX_NB < nb <= 8, not transposed: nm_rows and the SpMM fused (AVX2 only; the
 * generic path is its scalar twin). The row's codes give each kept value's column directly,
 * with no column scratch: kept value t (of group t / 2) times row cidx(t) of xt into chain
 * t % 4, the chains added as (c0 + c1) + (c2 + c3), exactly as spmm_rest_avx2 and
 * spmm_row_scalar do, and the trailing padding slots dropped (and checked zero) as nm_rows
 * drops them.
 *
 * Row by row, every row read all of xt (cols x nb floats: 128 KiB at 4096 columns), from L2:
 * that bandwidth, not the multiply-adds, bounded the product. So rows are decoded
 * SPMM8_ROWS at a time and run column block by column block (SPMM8_COLS columns of xt, 16 KiB
 * at nb 8, read from L1 by every row of the block), each row's four chains kept in memory
 * between blocks. A block starts at an even group, so a chain takes the same kept values in the
 * same order as row by row: the same bytes.
 *
 * Loads bound the inner loop: per kept value a code byte and a table entry for its offset,
 * a broadcast of the value and its row of xt (3.5 a value). With the offsets made once a row
 * (nm24_value_offsets, one 32-bit word for four values) and four values broadcast from one
 * 128-bit load by in-lane shuffles, it is 1.5: 4096x4096 at batch 8, 5.7 -> 4.0 ms a layer.
 * Two rows' steps interleaved (eight chains, not four) were no faster with the offsets taken
 * from a 64-bit word by shifts; with each offset a byte load, bfloat16 rows go in pairs
 * (nm24_spmm8_pair). At batch 3 and 4 it took 4.1-4.5 ms, the GEMV's one pass over every
 * column (nm24_dot_cols) 3.2-3.8. */
#define SPMM8_ROWS 16
#define SPMM8_COLS 512 /* a multiple of 8: blocks start at even groups (t % 4 == 0) */

/* A row's kept values' rows of xt as offsets (floats) from their step's first group's row
 * (steps of 4 values, two groups): value t at (t & 2 ? 4 nb : 0) + pos nb, pos its column in
 * its group (nm24_pos): at most 7 nb <= 56, a byte. Sixteen groups a step by two byte shuffles
 * of the codes, the rest one by one. */
SC_TARGET("avx2") static void nm24_value_offsets(const uint8_t *codes, int64_t groups,
                                                 int64_t nb, uint8_t *po) {
    uint8_t t0[16] = {0}, t1[16] = {0};
    for (int c = 0; c < 6; c++) {
        t0[c] = (uint8_t)(nm24_pos[c][0] * nb);
        t1[c] = (uint8_t)(nm24_pos[c][1] * nb);
    }
    const __m128i lo = _mm_loadu_si128((const __m128i *)t0);
    const __m128i hi = _mm_loadu_si128((const __m128i *)t1);
    const uint32_t odd = (uint32_t)(4 * nb); /* the second group of a step: bytes 2, 3 */
    const __m128i step = _mm_set1_epi32((int)(odd << 16 | odd << 24));
    int64_t q = 0;
    for (; q + 16 <= groups; q += 16) {
        const __m128i c = _mm_loadu_si128((const __m128i *)(codes + q));
        const __m128i a = _mm_shuffle_epi8(lo, c), b = _mm_shuffle_epi8(hi, c);
        _mm_storeu_si128((__m128i *)(po + 2 * q), _mm_add_epi8(_mm_unpacklo_epi8(a, b), step));
        _mm_storeu_si128((__m128i *)(po + 2 * q + 16),
                         _mm_add_epi8(_mm_unpackhi_epi8(a, b), step));
    }
    for (; q < groups; q++) {
        po[2 * q] = (uint8_t)(t0[codes[q]] + (q & 1) * 4 * nb);
        po[2 * q + 1] = (uint8_t)(t1[codes[q]] + (q & 1) * 4 * nb);
    }
}

/* Kept values t .. e - 1 of a row (t % 4 == 0, e <= cnt; po: the row's offsets,
 * nm24_value_offsets) into its chains c[0..3]; with e == cnt, the row's last 1-3 values too.
 * The values are float32 in vb, or, with src not NULL, bfloat16 at src (value t first),
 * widened in registers eight at a time (a converting pass into vb cost a tenth of the
 * kernel: 4096x4096 at batch 8, 4.2-4.6 -> 3.8-4.1 ms a layer). */
/* Four kept values into their chains c[0..3], value k in every lane by an in-lane shuffle of
 * x4 (the four in each 128-bit half), times its row of xt at x + o[k] (o: its offset byte,
 * nm24_value_offsets) read by LOAD. */
#define NM24_STEP(c, x4, x, o, LOAD)                                                          \
    do {                                                                                      \
        c[0] = _mm256_fmadd_ps(_mm256_permute_ps(x4, 0x00), LOAD((x) + (o)[0]), c[0]);        \
        c[1] = _mm256_fmadd_ps(_mm256_permute_ps(x4, 0x55), LOAD((x) + (o)[1]), c[1]);        \
        c[2] = _mm256_fmadd_ps(_mm256_permute_ps(x4, 0xAA), LOAD((x) + (o)[2]), c[2]);        \
        c[3] = _mm256_fmadd_ps(_mm256_permute_ps(x4, 0xFF), LOAD((x) + (o)[3]), c[3]);        \
    } while (0)

SC_TARGET("avx2,fma") SC_INLINE void nm24_spmm8_span(const float *xt, int64_t nb,
                                                      const float *vb, const char *src,
                                                      const uint8_t *po, int64_t t, int64_t e,
                                                      int64_t cnt, __m256i lanes, int full,
                                                      float *c) {
#define NM24_LOAD(p) (full ? _mm256_loadu_ps(p) : _mm256_maskload_ps((p), lanes))
    __m256 ch[4];
    for (int k = 0; k < 4; k++) ch[k] = _mm256_loadu_ps(c + 8 * k);
    const float *xq = xt + 2 * t * nb; /* group t / 2's first row: xt + 4 (t / 2) nb */
    const float *v = vb;              /* value t */
    float rest[8];                    /* bfloat16 values after the last whole eight, widened */
    if (src) {
        for (; t + 8 <= e; t += 8, xq += 16 * nb, src += 16) {
            if (!(t & 31)) /* see bf16_to_f32_avx2 */
                __builtin_prefetch((const void *)((uintptr_t)src + BF16_AHEAD));
            const __m256 v8 = bf16x8(src);
            const __m256 lo = _mm256_permute2f128_ps(v8, v8, 0x00);
            const __m256 hi = _mm256_permute2f128_ps(v8, v8, 0x11);
            NM24_STEP(ch, lo, xq, po + t, NM24_LOAD);
            NM24_STEP(ch, hi, xq + 8 * nb, po + t + 4, NM24_LOAD);
        }
        bf16_to_f32_avx2(src, e - t, rest);
        v = rest;
    }
    for (; t + 4 <= e; t += 4, xq += 8 * nb, v += 4) {
        const __m256 v4 = _mm256_broadcast_ps((const __m128 *)v);
        NM24_STEP(ch, v4, xq, po + t, NM24_LOAD);
    }
    if (e == cnt) { /* the last 1-3 kept values: chains 0, 1, 2 */
        if (t < cnt)
            ch[0] = _mm256_fmadd_ps(_mm256_broadcast_ss(v), NM24_LOAD(xq + po[t]), ch[0]);
        if (t + 1 < cnt)
            ch[1] = _mm256_fmadd_ps(_mm256_broadcast_ss(v + 1), NM24_LOAD(xq + po[t + 1]),
                                    ch[1]);
        if (t + 2 < cnt)
            ch[2] = _mm256_fmadd_ps(_mm256_broadcast_ss(v + 2), NM24_LOAD(xq + po[t + 2]),
                                    ch[2]);
    }
#undef NM24_LOAD
    for (int k = 0; k < 4; k++) _mm256_storeu_ps(c + 8 * k, ch[k]);
}

/* Two rows' bfloat16 kept values t .. end - 1 (whole steps of eight, both rows holding them;
 * nb 8, t % 8 == 0) into their chains ca and cb (four vectors of eight each, in memory), the
 * rows' steps interleaved: eight chains in flight where nm24_spmm8_span has four, each chain
 * the span's and in its order, so the same bytes; a value's row of xt from its offset byte
 * (one load, and the FMA's). A 4096x4096 layer at batch 8, 12 of them, 6 distinct: 3.70-3.73
 * -> 3.41-3.50 ms (either change alone, the interleave or the byte loads, gained nothing). */
SC_TARGET("avx2,fma") SC_INLINE void nm24_spmm8_pair(const float *xt, const char *sa,
                                                      const uint8_t *pa, float *ca,
                                                      const char *sb, const uint8_t *pb,
                                                      float *cb, int64_t t, int64_t end) {
    __m256 a[4], b[4];
    for (int k = 0; k < 4; k++) {
        a[k] = _mm256_loadu_ps(ca + 8 * k);
        b[k] = _mm256_loadu_ps(cb + 8 * k);
    }
    const float *xq = xt + 16 * t; /* group t / 2's first row of xt */
    for (; t < end; t += 8, xq += 128, sa += 16, sb += 16) {
        if (!(t & 31)) { /* see bf16_to_f32_avx2 */
            __builtin_prefetch((const void *)((uintptr_t)sa + BF16_AHEAD));
            __builtin_prefetch((const void *)((uintptr_t)sb + BF16_AHEAD));
        }
        const __m256 va = bf16x8(sa), vb = bf16x8(sb);
        const __m256 va0 = _mm256_permute2f128_ps(va, va, 0x00);
        const __m256 vb0 = _mm256_permute2f128_ps(vb, vb, 0x00);
        NM24_STEP(a, va0, xq, pa + t, _mm256_loadu_ps);
        NM24_STEP(b, vb0, xq, pb + t, _mm256_loadu_ps);
        const __m256 va1 = _mm256_permute2f128_ps(va, va, 0x11);
        const __m256 vb1 = _mm256_permute2f128_ps(vb, vb, 0x11);
        NM24_STEP(a, va1, xq + 64, pa + t + 4, _mm256_loadu_ps);
        NM24_STEP(b, vb1, xq + 64, pb + t + 4, _mm256_loadu_ps);
    }
    for (int k = 0; k < 4; k++) {
        _mm256_storeu_ps(ca + 8 * k, a[k]);
        _mm256_storeu_ps(cb + 8 * k, b[k]);
    }
}
#undef NM24_STEP

/* nm24_spmm8_pair as a function (see nm24_spmm8_rows). */
typedef void (*spmm8_pair_fn)(const float *, const char *, const uint8_t *, float *,
                              const char *, const uint8_t *, float *, int64_t, int64_t);
SC_TARGET("avx2,fma") static void nm24_spmm8_pair_avx2(const float *xt, const char *sa,
                                                        const uint8_t *pa, float *ca,
                                                        const char *sb, const uint8_t *pb,
                                                        float *cb, int64_t t, int64_t end) {
    nm24_spmm8_pair(xt, sa, pa, ca, sb, pb, cb, t, end);
}

/* [lo | hi] (vinsertf64x4: AVX512F, where vinsertf32x8 needs DQ) */
#define NM24_JOIN(lo, hi)                                                                     \
    _mm512_castpd_ps(_mm512_insertf64x4(_mm512_castps_pd(_mm512_castps256_ps512(lo)),         \
                                        _mm256_castps_pd(hi), 1))

/* nm24_spmm8_pair on AVX-512: the two rows' chain k side by side in one 16-lane vector (row a
 * in lanes 0-7, row b in 8-15), so that one FMA does what two did, its x the two rows of xt
 * joined (a load and a load-and-insert) and its values the two rows' value t picked by one
 * vpermps from both rows' eight widened values, where the AVX2 pair spends an in-lane shuffle
 * a value and row. Each lane's chain takes the same values in the same order: the same bytes.
 * A 256x4096 layer in a loop at batch 8: 0.65-0.66 -> 0.53-0.63 ns a kept value (docs/
 * compute.md, thirty-sixth session). */
SC_TARGET("avx512f,avx512bw,avx512vl,avx2,fma") static void nm24_spmm8_pair512(
        const float *xt, const char *sa, const uint8_t *pa, float *ca, const char *sb,
        const uint8_t *pb, float *cb, int64_t t, int64_t end) {
    __m512 ab[4];
    for (int k = 0; k < 4; k++)
        ab[k] = NM24_JOIN(_mm256_loadu_ps(ca + 8 * k), _mm256_loadu_ps(cb + 8 * k));
    __m512i sel[8]; /* value j of each row: lanes 0-7 from j, 8-15 from 8 + j */
    for (int j = 0; j < 8; j++)
        sel[j] = _mm512_mask_set1_epi32(_mm512_set1_epi32(j), 0xFF00, 8 + j);
    const float *xq = xt + 16 * t; /* group t / 2's first row of xt */
    for (; t < end; t += 8, xq += 128, sa += 16, sb += 16) {
        if (!(t & 31)) { /* see bf16_to_f32_avx2 */
            __builtin_prefetch((const void *)((uintptr_t)sa + BF16_AHEAD));
            __builtin_prefetch((const void *)((uintptr_t)sb + BF16_AHEAD));
        }
        const __m512 v = NM24_JOIN(bf16x8(sa), bf16x8(sb));
        for (int j = 0; j < 8; j++) {
            const float *xs = xq + (j & 4 ? 64 : 0);
            const __m512 x2 = NM24_JOIN(_mm256_loadu_ps(xs + pa[t + j]),
                                        _mm256_loadu_ps(xs + pb[t + j]));
            ab[j & 3] = _mm512_fmadd_ps(_mm512_permutexvar_ps(sel[j], v), x2, ab[j & 3]);
        }
    }
    for (int k = 0; k < 4; k++) {
        _mm256_storeu_ps(ca + 8 * k, _mm512_castps512_ps256(ab[k]));
        _mm256_storeu_ps(cb + 8 * k, _mm256_castpd_ps(_mm512_extractf64x4_pd(
                                         _mm512_castps_pd(ab[k]), 1)));
    }
}
#undef NM24_JOIN

/* The rows [r0, r1) of a batch of 5-8 (see above), bfloat16 row pairs by `pair`. */
SC_TARGET("avx2,fma")
static int64_t nm24_spmm8_rows(const void *job, int64_t r0, int64_t r1, spmm8_pair_fn pair) {
    const nm_job *J = (const nm_job *)job;
    const prod_t *P = &J->P;
    const int64_t gpr = J->gpr, nb = P->nb, step = SPMM8_COLS / 2; /* kept values a block */
    scratch_t s;
    int64_t count = 0, err = scratch_alloc(&s, step, nb, gpr); /* s.vals: a block's values */
    uint8_t *codes = err ? NULL : malloc((size_t)SPMM8_ROWS * (size_t)(gpr + 8));
    uint8_t *po = err ? NULL : malloc((size_t)SPMM8_ROWS * (size_t)(2 * gpr + 8));
    float *chains = err ? NULL : malloc((size_t)SPMM8_ROWS * 32 * 4); /* 4 chains of 8 a row */
    int64_t cnts[SPMM8_ROWS];
    if (!err && (!codes || !chains || !po)) err = SC_NOMEM;
    const __m256i lanes = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)nb),
                                             _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
    for (int64_t b0 = r0; b0 < r1 && !err; b0 += SPMM8_ROWS) {
        const int64_t n = r1 - b0 < SPMM8_ROWS ? r1 - b0 : SPMM8_ROWS;
        if ((err = nm24_block_codes(J, &s, b0, n, codes, cnts, nm24_codes48_avx2))) break;
        for (int64_t i = 0; i < n; i++)
            nm24_value_offsets(codes + i * (gpr + 8), gpr, nb, po + i * (2 * gpr + 8));
        memset(chains, 0, (size_t)n * 32 * 4);
        /* kept values t0 .. t0 + step - 1 of every row, a block of SPMM8_COLS columns; each
         * row's values, unless bfloat16, converted into s.vals as its turn comes, so they are
         * read from L1 */
        for (int64_t t0 = 0; t0 < 2 * gpr && !err; t0 += step)
            for (int64_t i = 0; i < n; i++) {
                const int64_t cnt = cnts[i], e = t0 + step < cnt ? t0 + step : cnt;
                if (t0 >= cnt) continue;
                const int64_t v0 = (b0 + i) * gpr * 2 + t0;
                const char *src = NULL;
                if (P->mode == MODE_BF16)
                    src = (const char *)P->vbits + 2 * v0;
                else if ((err = convert(P, v0, e - t0, s.vals)))
                    break;
                const uint8_t *rp = po + i * (2 * gpr + 8);
                float *ci = chains + 32 * i;
                if (src && nb == 8 && i + 1 < n && t0 < cnts[i + 1]) {
                    /* bfloat16 rows i and i + 1 together while both have whole steps of
                     * eight, then the rest of each (its tail too) as one row */
                    const int64_t e1 = t0 + step < cnts[i + 1] ? t0 + step : cnts[i + 1];
                    const int64_t end = t0 + ((e < e1 ? e : e1) - t0) / 8 * 8;
                    const char *src1 = src + 4 * gpr; /* row i + 1's value t0 */
                    const uint8_t *rp1 = rp + 2 * gpr + 8;
                    pair(P->xt, src, rp, ci, src1, rp1, ci + 32, t0, end);
                    nm24_spmm8_span(P->xt, 8, s.vals, src + 2 * (end - t0), rp, end, e, cnt,
                                    lanes, 1, ci);
                    nm24_spmm8_span(P->xt, 8, s.vals, src1 + 2 * (end - t0), rp1, end, e1,
                                    cnts[i + 1], lanes, 1, ci + 32);
                    i++;
                } else if (nb == 8) { /* the lane mask folded away */
                    nm24_spmm8_span(P->xt, 8, s.vals, src, rp, t0, e, cnt, lanes, 1, ci);
                } else {
                    nm24_spmm8_span(P->xt, nb, s.vals, src, rp, t0, e, cnt, lanes, 0, ci);
                }
            }
        for (int64_t i = 0; i < n && !err; i++) {
            const float *c = chains + 32 * i;
            const __m256 c01 = _mm256_add_ps(_mm256_loadu_ps(c), _mm256_loadu_ps(c + 8)),
                         c23 = _mm256_add_ps(_mm256_loadu_ps(c + 16), _mm256_loadu_ps(c + 24));
            _mm256_maskstore_ps(P->yt + (b0 + i) * nb, lanes, _mm256_add_ps(c01, c23));
            count += cnts[i];
        }
    }
    free(chains);
    free(codes);
    free(po);
    scratch_free(&s);
    return err ? err : count;
}

SC_TARGET("avx2,fma")
static int64_t nm24_spmm8_avx2(const void *job, int64_t r0, int64_t r1) {
    return nm24_spmm8_rows(job, r0, r1, nm24_spmm8_pair_avx2);
}

SC_TARGET("avx2,fma")
static int64_t nm24_spmm8_avx512(const void *job, int64_t r0, int64_t r1) {
    return nm24_spmm8_rows(job, r0, r1, nm24_spmm8_pair512);
}

/* 2:4 from 9 lanes on, not transposed, AVX-512: nm_rows and the generic SpMM fused, on x as
 * padded_rows pads it, the same chains, so the same bytes: at a multiple of 32 lanes every
 * lane one chain of fused multiply-adds over the row's kept values in ascending order, kept in
 * y between column blocks; at 16 lanes four chains a lane (kept value t into chain t % 4,
 * added as (c0 + c1) + (c2 + c3)), as spmm_rest_avx512 keeps them, except 9-15 lanes padded
 * to 16 here where padded_rows pads them to 32 (one16: one chain a lane). Any other lane count
 * (x past PAD_MAX_BYTES) goes to nm_rows. The generic path decoded each row's columns into 64-bit
 * indices and its values into a stash (fresh pages every call) before the column blocks; here
 * a block of SPMM_ROWS rows (SPMM_ROWS_WIDE from SPMM_WIDE lanes) keeps one byte a kept value
 * (its column in its step of two groups, nm24_value_offsets), then runs column block by column
 * block, rows two at a time (NM24_SPMM_SPAN), lanes SPMM_TILE at a time (four vectors of chains
 * a row), a block of xt (SPMM_COLS columns of a tile, 32 KB at 64 lanes; one run where xt is
 * in tiles, nm24_spmm_tiles) read from L1 by every row of the block. A
 * 1024x4096 layer in a loop, ms: batch 12 3.5-3.8 -> 2.4-2.8, batch 32 3.5-3.7 -> 2.4-2.5,
 * batch 64 5.1-5.3 -> 4.3-4.5; 384x384 at batch 12 (16 lanes) 115-126 -> 82-83 us. Tried:
 * blocks of 8, 16, 48 and 64 rows, 64, 192 and 256 columns (16 rows or 256 columns 5-15%
 * slower at batch 64, the rest within 3%). bfloat16 and float32 values are read where they
 * lie, bfloat16 widened in registers (NM24_VJ), each row's first block prefetched while the
 * block's codes are decoded and its next block as it runs (the next comes a block of rows
 * later); other values are converted once a block of rows. A pass converting the bfloat16
 * values first read them from memory apart from the multiply-adds: 9% of the samples at
 * batch 64 (12 layers of 4096x4096, 6 distinct, ms a layer: batch 12 6.30 -> 5.5 and 16 6.31
 * -> 5.83 with the widening a load and a shift of its own; 64 15.2 -> 14.1-14.3 as it is
 * now). The span functions are inlined: called from two places each, GCC kept them out of
 * line, their chains on the stack (4% slower at batch 33-64). */
#define SPMM_ROWS 32
/* From SPMM_WIDE lanes, blocks of SPMM_ROWS_WIDE rows: each block reads all of x (4 MB at 4096
 * columns and 256 lanes, past L2), four times fewer blocks read it four times less (a
 * 384x4096 layer in a loop, batch 256, ns a kept value: 8.95 -> 7.6-7.7; batch 128 4.1-4.2 ->
 * 3.8; batch 64 no faster, left at 32; 24 layers of 4096x4096, batch 240, one thread: 63.6,
 * 64.9 -> 50.7 ms a layer). */
#define SPMM_ROWS_WIDE 128
#define SPMM_WIDE 128
#define SPMM_COLS 128 /* a multiple of 8: blocks start at even groups */
#define SPMM_TILE 64

/* Four kept values of a row, v[t .. t+3], one load repeated in every 128-bit lane (float32)
 * or every 64-bit lane (BF: bfloat16), and value j of them in all 16 lanes by one in-lane
 * shuffle (NM24_VJ), for bfloat16 a byte shuffle that widens it too (its two bytes into the
 * top of each lane, zeros below): one load for four values where four broadcasts were four
 * (a 2048x4096 layer in a loop, ns a kept value: batch 16 0.88-0.90 -> 0.69-0.80, 32
 * 1.10-1.19 -> 1.00-1.12, 64 1.98-2.01 -> 1.86-1.90), and bfloat16 widened in no more
 * instructions than float32 takes. */
#define NM24_V4(v, t, BF)                                                                     \
    ((BF) ? _mm512_castsi512_ps(_mm512_set1_epi64((long long)rd_uint((v), 8, (t) / 4)))       \
          : _mm512_broadcast_f32x4(_mm_loadu_ps((const float *)(v) + (t))))
/* Kept value u of v, float32 or (BF) bfloat16, in every lane. */
#define NM24_V1(v, u, BF)                                                                     \
    _mm512_set1_ps((BF) ? bits_to_f((uint32_t)ld16((v), (u)) << 16)                           \
                        : bits_to_f((uint32_t)rd_uint((v), 4, (u))))
#define NM24_VJ(v4, j, BF)                                                                    \
    ((BF) ? _mm512_castsi512_ps(_mm512_shuffle_epi8(                                          \
                _mm512_castps_si512(v4),                                                      \
                _mm512_set1_epi32((int)(0x8080u | (uint32_t)(2 * (j)) << 16 |                 \
                                        (uint32_t)(2 * (j) + 1) << 24))))                     \
     : (j) == 0 ? _mm512_permute_ps(v4, 0x00)                                                 \
     : (j) == 1 ? _mm512_permute_ps(v4, 0x55)                                                 \
     : (j) == 2 ? _mm512_permute_ps(v4, 0xAA)                                                 \
                : _mm512_permute_ps(v4, 0xFF))
/* Kept value t's FMA into chain t % CH of a row's accumulators a (chain h: NV vectors of 16
 * lanes, a[h NV .. h NV + NV - 1]), its row of xt at p (the tile's first lane). */
#define NM24_SPMM_FMA(a, NV, CH, t, vt, p)                                                    \
    for (int k = 0; k < (NV); k++)                                                            \
    a[(t) % (CH) * (NV) + k] = _mm512_fmadd_ps(vt, _mm512_loadu_ps((p) + 16 * k),             \
                                               a[(t) % (CH) * (NV) + k])

/* Two rows' blocks (kept values 0 .. na-1 of va at columns pa, 0 .. nc-1 of vc at pc; pa, pc
 * their columns in their steps, nm24_value_offsets) into their chains in ya and yc (yc NULL:
 * no second row), from xq (the block's first column of xt, at the tile's first lane): NV
 * vectors of 16 lanes a chain, CH chains a lane (kept value t into chain t % CH), stored
 * y[16 (h NV + k)], started at zero if `first`, else continued from y. NB: the lanes of xt's
 * rows, if fixed (0: nb). The two rows' steps interleaved while both have whole steps, two
 * rows' chains in flight (at 32 lanes, batch 32, no faster than a row at a time in a loop of
 * a 1024x4096 layer; at 16 lanes of one chain a row, four rows interleaved were slower than
 * two, 1.12-1.28 against 0.77-0.85 ns a kept value); the rest of each row by itself. CH 1 is
 * how lanes in blocks of 32 are kept (x padded to 16 lanes from 9-15 where padded_rows pads
 * to 32 gives those bytes), CH 4 at NV 1 how spmm_rest_avx512 keeps 16 lanes (the caller
 * adds the chains). */
#define NM24_SPMM_SPAN(name, NV, CH, NB, BF)                                                  \
    SC_TARGET("avx512f,avx512bw,avx512vl,avx2,fma")                                           \
    SC_INLINE void name(const float *xq, int64_t nb_, const void *va, const uint8_t *pa,      \
                     int64_t na, float *ya, const void *vc, const uint8_t *pc, int64_t nc,    \
                     float *yc, int first) {                                                  \
        const int64_t nb = (NB) ? (NB) : nb_;                                                 \
        __m512 a[(CH) * (NV)], c[(CH) * (NV)];                                                \
        for (int k = 0; k < (CH) * (NV); k++) {                                               \
            a[k] = first ? _mm512_setzero_ps() : _mm512_loadu_ps(ya + 16 * k);               \
            c[k] = first || !yc ? _mm512_setzero_ps() : _mm512_loadu_ps(yc + 16 * k);        \
        }                                                                                     \
        int64_t t = 0;                                                                        \
        for (; t + 4 <= na && t + 4 <= nc; t += 4) {                                          \
            const float *xs = xq + 2 * t * nb; /* the step's first column */                  \
            uint32_t wa, wc;                                                                  \
            memcpy(&wa, pa + t, 4);                                                           \
            memcpy(&wc, pc + t, 4);                                                           \
            const __m512 v4 = NM24_V4(va, t, BF), u4 = NM24_V4(vc, t, BF);                    \
            for (int j = 0; j < 4; j++) {                                                     \
                const __m512 vj = NM24_VJ(v4, j, BF), uj = NM24_VJ(u4, j, BF);                \
                NM24_SPMM_FMA(a, NV, CH, j, vj, xs + (int64_t)(wa >> 8 * j & 255) * nb);      \
                NM24_SPMM_FMA(c, NV, CH, j, uj, xs + (int64_t)(wc >> 8 * j & 255) * nb);      \
            }                                                                                 \
        }                                                                                     \
        for (int64_t u = t; u < na; u++) /* t % 4 == 0: u's step starts at 2 (u - u % 4) */  \
            NM24_SPMM_FMA(a, NV, CH, u, NM24_V1(va, u, BF),                                   \
                          xq + (2 * (u & ~(int64_t)3) + pa[u]) * nb);                         \
        for (int64_t u = t; u < nc; u++)                                                      \
            NM24_SPMM_FMA(c, NV, CH, u, NM24_V1(vc, u, BF),                                   \
                          xq + (2 * (u & ~(int64_t)3) + pc[u]) * nb);                         \
        for (int k = 0; k < (CH) * (NV); k++) {                                               \
            _mm512_storeu_ps(ya + 16 * k, a[k]);                                              \
            if (yc) _mm512_storeu_ps(yc + 16 * k, c[k]);                                      \
        }                                                                                     \
    }
NM24_SPMM_SPAN(nm24_spmm_span4, 4, 1, 0, 0)
NM24_SPMM_SPAN(nm24_spmm_span2, 2, 1, 0, 0)
NM24_SPMM_SPAN(nm24_spmm_span16, 1, 4, 16, 0)
NM24_SPMM_SPAN(nm24_spmm_span1, 1, 1, 16, 0)
NM24_SPMM_SPAN(nm24_spmm_span4_bf16, 4, 1, 0, 1)
NM24_SPMM_SPAN(nm24_spmm_span2_bf16, 2, 1, 0, 1)
NM24_SPMM_SPAN(nm24_spmm_span16_bf16, 1, 4, 16, 1)
NM24_SPMM_SPAN(nm24_spmm_span1_bf16, 1, 1, 16, 1)
#undef NM24_SPMM_SPAN
#undef NM24_SPMM_FMA
#undef NM24_VJ
#undef NM24_V1
#undef NM24_V4

SC_TARGET("avx512f,avx512bw,avx512vl,avx2,fma")
static int64_t nm24_spmm_avx512(const void *job, int64_t r0, int64_t r1) {
    const nm_job *J = (const nm_job *)job;
    const prod_t *P = &J->P;
    const int64_t gpr = J->gpr, nb = P->nb, step = SPMM_COLS / 2; /* kept values a block */
    if (nb % 32 && nb != 16) return nm_rows(job, r0, r1);
    const int64_t brows = nb >= SPMM_WIDE ? SPMM_ROWS_WIDE : SPMM_ROWS;
    scratch_t s;
    int64_t count = 0, err = scratch_alloc(&s, 0, 0, gpr); /* s.codes: row_codes24's */
    uint8_t *codes = err ? NULL : malloc((size_t)brows * (size_t)(gpr + 8));
    uint8_t *po = err ? NULL : malloc((size_t)brows * (size_t)(2 * gpr + 8));
    /* bfloat16 and float32 values are read where they lie (bfloat16 widened in registers);
     * others converted a block of rows at a time into vals */
    const int bf16 = P->mode == MODE_BF16, direct = bf16 || P->mode == MODE_FLOATS;
    float *vals = err || direct ? NULL : malloc((size_t)brows * (size_t)(2 * gpr) * 4);
    const int four = nb == 16 && !J->one16; /* four chains a lane, as spmm_rest's */
    float *chains = err || !four ? NULL : malloc((size_t)brows * 64 * 4);
    int64_t cnts[SPMM_ROWS_WIDE];
    if (!err && (!codes || !po || (!direct && !vals) || (four && !chains))) err = SC_NOMEM;
    for (int64_t b0 = r0; b0 < r1 && !err; b0 += brows) {
        const int64_t n = r1 - b0 < brows ? r1 - b0 : brows;
        if (bf16) /* the rows' first blocks of values, while their codes are decoded (each
                   * block prefetches its row's next one below); hints, never a fault, their
                   * addresses formed as integers: the values are not checked yet */
            for (int64_t i = 0; i < n; i++)
                for (int64_t k = 0; k < 2 * step; k += 64)
                    __builtin_prefetch((const void *)((uintptr_t)P->vbits +
                                                      (uintptr_t)((b0 + i) * 4 * gpr + k)));
        if ((err = nm24_block_codes(J, &s, b0, n, codes, cnts, nm24_codes48_avx2))) break;
        for (int64_t i = 0; i < n && !err; i++) {
            nm24_value_offsets(codes + i * (gpr + 8), gpr, 1, po + i * (2 * gpr + 8));
            if (!direct) err = convert(P, (b0 + i) * gpr * 2, cnts[i], vals + i * 2 * gpr);
        }
        /* row i's values: its 2 gpr slots (nm24_block_codes checked them inside the values) */
        const int64_t vsize = bf16 ? 2 : 4;
        const char *vrows = bf16     ? (const char *)P->vbits + b0 * 2 * gpr * 2
                            : direct ? (const char *)(P->vf + b0 * 2 * gpr)
                                     : (const char *)vals;
        for (int64_t t0 = 0; t0 < 2 * gpr && !err; t0 += step) {
            for (int64_t l0 = 0; l0 < nb && !err; l0 += SPMM_TILE) {
                /* the block's first column, lanes l0 .. l0 + wl - 1, and xt's stride: in
                 * tiles (nm24_spmm_tiles) wl floats, else nb */
                const int64_t wl = nb - l0 < SPMM_TILE ? nb - l0 : SPMM_TILE;
                const int64_t ld = J->tiled ? wl : nb;
                const float *xq =
                    P->xt + (J->tiled ? l0 * P->cols + 2 * t0 * wl : 2 * t0 * nb + l0);
                for (int64_t i = 0; i < n; i += 2) { /* rows i and i + 1 (if any) together */
                    int64_t m[2] = {0, 0};
                    for (int64_t h = 0; h < 2 && i + h < n; h++) {
                        const int64_t e = t0 + step < cnts[i + h] ? t0 + step : cnts[i + h];
                        m[h] = e > t0 ? e - t0 : 0;
                    }
                    const int h = i + 1 < n; /* the second row, or none (no values) */
                    const uint8_t *rp = po + i * (2 * gpr + 8) + t0, *rq = rp + h * (2 * gpr + 8);
                    float *y = P->yt + (b0 + i) * nb + l0, *y1 = h ? y + nb : NULL;
                    const char *v = vrows + (i * 2 * gpr + t0) * vsize;
                    const char *u = v + h * 2 * gpr * vsize;
                    if (bf16 && l0 == 0) /* a hint (never a fault) for the next block */
                        for (int64_t k = 0; k < 2 * step; k += 64) {
                            __builtin_prefetch((const void *)((uintptr_t)v + 2 * step + k));
                            __builtin_prefetch((const void *)((uintptr_t)u + 2 * step + k));
                        }
                    float *ca = chains ? chains + 64 * i : NULL;
                    float *cc = chains && h ? chains + 64 * (i + 1) : NULL;
                    const int first = t0 == 0;
#define SPAN(f, x, lanes, ya, yc)                                                             \
    do {                                                                                      \
        if (bf16)                                                                             \
            f##_bf16(x, lanes, v, rp, m[0], ya, u, rq, m[1], yc, first);                      \
        else                                                                                  \
            f(x, lanes, v, rp, m[0], ya, u, rq, m[1], yc, first);                             \
    } while (0)
                    if (chains)
                        SPAN(nm24_spmm_span16, xq, 16, ca, cc);
                    else if (nb == 16)
                        SPAN(nm24_spmm_span1, xq, 16, y, y1);
                    else if (wl == SPMM_TILE)
                        SPAN(nm24_spmm_span4, xq, ld, y, y1);
                    else
                        SPAN(nm24_spmm_span2, xq, ld, y, y1);
#undef SPAN
                }
            }
        }
        for (int64_t i = 0; i < n && chains && !err; i++) {
            const float *c = chains + 64 * i; /* (c0 + c1) + (c2 + c3), as spmm_rest's */
            const __m512 c01 = _mm512_add_ps(_mm512_loadu_ps(c), _mm512_loadu_ps(c + 16));
            const __m512 c23 = _mm512_add_ps(_mm512_loadu_ps(c + 32), _mm512_loadu_ps(c + 48));
            _mm512_storeu_ps(P->yt + (b0 + i) * 16, _mm512_add_ps(c01, c23));
        }
        for (int64_t i = 0; i < n; i++) count += cnts[i];
    }
    free(chains);
    free(vals);
    free(po);
    free(codes);
    scratch_free(&s);
    return err ? err : count;
}
#endif

#if SC_X86
/* nm24_spmm_avx512 from 17 lanes on x's lanes padded to nbp (padded_lanes: a multiple of 32),
 * laid out in tiles of SPMM_TILE lanes (the last 32 where nbp % 64 is), each tile's columns one
 * after another, wl floats each, into a result of nbp lanes whose first nb are copied out. A
 * row of xt is nb * 4 bytes, and at 128 or 256 lanes (512 or 1024 bytes) the 128 rows of a
 * column block (4 lines each) fall in a half or a quarter of the L1 cache's 64 sets, 16 or 32
 * lines a set where it has 12 ways: a tile's rows are 256 bytes apart, and a column block of a
 * tile (32 KB) is one run.
 * The same values, the same chains: the same bytes. Only where x is copied anyway (padded) or
 * its rows are a multiple of 128 lanes: elsewhere the copy cost more than it saved (a
 * 384x4096 layer in a loop, ns a kept value, blocks of 32 rows: batch 240 10.9-11.0 ->
 * 8.4-8.7, 256 11.1-11.2 -> 9.0-9.3, 128 5.03 -> 4.2-4.3; tiled at 64 and 288 lanes, 7-8%
 * slower; SparseLinear at batch 240, 1536x384: 3.0-3.1 -> 2.1-2.2 ms). */
static int64_t nm24_spmm_tiles(nm_job *J, int64_t rows, int64_t threads) {
    prod_t *P = &J->P;
    const int64_t nb = P->nb, nbp = padded_lanes(P, rows);
    if (nb == 16 || nbp % 32 || P->cols * nbp * 4 > PAD_MAX_BYTES || (nbp == nb && nb % 128))
        return padded_rows(nm24_spmm_avx512, J, P, rows, threads);
    J->tiled = 1;
    const int64_t count = rows_on_lanes(nm24_spmm_avx512, J, P, rows, threads, nbp, SPMM_TILE);
    J->tiled = 0;
    return count;
}
#endif

/* -- 2:4 bfloat16 weights times bfloat16 x: pairs of products --------------------------------
 *
 * When x is bfloat16 (the caller says so; xt then holds bfloat16 values widened, exactly) and
 * the weight is 2:4 bfloat16, nb >= 5, not transposed, each output lane is one chain over the
 * row's groups in order, and each group's two kept values (lo, hi: the values of its first and
 * second kept column, one 32-bit word of the values section) go in as AVX512-BF16's
 * vdpbf16ps takes a pair of bfloat16 products:
 *     acc = ftz(fma(hi, x[second], acc));  acc = ftz(fma(lo, x[first], acc))
 * with subnormal inputs read as zero and results below the smallest normal flushed to zero
 * (DAZ and FTZ, which the instruction applies whatever MXCSR says). Three twins write these
 * bytes: vdpbf16ps itself (AVX-512 with BF16; 32 multiply-adds an instruction, twice a float32
 * FMA's), FMAs under MXCSR's DAZ and FTZ (AVX2), and bdot_fma (scalar, any CPU). A product of
 * two bfloat16 values is exact in float32, so this differs from the float32 SpMM only in the
 * order of the sums and the flushing: what torch's bfloat16 product on such a CPU does too.
 *
 * x comes in pairs from a table built once a call (bdot_table): for group q and pattern code c
 * (kept columns i < j), xpairs[(q * 6 + c) * nbp + b] holds x[b, 4q + i] in its low half and
 * x[b, 4q + j] in its high half (zero past the last column and in lanes b >= nb), so one load
 * gives every lane's pair, matched with the broadcast word of the group's two values. Rows go
 * BDOT_ROWS at a time over column blocks of `bgroups` groups, whose part of the table (24 nbp
 * bytes a group: 192 KB, from L2) every row of the block reads. The table's traffic bounds
 * the product (with every code read as 0, so that one vector in six is read, 4096x4096 at
 * batch 64 ran in 6.7-7.4 ms against 12.6-13.2); 16 rows a block read the whole table (1.5 MB
 * at batch 64) from L3 for every 16 rows, 64 rows a block: 12.6-13.7 -> 9.9-10.1 ms (the
 * kernel alone, hot weight; 128 or 256 rows no faster). Blocks of 24, 48 and 96 KB of the
 * table were slower, 13.2-13.5, 12.4 and 11.2 ms; 384 and 768 KB the same as 192. Tried and
 * dropped: the lanes of a vector over 16 rows instead of the batch, the rows' values and codes
 * transposed to vectors by group and x's pairs picked by a byte shuffle per group and 16 rows:
 * 19.3-19.5 ms, bound by the shuffles. */
#define BDOT_ROWS 64
#define BDOT_TABLE_BYTES 196608 /* a column block's part of the table */
#define BDOT_MAX_LANES 256      /* lanes a table holds (a larger batch goes in chunks) */

/* The table's memory: one buffer kept between calls (up to 8 MiB, sc_kept), lent to one call
 * at a time; a call that finds it lent, or needs more, allocates its own. A fresh buffer of
 * 1.5 MB (batch 64, 4096 columns) costs its page faults every call: 4096x4096 at batch 64,
 * kernel alone, 13.4 -> 12.3, 12.7 ms a call. */
static sc_kept bdot_kept = SC_KEPT((size_t)8 << 20);

/* Groups [q0, q1) of the table (a rows_fn over groups: 0). */
static int64_t bdot_fill(const void *job, int64_t q0, int64_t q1) {
    const nm_job *J = (const nm_job *)job;
    const int64_t stride = J->P.nb, nb = J->lanes, nbp = J->nbp, cols = J->P.cols;
    const uint32_t *xt = (const uint32_t *)J->P.xt + J->lane0;
    for (int64_t q = q0; q < q1; q++)
        for (int c = 0; c < 6; c++) {
            const int64_t i = 4 * q + nm24_pos[c][0], j = 4 * q + nm24_pos[c][1];
            uint32_t *t = J->xpairs + (q * 6 + c) * nbp;
            const uint32_t *xi = xt + i * stride, *xj = xt + j * stride;
            if (j < cols)
                for (int64_t b = 0; b < nb; b++) t[b] = xi[b] >> 16 | (xj[b] & 0xFFFF0000u);
            else if (i < cols)
                for (int64_t b = 0; b < nb; b++) t[b] = xi[b] >> 16;
            else
                for (int64_t b = 0; b < nb; b++) t[b] = 0;
            for (int64_t b = nb; b < nbp; b++) t[b] = 0;
        }
    return 0;
}

/* J's table for lanes J->lane0 .. + J->lanes (J->xpairs, 64-byte aligned, from sc_borrow;
 * NULL if out of memory), filled on `threads` threads, with nbp (lanes a row of it: 8, or a
 * multiple of 16) and the column block. */
static uint32_t *bdot_table(nm_job *J, int *kept, int64_t threads) {
    const int64_t nb = J->lanes, gpr = J->gpr;
    const int64_t nbp = nb <= 8 ? 8 : (nb + 15) / 16 * 16;
    J->nbp = nbp;
    J->bgroups = BDOT_TABLE_BYTES / (24 * nbp) < 4 ? 4 : BDOT_TABLE_BYTES / (24 * nbp);
    const size_t bytes = (size_t)(gpr * 6 * nbp) * 4;
    J->xpairs = sc_borrow(&bdot_kept, bytes, kept);
    if (J->xpairs) parallel_rows(bdot_fill, J, gpr, threads);
    return J->xpairs;
}

/* bfloat16 half of a word (0 low, 1 high) as float32, a subnormal read as a signed zero. */
SC_INLINE float bdot_half(uint32_t w, int hi) {
    uint32_t u = hi ? w & 0xFFFF0000u : w << 16;
    if (!(u & 0x7F800000u)) u &= 0x80000000u;
    return bits_to_f(u);
}

/* fma(a, b, c) as x86 does it with FTZ: a tiny result is a zero of its sign. "Tiny" is
 * decided on the exact result rounded to 24 bits with an unbounded exponent (IEEE's "after
 * rounding"; tried on the hardware: 2**-126 - 1.5 * 2**-151 flushes, the tie 2**-126 -
 * 2**-151 rounds to even, 2**-126, and does not). fmaf rounds to the subnormal grid, so its
 * result 2**-126 may come from an exact value that is tiny: then the exact sum in double
 * decides (a and b hold 8 significant bits each, so a * b is exact, and the sum is exact
 * wherever it is that close to 2**-126). */
static float bdot_fma(float a, float b, float c) {
    const float r = fmaf(a, b, c);
    if (!(fabsf(r) <= 0x1p-126f)) return r; /* normal, inf or NaN */
    if (fabsf(r) < 0x1p-126f) return copysignf(0.0f, r);
    return fabs(fma((double)a, (double)b, (double)c)) < 0x1p-126 - 0x1p-151 ? copysignf(0.0f, r)
                                                                            : r;
}

typedef struct {
    scratch_t s;
    uint8_t *codes;
    float *acc;
} bdot_scratch;

static int bdot_alloc(const nm_job *J, bdot_scratch *b) {
    const int64_t gpr = J->gpr;
    b->codes = malloc((size_t)BDOT_ROWS * (size_t)(gpr + 8));
    b->acc = aligned_alloc(64, (size_t)(BDOT_ROWS * J->nbp) * 4);
    int err = scratch_alloc(&b->s, 2, 1, gpr);
    return err || !b->codes || !b->acc ? SC_NOMEM : 0;
}

static void bdot_free(bdot_scratch *b) {
    free(b->codes);
    free(b->acc);
    scratch_free(&b->s);
}

/* The rows' results: the first J->lanes lanes of each row's accumulators. */
static void bdot_store(const nm_job *J, int64_t r0, int64_t n, const float *acc) {
    const int64_t nb = J->P.nb;
    for (int64_t i = 0; i < n; i++)
        memcpy(J->P.yt + (r0 + i) * nb + J->lane0, acc + i * J->nbp, (size_t)J->lanes * 4);
}

static int64_t bdot_rows_scalar(const void *job, int64_t r0, int64_t r1) {
    const nm_job *J = (const nm_job *)job;
    const prod_t *P = &J->P;
    const int64_t gpr = J->gpr, nb = J->lanes, nbp = J->nbp;
    bdot_scratch w;
    int64_t count = 0, cnt, err = bdot_alloc(J, &w);
    for (int64_t r = r0; r < r1 && !err; r++) {
        if ((err = nm24_block_codes(J, &w.s, r, 1, w.codes, &cnt, NULL))) break;
        const char *v = (const char *)P->vbits + 4 * r * gpr;
        for (int64_t b = 0; b < nb; b++) {
            float acc = 0.0f;
            for (int64_t q = 0; q < gpr; q++) {
                uint32_t vw;
                memcpy(&vw, v + 4 * q, 4);
                const uint32_t xw = J->xpairs[(q * 6 + w.codes[q]) * nbp + b];
                acc = bdot_fma(bdot_half(vw, 1), bdot_half(xw, 1), acc);
                acc = bdot_fma(bdot_half(vw, 0), bdot_half(xw, 0), acc);
            }
            w.acc[b] = acc;
        }
        bdot_store(J, r, 1, w.acc);
        count += cnt;
    }
    bdot_free(&w);
    return err ? err : count;
}

#if SC_X86
/* The loop both SIMD twins share: rows BDOT_ROWS at a time (codes checked first), column block
 * by column block, `ri` rows of it together (independent chains), lanes 64 at a time; SPAN(ri,
 * kv, ...) runs groups [g0, g1) of rows rc/rv/ra on kv vectors of lanes. */
#define BDOT_LOOP(SPAN, W)                                                                     \
    const nm_job *J = (const nm_job *)job;                                                     \
    const int64_t gpr = J->gpr, nbp = J->nbp, G = J->bgroups;                                  \
    bdot_scratch w;                                                                            \
    int64_t count = 0, err = bdot_alloc(J, &w), cnts[BDOT_ROWS];                               \
    for (int64_t b0 = r0; b0 < r1 && !err; b0 += BDOT_ROWS) {                                  \
        const int64_t n = r1 - b0 < BDOT_ROWS ? r1 - b0 : BDOT_ROWS;                           \
        if ((err = nm24_block_codes(J, &w.s, b0, n, w.codes, cnts, nm24_codes48_avx2))) break; \
        memset(w.acc, 0, (size_t)(n * nbp) * 4);                                               \
        for (int64_t g0 = 0; g0 < gpr; g0 += G) {                                              \
            const int64_t g1 = g0 + G < gpr ? g0 + G : gpr;                                    \
            for (int64_t lc = 0; lc < nbp; lc += 4 * (W)) {                                    \
                const int kv = (int)((nbp - lc < 4 * (W) ? nbp - lc : 4 * (W)) / (W));         \
                const uint32_t *tab = J->xpairs + lc;                                          \
                for (int64_t i = 0; i < n;) {                                                  \
                    const uint8_t *rc[8];                                                      \
                    const char *rv[8];                                                         \
                    float *ra[8];                                                              \
                    const int many = kv == 1 ? 8 : 4, ri = n - i >= many ? many : 1;           \
                    for (int k = 0; k < ri; k++) {                                             \
                        rc[k] = w.codes + (i + k) * (gpr + 8);                                 \
                        rv[k] = (const char *)J->P.vbits + 4 * (b0 + i + k) * gpr;             \
                        ra[k] = w.acc + (i + k) * nbp + lc;                                    \
                    }                                                                          \
                    switch (ri * 8 + kv) {                                                     \
                    case 8 * 8 + 1: SPAN(8, 1, tab, nbp, rc, rv, ra, g0, g1); break;           \
                    case 4 * 8 + 2: SPAN(4, 2, tab, nbp, rc, rv, ra, g0, g1); break;           \
                    case 4 * 8 + 3: SPAN(4, 3, tab, nbp, rc, rv, ra, g0, g1); break;           \
                    case 4 * 8 + 4: SPAN(4, 4, tab, nbp, rc, rv, ra, g0, g1); break;           \
                    case 1 * 8 + 1: SPAN(1, 1, tab, nbp, rc, rv, ra, g0, g1); break;           \
                    case 1 * 8 + 2: SPAN(1, 2, tab, nbp, rc, rv, ra, g0, g1); break;           \
                    case 1 * 8 + 3: SPAN(1, 3, tab, nbp, rc, rv, ra, g0, g1); break;           \
                    default: SPAN(1, 4, tab, nbp, rc, rv, ra, g0, g1);                         \
                    }                                                                          \
                    i += ri;                                                                   \
                }                                                                              \
            }                                                                                  \
        }                                                                                      \
        bdot_store(J, b0, n, w.acc);                                                           \
        for (int64_t i = 0; i < n; i++) count += cnts[i];                                      \
    }                                                                                          \
    bdot_free(&w)

/* Groups [g0, g1) of rows rc/rv/ra (ri of them, kv vectors of W lanes each, type V):
 * a[k][j] = STEP(a[k][j], the row's value word vw, its table vector at t). */
#define BDOT_SPAN(V, LOAD, STORE, W, STEP)                                                      \
    do {                                                                                      \
        V a[8][4];                                                                            \
        for (int k = 0; k < ri; k++)                                                          \
            for (int j = 0; j < kv; j++) a[k][j] = LOAD(ra[k] + (W) * j);                     \
        for (int64_t q = g0; q < g1; q++) {                                                   \
            const uint32_t *tq = tab + q * 6 * nbp;                                           \
            for (int k = 0; k < ri; k++) {                                                    \
                const uint32_t *t = tq + rc[k][q] * nbp;                                      \
                uint32_t vw;                                                                  \
                memcpy(&vw, rv[k] + 4 * q, 4);                                                \
                for (int j = 0; j < kv; j++) a[k][j] = STEP(a[k][j], vw, t + (W) * j);        \
            }                                                                                 \
        }                                                                                     \
        for (int k = 0; k < ri; k++)                                                          \
            for (int j = 0; j < kv; j++) STORE(ra[k] + (W) * j, a[k][j]);                     \
    } while (0)

/* AVX2 twin, 8 lanes a vector: the pair's high products, then its low ones, each an FMA under
 * DAZ and FTZ (set by the caller). */
SC_TARGET("avx2,fma") SC_INLINE __m256 bdot_step_avx2(__m256 a, uint32_t vw, const uint32_t *t) {
    const __m256i x = _mm256_load_si256((const __m256i *)t);
    const __m256 vh = _mm256_castsi256_ps(_mm256_set1_epi32((int)(vw & 0xFFFF0000u)));
    const __m256 vl = _mm256_castsi256_ps(_mm256_set1_epi32((int)(vw << 16)));
    a = _mm256_fmadd_ps(
        vh, _mm256_castsi256_ps(_mm256_and_si256(x, _mm256_set1_epi32((int)0xFFFF0000u))), a);
    return _mm256_fmadd_ps(vl, _mm256_castsi256_ps(_mm256_slli_epi32(x, 16)), a);
}

SC_TARGET("avx2,fma")
SC_INLINE void bdot_span_avx2(const int ri, const int kv, const uint32_t *tab, int64_t nbp,
                              const uint8_t *const *rc, const char *const *rv,
                              float *const *ra, int64_t g0, int64_t g1) {
    BDOT_SPAN(__m256, _mm256_load_ps, _mm256_store_ps, 8, bdot_step_avx2);
}

SC_TARGET("avx2,fma")
static int64_t bdot_rows_avx2(const void *job, int64_t r0, int64_t r1) {
    const unsigned csr = _mm_getcsr();
    _mm_setcsr(csr | 0x8040); /* FTZ (bit 15) and DAZ (bit 6), for this thread's loop */
    BDOT_LOOP(bdot_span_avx2, 8);
    _mm_setcsr(csr);
    return err ? err : count;
}

/* AVX512-BF16's intrinsics came with GCC 10 and clang 9; an older compiler builds the twins
 * only (the AVX2 one runs instead, the same bytes). */
#if (defined(__clang__) && __clang_major__ >= 9) || (!defined(__clang__) && __GNUC__ >= 10)
#define SC_HAVE_BF16 1
#define BF16_TARGET "avx512f,avx512bw,avx512vl,avx512bf16,avx2,fma"

/* vdpbf16ps: 8 lanes a vector (nbp 8) or 16. */
SC_TARGET(BF16_TARGET) SC_INLINE __m256 bdot_step_ymm(__m256 a, uint32_t vw, const uint32_t *t) {
    return _mm256_dpbf16_ps(a, (__m256bh)_mm256_set1_epi32((int)vw),
                            (__m256bh)_mm256_load_si256((const __m256i *)t));
}

SC_TARGET(BF16_TARGET) SC_INLINE __m512 bdot_step_zmm(__m512 a, uint32_t vw, const uint32_t *t) {
    return _mm512_dpbf16_ps(a, (__m512bh)_mm512_set1_epi32((int)vw),
                            (__m512bh)_mm512_load_si512(t));
}

SC_TARGET(BF16_TARGET)
SC_INLINE void bdot_span_bf16(const int ri, const int kv, const uint32_t *tab, int64_t nbp,
                              const uint8_t *const *rc, const char *const *rv,
                              float *const *ra, int64_t g0, int64_t g1) {
    if (nbp == 8)
        BDOT_SPAN(__m256, _mm256_load_ps, _mm256_store_ps, 8, bdot_step_ymm);
    else
        BDOT_SPAN(__m512, _mm512_load_ps, _mm512_store_ps, 16, bdot_step_zmm);
}

SC_TARGET(BF16_TARGET)
static int64_t bdot_rows_bf16(const void *job, int64_t r0, int64_t r1) {
    BDOT_LOOP(bdot_span_bf16, (J->nbp == 8 ? 8 : 16)); /* nbp 8: one 8-lane vector */
    return err ? err : count;
}

static int has_bf16(void) {
    static int cached = -1;
    if (cached < 0) {
        __builtin_cpu_init();
        cached = __builtin_cpu_supports("avx512bf16");
    }
    return cached;
}
#endif
#undef BDOT_LOOP
#undef BDOT_SPAN
#endif

/* The buffers shared by the three layouts: the values and the product. */
typedef struct {
    sc_arr vbits, vtab, vf, xt, yt;
} common_arrs;

static int get_common(sc_bufs *B, PyObject *const *a, prod_t *P, common_arrs *A,
                      int64_t mode, int64_t trans, int64_t k_in, int64_t k_out) {
    if (sc_get(B, a[0], 0, 0, "vbits", &A->vbits) < 0 || sc_get(B, a[1], 0, 4, "vtab", &A->vtab) < 0 ||
        sc_get(B, a[2], 0, 4, "vf", &A->vf) < 0 || sc_get(B, a[4], 0, 4, "xt", &A->xt) < 0 ||
        sc_get(B, a[5], 1, 4, "yt", &A->yt) < 0)
        return -1;
    int vs = (int)A->vbits.itemsize;
    if (mode < MODE_TABLE || mode > MODE_F16 || (vs != 1 && vs != 2 && vs != 4 && vs != 8)) {
        PyErr_SetString(PyExc_ValueError, "unknown value mode or value item size");
        return -1;
    }
    if (((mode == MODE_TABLE || mode == MODE_F16) && (vs > 2 || A->vtab.n < ((int64_t)1 << (8 * vs)))) ||
        (mode == MODE_BF16 && vs != 2) || (mode == MODE_FLOATS && A->vf.n != A->vbits.n)) {
        PyErr_SetString(PyExc_ValueError, "value table or float values do not match the mode");
        return -1;
    }
    const int64_t nb = k_in ? A->xt.n / k_in : (k_out ? A->yt.n / k_out : 0);
    if (k_in < 0 || k_out < 0 || A->xt.n != k_in * nb || A->yt.n != k_out * nb) {
        PyErr_Format(PyExc_ValueError, "xt holds %zd items and yt %zd: not (%lld, nb) and (%lld, nb)",
                     A->xt.n, A->yt.n, (long long)k_in, (long long)k_out);
        return -1;
    }
    P->vbits = A->vbits.p;
    P->vsize = vs;
    P->nvals = A->vbits.n;
    P->vtab = A->vtab.p;
    P->ntab = A->vtab.n;
    P->vf = A->vf.p;
    P->mode = (int)mode;
    P->xt = A->xt.p;
    P->yt = A->yt.p;
    P->nb = nb;
    P->trans = trans != 0;
    P->simd = use_avx2() ? (sc_simd >= SC_SIMD_AVX512 ? 2 : 1) : 0;
    return 0;
}

static PyObject *result(int64_t count) {
    if (count == SC_NOMEM) return PyErr_NoMemory();
    return PyLong_FromLongLong(count);
}

/* nm_matmul(packed, lut, k, positions, n, m, rows, cols, vbits, vtab, vf, mode, xt, yt,
 *           trans, threads, xbf16) -> count. lut is (lutrows, k) uint16: word w of `packed`
 * holds the codes lut[w, 0..k-1]; positions is (ncodes, n) uint8. xbf16: xt holds bfloat16
 * values (widened), and 2:4 bfloat16 weights from batch 5 take the pair products (bdot). */
static PyObject *nm_matmul(PyObject *self, PyObject *const *a, Py_ssize_t nargs) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, nm24_init);
    if (sc_nargs(nargs, 17, "nm_matmul") < 0) return NULL;
    int64_t k, n, m, rows, cols, mode, trans, threads, xbf16;
    if (sc_i64(a[2], &k) < 0 || sc_i64(a[4], &n) < 0 || sc_i64(a[5], &m) < 0 ||
        sc_i64(a[6], &rows) < 0 || sc_i64(a[7], &cols) < 0 || sc_i64(a[11], &mode) < 0 ||
        sc_i64(a[14], &trans) < 0 || sc_i64(a[15], &threads) < 0 || sc_i64(a[16], &xbf16) < 0)
        return NULL;
    sc_bufs B = {.n = 0};
    sc_arr packed, lut, pos;
    common_arrs A;
    nm_job J;
    PyObject *vals[6] = {a[8], a[9], a[10], NULL, a[12], a[13]};
    if (sc_get(&B, a[0], 0, 0, "packed", &packed) < 0 || sc_get(&B, a[1], 0, 2, "lut", &lut) < 0 ||
        sc_get(&B, a[3], 0, 1, "positions", &pos) < 0 ||
        get_common(&B, vals, &J.P, &A, mode, trans, trans ? rows : cols, trans ? cols : rows) < 0)
        goto fail;
    if (m < 2 || m > 16 || n < 1 || n >= m || k < 1 || lut.n % k || rows < 0 || cols < 0 ||
        pos.n == 0 || pos.n % n || packed.itemsize > 8 || packed.itemsize == 0 ||
        (packed.itemsize & (packed.itemsize - 1))) {
        PyErr_SetString(PyExc_ValueError, "nm_matmul: bad n, m, k, shape, lut or positions");
        goto fail;
    }
    for (int64_t i = 0; i < pos.n; i++)
        if (((const uint8_t *)pos.p)[i] >= m) {
            PyErr_SetString(PyExc_ValueError, "nm_matmul: a position >= m");
            goto fail;
        }
    J.packed = packed.p;
    J.psize = (int)packed.itemsize;
    J.npacked = packed.n;
    J.lut = lut.p;
    J.k = k;
    J.lutrows = lut.n / k;
    J.pos = pos.p;
    J.n = n;
    J.ncodes = pos.n / n;
    J.m = m;
    J.gpr = (cols + m - 1) / m;
    J.P.rows = rows;
    J.P.cols = cols;
    J.xrows = NULL;
    J.one16 = 0;
    J.tiled = 0;
    const prod_t *P = &J.P;
    const int fast = n == 2 && m == 4 && J.ncodes == 6 && !P->trans && P->nb >= 1 &&
                     P->nb <= NM24_MAX_NB &&
                     (P->mode == MODE_BF16 || P->mode == MODE_F16 || P->mode == MODE_FLOATS);
    const int bdot = xbf16 && n == 2 && m == 4 && J.ncodes == 6 && !P->trans &&
                     P->nb >= BDOT_MIN_NB && P->mode == MODE_BF16;
    const int spmm8 = n == 2 && m == 4 && J.ncodes == 6 && !P->trans && P->nb > NM24_MAX_NB &&
                      P->nb <= 8 && P->simd;
    const int spmm24 = n == 2 && m == 4 && J.ncodes == 6 && !P->trans && P->simd >= 2;
    (void)spmm8, (void)spmm24; /* read by the x86 kernels' branches only */
    int64_t count;
    float *xrows = NULL;
    Py_BEGIN_ALLOW_THREADS
    if (!rows || !cols) {
        if (!P->trans) memset(P->yt, 0, (size_t)(rows * P->nb) * 4);
        count = 0;
    } else if (fast) {
        if (P->nb == 1) {
            J.xrows = P->xt;
        } else {
            xrows = x_by_rows(P->xt, cols, P->nb, 0);
            J.xrows = xrows;
        }
        if (!J.xrows) {
            count = SC_NOMEM;
        } else {
#if SC_X86
            if (P->simd >= 2)
                count = parallel_rows(nm24_avx512[P->nb - 1][P->mode == MODE_BF16  ? 0
                                                             : P->mode == MODE_F16 ? 1
                                                                                   : 2],
                                      &J, rows, threads);
            else if (P->simd)
                count = parallel_rows(nm24_rows_avx2, &J, rows, threads);
            else
#endif
                count = parallel_rows(nm24_rows_scalar, &J, rows, threads);
        }
        free(xrows);
    } else if (bdot) {
        /* lanes in chunks of at most BDOT_MAX_LANES, each its own table: every lane's chain
         * is the same; the first chunk's count (kept values a lane) is the product's */
        count = 0;
        for (int64_t l0 = 0; l0 < P->nb && count >= 0; l0 += BDOT_MAX_LANES) {
            J.lane0 = l0;
            J.lanes = P->nb - l0 < BDOT_MAX_LANES ? P->nb - l0 : BDOT_MAX_LANES;
            int kept;
            uint32_t *tab = bdot_table(&J, &kept, threads);
            rows_fn fn = bdot_rows_scalar;
#if SC_X86
            if (P->simd)
                fn = bdot_rows_avx2;
#endif
#ifdef SC_HAVE_BF16
            if (P->simd >= 2 && has_bf16()) fn = bdot_rows_bf16;
#endif
            const int64_t c = tab ? parallel_rows(fn, &J, rows, threads) : SC_NOMEM;
            if (tab) sc_giveback(&bdot_kept, tab, kept);
            if (c < 0 || l0 == 0) count = c;
        }
#if SC_X86
    } else if (spmm8 && P->nb < 8 && (rows + cols) * 32 <= PAD_MAX_BYTES) {
        /* batch 5-7 on x padded to 8 lanes: whole, aligned rows of xt, where 5-7 lanes took
         * masked loads straddling lines (a 256x4096 layer in a loop, ns a kept value: batch 5
         * 0.51-0.54 -> 0.48-0.49, batch 7 0.53-0.69 -> 0.49-0.50) */
        count = rows_on_lanes(P->simd >= 2 ? nm24_spmm8_avx512 : nm24_spmm8_avx2, &J, &J.P,
                              rows, threads, 8, 8);
    } else if (spmm8) {
        count = parallel_rows(P->simd >= 2 ? nm24_spmm8_avx512 : nm24_spmm8_avx2, &J, rows,
                              threads);
    } else if (spmm24 && P->nb < 16 && padded_lanes(P, rows) == 32) {
        /* 9-15 lanes where padded_rows pads to 32 (so one chain a lane): 16 lanes of one
         * chain, not 32 of which half are padding (2048x4096 in a loop, ns a kept value:
         * 1.07-1.5 -> 0.77-0.85, a pass in five 1.1-1.2) */
        J.one16 = 1;
        count = rows_on_lanes(nm24_spmm_avx512, &J, &J.P, rows, threads, 16, 16);
    } else if (spmm24) {
        /* from 9 lanes (nb <= 8 took a branch above): the lanes padded as for nm_rows */
        count = nm24_spmm_tiles(&J, rows, threads);
#endif
    } else {
        count = padded_rows(nm_rows, &J, &J.P, rows, threads);
    }
    Py_END_ALLOW_THREADS
    sc_release(&B);
    return result(count);
fail:
    sc_release(&B);
    return NULL;
}

/* -- bitmask ------------------------------------------------------------------------------ */

typedef struct {
    prod_t P;
    const uint8_t *mask;
    int64_t nmask;
} mask_job;

SC_INLINE uint64_t load64(const uint8_t *p) {
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
}

/* Set bits before element e (a prefix popcount). */
static int64_t mask_rank(const uint8_t *mask, int64_t e) {
    int64_t total = 0, i = 0, bytes = e >> 3;
    for (; i + 8 <= bytes; i += 8) total += __builtin_popcountll(load64(mask + i));
    for (; i < bytes; i++) total += __builtin_popcount(mask[i]);
    if (e & 7) total += __builtin_popcount(mask[bytes] & ((1u << (e & 7)) - 1));
    return total;
}

static int64_t mask_rows(const void *job, int64_t r0, int64_t r1) {
    const mask_job *J = (const mask_job *)job;
    const prod_t *P = &J->P;
    const int64_t cols = P->cols;
    if (((r1 * cols) + 7) >> 3 > J->nmask) return SC_BAD_FRAME;
    scratch_t s;
    stash_t st = {0}; /* freed even if never set up */
    int64_t err = scratch_alloc(&s, cols, P->nb, 0);
    if (!err) err = stash_init(P, &st, cols);
    int64_t j = mask_rank(J->mask, r0 * cols), j0 = j;
    for (int64_t r = r0; r < r1 && !err; r++) {
        const int64_t start = r * cols, end = start + cols;
        int64_t e = start, cnt = 0;
        while (e < end) {
            if ((e & 63) == 0 && e + 64 <= end) {
                uint64_t w = load64(J->mask + (e >> 3));
                while (w) {
                    s.cidx[cnt++] = e - start + __builtin_ctzll(w);
                    w &= w - 1;
                }
                e += 64;
            } else {
                if ((J->mask[e >> 3] >> (e & 7)) & 1) s.cidx[cnt++] = e - start;
                e++;
            }
        }
        if ((err = convert(P, j, cnt, s.vals))) break;
        put_row(P, &st, r, s.cidx, s.vals, cnt, s.acc);
        j += cnt;
    }
    if (!err) stash_flush(P, &st);
    stash_free(&st);
    scratch_free(&s);
    return err ? err : j - j0;
}

/* The bitmask GEMV (cols a multiple of 8, batch <= MASK8_MAX_NB): per mask byte (8 columns),
 * the byte's kept values, read on from the row's value offset, are moved to their columns by
 * one permutation (mask_perm[byte]) and the other lanes zeroed (mask_keep[byte]): the 8 weights
 * of those columns, dense, times x as it is, one FMA. The zeros are multiplied, as in the dense
 * product. Two accumulators (even / odd bytes), then nm24_hsum. The scalar twin does the same
 * per lane (+0.0 for an empty lane, fmaf). Up to batch 24 it beats the SpMM, which skips the
 * zeros but runs one broadcast a kept value (float32 50% unstructured, ms a 4096x4096 layer:
 * batch 9 12.7 against 25.3, 16 17.5 against 20.5, 24 23.8 against 25.6, 32 30.5 against
 * 25.5; 1536x384 and 384x1536 cross over the same way). */
#define MASK8_MAX_NB 24
static int32_t mask_perm[256 * 8], mask_keep[256 * 8];

static void mask8_init(void) {
    for (int b = 0; b < 256; b++) {
        int rank = 0;
        for (int l = 0; l < 8; l++) {
            int set = (b >> l) & 1;
            mask_perm[b * 8 + l] = set ? rank : 0;
            mask_keep[b * 8 + l] = set ? -1 : 0;
            rank += set;
        }
    }
}

typedef struct {
    mask_job M;
    const float *xrows;
} mask8_job;

static int64_t mask8_rows_scalar(const void *job, int64_t r0, int64_t r1) {
    const mask8_job *J = (const mask8_job *)job;
    const prod_t *P = &J->M.P;
    const int64_t cols = P->cols, nb = P->nb, nbytes = cols / 8;
    if (r1 * nbytes > J->M.nmask) return SC_BAD_FRAME;
    scratch_t s;
    int64_t err = scratch_alloc(&s, cols + 8, nb, 0);
    int64_t j = mask_rank(J->M.mask, r0 * cols), j0 = j;
    for (int64_t r = r0; r < r1 && !err; r++) {
        const uint8_t *mb = J->M.mask + r * nbytes;
        const int64_t cnt = mask_rank(mb, cols);
        if ((err = convert(P, j, cnt, s.vals))) break;
        for (int64_t b = 0; b < nb; b++) {
            const float *x = J->xrows + b * cols;
            float acc[2][8] = {{0}};
            int64_t t = 0;
            for (int64_t i = 0; i < nbytes; i++) {
                const int byte = mb[i];
                float *a = acc[i & 1];
                for (int l = 0; l < 8; l++) {
                    const float wv = (byte >> l) & 1 ? s.vals[t + mask_perm[byte * 8 + l]] : 0.0f;
                    a[l] = fmaf(wv, x[8 * i + l], a[l]);
                }
                t += __builtin_popcount(byte);
            }
            float sum8[8];
            for (int l = 0; l < 8; l++) sum8[l] = acc[0][l] + acc[1][l];
            P->yt[r * nb + b] = nm24_hsum(sum8);
        }
        j += cnt;
    }
    scratch_free(&s);
    return err ? err : j - j0;
}

#if SC_X86
/* One mask byte's 8 weights, dense: its kept values (from vals on) moved to their lanes, the
 * other lanes +0.0. */
SC_TARGET("avx2,fma") SC_INLINE __m256 mask8_vector(const float *vals, int byte) {
    return _mm256_and_ps(
        _mm256_permutevar8x32_ps(_mm256_loadu_ps(vals),
                                 _mm256_loadu_si256((const __m256i *)(mask_perm + byte * 8))),
        _mm256_loadu_ps((const float *)(mask_keep + byte * 8)));
}

SC_TARGET("avx2,fma")
static int64_t mask8_rows_avx2(const void *job, int64_t r0, int64_t r1) {
    const mask8_job *J = (const mask8_job *)job;
    const prod_t *P = &J->M.P;
    const int64_t cols = P->cols, nb = P->nb, nbytes = cols / 8;
    if (r1 * nbytes > J->M.nmask) return SC_BAD_FRAME;
    scratch_t s;
    int64_t err = scratch_alloc(&s, cols + 8, nb, 0);
    /* batch 4-24: the row's weight vectors are made once, into `dense`, then the columns of x
     * run against them four at a time (the same vectors, the same FMAs in the same order as
     * one column at a time); batch 2 and 3 ran slower that way (5.8-6.0 against 5.1 ms a
     * 4096x4096 2:4 layer at batch 2) */
    float *dense = nb >= 4 ? malloc((size_t)(nbytes + 1) * 8 * 4) : NULL;
    if (!err && nb >= 4 && !dense) err = SC_NOMEM;
    int64_t j = mask_rank(J->M.mask, r0 * cols), j0 = j;
    for (int64_t r = r0; r < r1 && !err; r++) {
        const uint8_t *mb = J->M.mask + r * nbytes;
        const int64_t cnt = mask_rank(mb, cols);
        if ((err = convert(P, j, cnt, s.vals))) break; /* s.vals has 8 spare lanes */
        if (dense) {
            int64_t t = 0;
            for (int64_t i = 0; i < nbytes; i++) {
                const int b0 = mb[i];
                _mm256_storeu_ps(dense + 8 * i, mask8_vector(s.vals + t, b0));
                t += __builtin_popcount(b0);
            }
        }
        int64_t b = 0;
        if (dense) /* four columns of x at a time: each weight vector loaded once for four */
            for (; b + 4 <= nb; b += 4) {
                const float *x = J->xrows + b * cols;
                __m256 a[4][2];
                for (int k = 0; k < 4; k++) a[k][0] = a[k][1] = _mm256_setzero_ps();
                int64_t i = 0;
                for (; i + 2 <= nbytes; i += 2) {
                    const __m256 w0 = _mm256_loadu_ps(dense + 8 * i);
                    const __m256 w1 = _mm256_loadu_ps(dense + 8 * i + 8);
                    for (int k = 0; k < 4; k++) {
                        const float *xk = x + k * cols + 8 * i;
                        a[k][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xk), a[k][0]);
                        a[k][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xk + 8), a[k][1]);
                    }
                }
                if (i < nbytes) {
                    const __m256 w0 = _mm256_loadu_ps(dense + 8 * i);
                    for (int k = 0; k < 4; k++)
                        a[k][0] =
                            _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + k * cols + 8 * i), a[k][0]);
                }
                for (int k = 0; k < 4; k++) {
                    float sum8[8];
                    _mm256_storeu_ps(sum8, _mm256_add_ps(a[k][0], a[k][1]));
                    P->yt[r * nb + b + k] = nm24_hsum(sum8);
                }
            }
        for (; b < nb; b++) {
            const float *x = J->xrows + b * cols;
            __m256 a0 = _mm256_setzero_ps(), a1 = a0;
            int64_t t = 0, i = 0;
            for (; i + 2 <= nbytes; i += 2) {
                const int b0 = mb[i], b1 = mb[i + 1];
                __m256 w0, w1;
                if (dense) {
                    w0 = _mm256_loadu_ps(dense + 8 * i);
                    w1 = _mm256_loadu_ps(dense + 8 * i + 8);
                } else {
                    w0 = mask8_vector(s.vals + t, b0);
                    t += __builtin_popcount(b0);
                    w1 = mask8_vector(s.vals + t, b1);
                    t += __builtin_popcount(b1);
                }
                a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + 8 * i), a0);
                a1 = _mm256_fmadd_ps(w1, _mm256_loadu_ps(x + 8 * i + 8), a1);
            }
            if (i < nbytes) { /* an even byte left: into a0 */
                const __m256 w0 = dense ? _mm256_loadu_ps(dense + 8 * i)
                                        : mask8_vector(s.vals + t, mb[i]);
                a0 = _mm256_fmadd_ps(w0, _mm256_loadu_ps(x + 8 * i), a0);
            }
            float sum8[8];
            _mm256_storeu_ps(sum8, _mm256_add_ps(a0, a1));
            P->yt[r * nb + b] = nm24_hsum(sum8);
        }
        j += cnt;
    }
    free(dense);
    scratch_free(&s);
    return err ? err : j - j0;
}

/* mask8_rows_avx2 with 16 lanes, at batch 1: a pair of mask bytes (i even, i + 1) is one
 * 16-bit mask k, whose kept values (popcount(k) of them, read on from the row's offset) one
 * `vexpandps` moves to their lanes, zeros in the others. Lanes 0-7 are byte i's, 8-15 byte
 * i + 1's: the two halves are the AVX2 path's two accumulators, the same fmaf per lane in the
 * same order; a last even byte updates lanes 0-7 only (a masked FMA). bfloat16 values are
 * widened in registers from a masked load of exactly popcount(k) of them (no conversion pass,
 * nothing read past the row's values); other modes expand from the converted row. (At
 * batches 2-8 the AVX2 path was faster than this loop run once per column of x.) */
SC_TARGET("avx512f,avx512bw,avx512vl,avx2,fma")
SC_INLINE __m512 mask16_values(const uint16_t *src, const float *vals, unsigned pc, int bf16) {
    if (!bf16) return _mm512_loadu_ps(vals);
    const __m256i raw = _mm256_maskz_loadu_epi16((__mmask16)((1u << pc) - 1), src);
    return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

SC_TARGET("avx512f,avx512bw,avx512vl,avx2,fma")
static int64_t mask8_rows_avx512(const void *job, int64_t r0, int64_t r1) {
    const mask8_job *J = (const mask8_job *)job;
    const prod_t *P = &J->M.P;
    const int64_t cols = P->cols, nbytes = cols / 8;
    if (r1 * nbytes > J->M.nmask) return SC_BAD_FRAME;
    const int bf16 = P->mode == MODE_BF16;
    const float *x = J->xrows;
    scratch_t s;
    int64_t err = scratch_alloc(&s, cols + 8, 1, 0); /* vals: cols + 16 floats */
    int64_t j = mask_rank(J->M.mask, r0 * cols), j0 = j;
    for (int64_t r = r0; r < r1 && !err; r++) {
        const uint8_t *mb = J->M.mask + r * nbytes;
        const int64_t cnt = mask_rank(mb, cols);
        if (bf16) {
            if (j < 0 || j + cnt > P->nvals) err = SC_BAD_FRAME;
        } else {
            err = convert(P, j, cnt, s.vals);
        }
        if (err) break;
        const uint16_t *src = (const uint16_t *)((const char *)P->vbits + 2 * j);
        __m512 acc = _mm512_setzero_ps();
        int64_t t = 0, i = 0;
        for (; i + 2 <= nbytes; i += 2) {
            const unsigned k = (unsigned)mb[i] | (unsigned)mb[i + 1] << 8;
            const unsigned pc = (unsigned)__builtin_popcount(k);
            const __m512 v = mask16_values(src + t, s.vals + t, pc, bf16);
            acc = _mm512_fmadd_ps(_mm512_maskz_expand_ps((__mmask16)k, v),
                                  _mm512_loadu_ps(x + 8 * i), acc);
            t += pc;
        }
        if (i < nbytes) { /* an even byte left: lanes 0-7 */
            const unsigned k = mb[i];
            const __m512 v =
                mask16_values(src + t, s.vals + t, (unsigned)__builtin_popcount(k), bf16);
            acc = _mm512_mask3_fmadd_ps(_mm512_maskz_expand_ps((__mmask16)k, v),
                                        _mm512_maskz_loadu_ps(0xFF, x + 8 * i), acc, 0xFF);
        }
        float sum8[8];
        const __m256 hi = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc), 1));
        _mm256_storeu_ps(sum8, _mm256_add_ps(_mm512_castps512_ps256(acc), hi));
        P->yt[r] = nm24_hsum(sum8);
        j += cnt;
    }
    scratch_free(&s);
    return err ? err : j - j0;
}
#endif

/* -- a bitmask as 2:4 pattern codes -------------------------------------------------------- */

/* The 2:4 code of each 4-bit group (nibble) of a mask: code c for the nibble with bits
 * nm24_pos[c] set, 0xFF where the group does not keep exactly two. */
static void code24_of_nibble(uint8_t table[16]) {
    memset(table, 0xFF, 16);
    for (int c = 0; c < 6; c++) table[(1 << nm24_pos[c][0]) | (1 << nm24_pos[c][1])] = (uint8_t)c;
}

/* Group g (bits 4g .. 4g + 3 of the LSB-first mask) to out[g], for g < groups; returns 1 if
 * every group keeps exactly two, else 0 (out then holds 0xFF somewhere). */
static int mask_codes24_scalar(const uint8_t *mask, int64_t groups, uint8_t *out,
                               const uint8_t table[16]) {
    uint8_t bad = 0;
    for (int64_t g = 0; g < groups; g++) {
        const uint8_t c = table[(mask[g >> 1] >> (4 * (g & 1))) & 15];
        out[g] = c;
        bad |= c & 0x80;
    }
    return !bad;
}

#if SC_X86
/* The same 32 groups (16 mask bytes) a step: the low and high nibbles looked up by two
 * pshufb and interleaved (a byte's low nibble is the earlier group). */
SC_TARGET("avx2") static int mask_codes24_avx2(const uint8_t *mask, int64_t groups,
                                              uint8_t *out, const uint8_t codes[16]) {
    const __m128i table = _mm_loadu_si128((const __m128i *)codes);
    const __m128i low4 = _mm_set1_epi8(0x0F);
    __m128i bad = _mm_setzero_si128();
    int64_t g = 0;
    for (; g + 32 <= groups; g += 32) {
        const __m128i m = _mm_loadu_si128((const __m128i *)(mask + g / 2));
        const __m128i lo = _mm_shuffle_epi8(table, _mm_and_si128(m, low4));
        const __m128i hi = _mm_shuffle_epi8(table, _mm_and_si128(_mm_srli_epi16(m, 4), low4));
        const __m128i a = _mm_unpacklo_epi8(lo, hi), b = _mm_unpackhi_epi8(lo, hi);
        _mm_storeu_si128((__m128i *)(out + g), a);
        _mm_storeu_si128((__m128i *)(out + g + 16), b);
        bad = _mm_or_si128(bad, _mm_or_si128(a, b));
    }
    const int rest = mask_codes24_scalar(mask + g / 2, groups - g, out + g, codes);
    return rest && !(_mm_movemask_epi8(bad));
}
#endif

/* mask_codes24(mask u8, groups, out u8 (w)) -> bool: out[g] = the 2:4 code of group g. */
static PyObject *mask_codes24(PyObject *self, PyObject *const *a, Py_ssize_t nargs) {
    if (sc_nargs(nargs, 3, "mask_codes24") < 0) return NULL;
    int64_t groups;
    if (sc_i64(a[1], &groups) < 0) return NULL;
    sc_bufs B = {.n = 0};
    sc_arr mask, out;
    PyObject *res = NULL;
    if (sc_get(&B, a[0], 0, 1, "mask", &mask) < 0 || sc_get(&B, a[2], 1, 1, "out", &out) < 0)
        goto done;
    if (groups < 0 || out.n < groups || mask.n < (groups + 1) / 2) {
        PyErr_SetString(PyExc_ValueError, "mask_codes24: mask or out shorter than the groups");
        goto done;
    }
    int ok;
    uint8_t table[16];
    code24_of_nibble(table);
    const int simd = use_avx2();
    Py_BEGIN_ALLOW_THREADS
#if SC_X86
    if (simd)
        ok = mask_codes24_avx2(mask.p, groups, out.p, table);
    else
#endif
        ok = mask_codes24_scalar(mask.p, groups, out.p, table);
    Py_END_ALLOW_THREADS
    (void)simd;
    res = PyBool_FromLong(ok);
done:
    sc_release(&B);
    return res;
}

/* mask_matmul(mask, rows, cols, vbits, vtab, vf, mode, xt, yt, trans, threads) -> count */
static PyObject *mask_matmul(PyObject *self, PyObject *const *a, Py_ssize_t nargs) {
    if (sc_nargs(nargs, 11, "mask_matmul") < 0) return NULL;
    int64_t rows, cols, mode, trans, threads;
    if (sc_i64(a[1], &rows) < 0 || sc_i64(a[2], &cols) < 0 || sc_i64(a[6], &mode) < 0 ||
        sc_i64(a[9], &trans) < 0 || sc_i64(a[10], &threads) < 0)
        return NULL;
    sc_bufs B = {.n = 0};
    sc_arr mask;
    common_arrs A;
    mask_job J;
    PyObject *vals[6] = {a[3], a[4], a[5], NULL, a[7], a[8]};
    if (sc_get(&B, a[0], 0, 1, "mask", &mask) < 0 ||
        get_common(&B, vals, &J.P, &A, mode, trans, trans ? rows : cols, trans ? cols : rows) < 0)
        goto fail;
    if (rows < 0 || cols < 0) {
        PyErr_SetString(PyExc_ValueError, "mask_matmul: negative shape");
        goto fail;
    }
    J.mask = mask.p;
    J.nmask = mask.n;
    J.P.rows = rows;
    J.P.cols = cols;
    const prod_t *P = &J.P;
    const int fast = !P->trans && cols > 0 && cols % 8 == 0 && P->nb >= 1 &&
                     P->nb <= MASK8_MAX_NB && rows > 0;
    int64_t count;
    Py_BEGIN_ALLOW_THREADS
    if (fast) {
        static pthread_once_t once = PTHREAD_ONCE_INIT;
        pthread_once(&once, mask8_init);
        mask8_job K = {.M = J, .xrows = P->xt};
        float *xrows = NULL;
        if (P->nb > 1) {
            xrows = x_by_rows(P->xt, cols, P->nb, 4);
            K.xrows = xrows;
        }
        if (!K.xrows) {
            count = SC_NOMEM;
        } else {
#if SC_X86
            if (P->simd >= 2 && P->nb == 1)
                count = parallel_rows(mask8_rows_avx512, &K, rows, threads);
            else if (P->simd)
                count = parallel_rows(mask8_rows_avx2, &K, rows, threads);
            else
#endif
                count = parallel_rows(mask8_rows_scalar, &K, rows, threads);
        }
        free(xrows);
    } else {
        count = padded_rows(mask_rows, &J, &J.P, rows, threads);
    }
    Py_END_ALLOW_THREADS
    sc_release(&B);
    return result(count);
fail:
    sc_release(&B);
    return NULL;
}

/* -- CSR ---------------------------------------------------------------------------------- */

typedef struct {
    prod_t P;
    const int64_t *indptr;
    const void *indices;
    int isize;
    int64_t nindices;
} csr_job;

static int64_t csr_rows(const void *job, int64_t r0, int64_t r1) {
    const csr_job *J = (const csr_job *)job;
    const prod_t *P = &J->P;
    const int64_t cols = P->cols;
    scratch_t s;
    stash_t st = {0}; /* freed even if never set up */
    int64_t err = scratch_alloc(&s, cols, P->nb, 0), count = 0;
    if (!err) err = stash_init(P, &st, cols);
    for (int64_t r = r0; r < r1 && !err; r++) {
        const int64_t v0 = J->indptr[r], cnt = J->indptr[r + 1] - v0;
        if (v0 < 0 || cnt < 0 || cnt > cols || v0 + cnt > J->nindices) {
            err = SC_BAD_FRAME;
            break;
        }
        for (int64_t t = 0; t < cnt; t++) {
            uint64_t c = rd_uint(J->indices, J->isize, v0 + t);
            if (c >= (uint64_t)cols) {
                err = SC_BAD_FRAME;
                break;
            }
            s.cidx[t] = (int64_t)c;
        }
        if (err || (err = convert(P, v0, cnt, s.vals))) break;
        put_row(P, &st, r, s.cidx, s.vals, cnt, s.acc);
        count += cnt;
    }
    if (!err) stash_flush(P, &st);
    stash_free(&st);
    scratch_free(&s);
    return err ? err : count;
}

/* The CSR GEMV (batch 1, not transposed): a row's kept values in eight chains, value t into
 * chain t mod 8 by fmaf, in ascending t, the chains added as nm24_hsum adds them. The AVX2
 * twin runs the chains as the lanes of one vector: 8 indices widened to 32 bits and checked,
 * x gathered by them, 8 bfloat16 values widened in registers (other value kinds converted a
 * row at a time first), one FMA; the row's last cnt % 8 values from copies padded with
 * index 0 and value +0.0, the lanes past the row blended back. Index items of 1, 2 or 4
 * bytes (8-byte ones take the gather dot). */
SC_INLINE int csr_row_bounds(const csr_job *J, int64_t r, int64_t *v0, int64_t *cnt) {
    *v0 = J->indptr[r];
    *cnt = J->indptr[r + 1] - *v0;
    return *v0 < 0 || *cnt < 0 || *cnt > J->P.cols || *v0 + *cnt > J->nindices;
}

static int64_t csr1_rows_scalar(const void *job, int64_t r0, int64_t r1) {
    const csr_job *J = (const csr_job *)job;
    const prod_t *P = &J->P;
    const int64_t cols = P->cols;
    float *vals = malloc((size_t)(cols + 8) * 4);
    int64_t err = vals ? 0 : SC_NOMEM, count = 0;
    for (int64_t r = r0; r < r1 && !err; r++) {
        int64_t v0, cnt;
        if (csr_row_bounds(J, r, &v0, &cnt)) err = SC_BAD_FRAME;
        if (err || (err = convert(P, v0, cnt, vals))) break;
        float acc[8] = {0};
        for (int64_t t = 0; t < cnt; t++) {
            const uint64_t c = rd_uint(J->indices, J->isize, v0 + t);
            if (c >= (uint64_t)cols) {
                err = SC_BAD_FRAME;
                break;
            }
            acc[t & 7] = fmaf(vals[t], P->xt[c], acc[t & 7]);
        }
        P->yt[r] = nm24_hsum(acc);
        count += cnt;
    }
    free(vals);
    return err ? err : count;
}

#if SC_X86
/* 8 indices (1-, 2- or 4-byte items) as 32-bit lanes. */
SC_TARGET("avx2,fma") SC_INLINE __m256i csr_idx8(const void *p, int isize) {
    if (isize == 1) return _mm256_cvtepu8_epi32(_mm_loadl_epi64((const __m128i *)p));
    if (isize == 2) return _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)p));
    return _mm256_loadu_si256((const __m256i *)p);
}

/* Lanes whose (unsigned) index is at most top: all ones. */
SC_TARGET("avx2,fma") SC_INLINE __m256i csr_ok(__m256i idx, __m256i top) {
    return _mm256_cmpeq_epi32(_mm256_min_epu32(idx, top), idx);
}

SC_TARGET("avx2,fma") static int64_t csr1_rows_avx2(const void *job, int64_t r0, int64_t r1) {
    const csr_job *J = (const csr_job *)job;
    const prod_t *P = &J->P;
    const int64_t cols = P->cols;
    const int isize = J->isize, bf16 = P->mode == MODE_BF16;
    const __m256i top = _mm256_set1_epi32((int)(cols - 1));
    const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    float *vals = bf16 ? NULL : malloc((size_t)(cols + 8) * 4);
    int64_t err = bf16 || vals ? 0 : SC_NOMEM, count = 0;
    for (int64_t r = r0; r < r1 && !err; r++) {
        int64_t v0, cnt;
        if (csr_row_bounds(J, r, &v0, &cnt)) err = SC_BAD_FRAME;
        else if (bf16 ? v0 + cnt > P->nvals : (err = convert(P, v0, cnt, vals)) != 0)
            err = SC_BAD_FRAME;
        if (err) break;
        const char *ix = (const char *)J->indices + v0 * isize;
        const uint16_t *vb = (const uint16_t *)((const char *)P->vbits + 2 * v0);
        __m256 acc = _mm256_setzero_ps();
        __m256i bad = _mm256_setzero_si256();
        int64_t t = 0;
        for (; t + 8 <= cnt; t += 8) {
            const __m256i idx = csr_idx8(ix + t * isize, isize);
            const __m256i ok = csr_ok(idx, top);
            bad = _mm256_or_si256(bad, _mm256_xor_si256(ok, _mm256_set1_epi32(-1)));
            const __m256i safe = _mm256_and_si256(ok, idx);
            const __m256 v = bf16 ? bf16x8((const char *)(vb + t)) : _mm256_loadu_ps(vals + t);
            acc = _mm256_fmadd_ps(v, _mm256_i32gather_ps(P->xt, safe, 4), acc);
        }
        if (t < cnt) { /* the last values, from zero-padded copies */
            const int64_t left = cnt - t;
            uint32_t i32[8] = {0};
            uint16_t v16[8] = {0};
            float vf[8] = {0};
            for (int64_t k = 0; k < left; k++) {
                i32[k] = (uint32_t)rd_uint(J->indices, isize, v0 + t + k);
                if (bf16) v16[k] = ld16(vb, t + k);
                else vf[k] = vals[t + k];
            }
            const __m256i idx = _mm256_loadu_si256((const __m256i *)i32);
            const __m256i in = _mm256_cmpgt_epi32(_mm256_set1_epi32((int)left), lane);
            const __m256i ok = csr_ok(idx, top);
            bad = _mm256_or_si256(bad, _mm256_andnot_si256(ok, in));
            const __m256i safe = _mm256_and_si256(_mm256_and_si256(in, ok), idx);
            const __m256 v = bf16 ? bf16x8((const char *)v16) : _mm256_loadu_ps(vf);
            const __m256 sum = _mm256_fmadd_ps(v, _mm256_i32gather_ps(P->xt, safe, 4), acc);
            acc = _mm256_blendv_ps(acc, sum, _mm256_castsi256_ps(in));
        }
        if (!_mm256_testz_si256(bad, bad)) {
            err = SC_BAD_FRAME;
            break;
        }
        float a8[8];
        _mm256_storeu_ps(a8, acc);
        P->yt[r] = nm24_hsum(a8);
        count += cnt;
    }
    free(vals);
    return err ? err : count;
}
#endif

/* -- dense bfloat16 GEMV ----------------------------------------------------------------- */

/* y[r, b] = sum_j W[r, j] x[j, b] for a dense bfloat16 W (rows x cols bit patterns, read where
 * they lie: any alignment), batch 1 to DENSE_MAX_NB: for each column b of x, sixteen chains,
 * column j into chain j mod 16 by fmaf in ascending j, the chains added pairwise (c, c + 8)
 * and then as nm24_hsum adds them. The AVX2 twin runs the chains as two 8-lane vectors (16
 * values widened in registers by a shift, two FMAs a step), four columns of x against each
 * step's weights; a row's last cols % 16 columns from copies of W and x padded with zeros.
 * Nothing but the result is written: no float32 copy of the block. Up to batch 16 it beats
 * numpy's float32 copy and BLAS (4096x4096, ms a layer: batch 8 8.1 against 21.8, 16 16.6
 * against 22.8, 24 27.2 against 24.4 with OpenBLAS on both cores). */
#define DENSE_MAX_NB 16
typedef struct {
    const char *w;
    const float *x;    /* nb rows of cols floats (x itself at batch 1) */
    const float *xpad; /* nb rows of 16: each row's last cols % 16 floats, then zeros */
    float *y;          /* (rows, nb) */
    int64_t cols, nb;
} dense_job;

static int64_t dense_rows_scalar(const void *job, int64_t r0, int64_t r1) {
    const dense_job *J = (const dense_job *)job;
    for (int64_t r = r0; r < r1; r++) {
        const char *row = J->w + 2 * r * J->cols;
        for (int64_t b = 0; b < J->nb; b++) {
            const float *x = J->x + b * J->cols;
            float acc[16] = {0}, sum8[8];
            for (int64_t j = 0; j < J->cols; j++)
                acc[j & 15] = fmaf(bits_to_f((uint32_t)ld16(row, j) << 16), x[j], acc[j & 15]);
            for (int l = 0; l < 8; l++) sum8[l] = acc[l] + acc[l + 8];
            J->y[r * J->nb + b] = nm24_hsum(sum8);
        }
    }
    return 0;
}

#if SC_X86
SC_TARGET("avx2,fma") static int64_t dense_rows_avx2(const void *job, int64_t r0, int64_t r1) {
    const dense_job *J = (const dense_job *)job;
    const int64_t cols = J->cols, nb = J->nb, whole = cols / 16 * 16, left = cols - whole;
    for (int64_t r = r0; r < r1; r++) {
        const char *row = J->w + 2 * r * cols;
        uint16_t wpad[16] = {0};
        memcpy(wpad, row + 2 * whole, (size_t)left * 2);
        for (int64_t b = 0; b < nb; b += b + 4 <= nb ? 4 : 1) {
            const int n = b + 4 <= nb ? 4 : 1;
            const float *x = J->x + b * cols;
            __m256 a[4][2];
            for (int k = 0; k < 4; k++) a[k][0] = a[k][1] = _mm256_setzero_ps();
            for (int64_t j = 0; j < whole; j += 16) {
                const __m256 w0 = bf16x8(row + 2 * j), w1 = bf16x8(row + 2 * j + 16);
                for (int k = 0; k < n; k++) {
                    const float *xk = x + k * cols + j;
                    a[k][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xk), a[k][0]);
                    a[k][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xk + 8), a[k][1]);
                }
            }
            if (left) { /* padding lanes add (+0)(+0): a chain from +0 is never -0, so no change */
                const __m256 w0 = bf16x8((const char *)wpad), w1 = bf16x8((const char *)(wpad + 8));
                for (int k = 0; k < n; k++) {
                    const float *xp = J->xpad + (b + k) * 16;
                    a[k][0] = _mm256_fmadd_ps(w0, _mm256_loadu_ps(xp), a[k][0]);
                    a[k][1] = _mm256_fmadd_ps(w1, _mm256_loadu_ps(xp + 8), a[k][1]);
                }
            }
            for (int k = 0; k < n; k++) {
                float sum8[8];
                _mm256_storeu_ps(sum8, _mm256_add_ps(a[k][0], a[k][1]));
                J->y[r * nb + b + k] = nm24_hsum(sum8);
            }
        }
    }
    return 0;
}
#endif

/* dense_matmul(w u16 (rows x cols bfloat16 patterns), rows, cols, xt f32 (cols, nb), yt f32
 * (w, (rows, nb)), threads) -> rows: yt = W @ xt, nb from 1 to DENSE_MAX_NB. */
static PyObject *dense_matmul(PyObject *self, PyObject *const *a, Py_ssize_t nargs) {
    if (sc_nargs(nargs, 6, "dense_matmul") < 0) return NULL;
    int64_t rows, cols, threads;
    if (sc_i64(a[1], &rows) < 0 || sc_i64(a[2], &cols) < 0 || sc_i64(a[5], &threads) < 0)
        return NULL;
    sc_bufs B = {.n = 0};
    sc_arr w, x, y;
    PyObject *res = NULL;
    float *xrows = NULL, *xpad = NULL;
    if (sc_get(&B, a[0], 0, 2, "w", &w) < 0 || sc_get(&B, a[3], 0, 4, "x", &x) < 0 ||
        sc_get(&B, a[4], 1, 4, "y", &y) < 0)
        goto done;
    const int64_t nb = cols > 0 ? x.n / cols : 0;
    if (rows < 0 || cols <= 0 || cols > INT32_MAX - 16 || rows > INT64_MAX / cols ||
        w.n != rows * cols || nb < 1 || nb > DENSE_MAX_NB || x.n != cols * nb ||
        y.n != rows * nb) {
        PyErr_SetString(PyExc_ValueError, "dense_matmul: w, x and y do not fit rows x cols");
        goto done;
    }
    const int64_t whole = cols / 16 * 16;
    const float *xt = x.p;
    xpad = calloc((size_t)(nb * 16), 4);
    xrows = nb > 1 ? x_by_rows(xt, cols, nb, 0) : NULL;
    if (!xpad || (nb > 1 && !xrows)) {
        PyErr_NoMemory();
        goto done;
    }
    const float *xr = nb > 1 ? xrows : xt;
    for (int64_t b = 0; b < nb; b++)
        memcpy(xpad + b * 16, xr + b * cols + whole, (size_t)(cols - whole) * 4);
    dense_job J = {w.p, xr, xpad, y.p, cols, nb};
    const int simd = use_avx2();
    Py_BEGIN_ALLOW_THREADS
#if SC_X86
    if (simd)
        parallel_rows(dense_rows_avx2, &J, rows, threads);
    else
#endif
        parallel_rows(dense_rows_scalar, &J, rows, threads);
    Py_END_ALLOW_THREADS
    (void)simd;
    res = PyLong_FromLongLong(rows);
done:
    free(xrows);
    free(xpad);
    sc_release(&B);
    return res;
}

/* csr_matmul(indptr, indices, cols, vbits, vtab, vf, mode, xt, yt, trans, threads) -> count.
 * indptr is int64 with rows + 1 items. */
static PyObject *csr_matmul(PyObject *self, PyObject *const *a, Py_ssize_t nargs) {
    if (sc_nargs(nargs, 11, "csr_matmul") < 0) return NULL;
    int64_t cols, mode, trans, threads;
    if (sc_i64(a[2], &cols) < 0 || sc_i64(a[6], &mode) < 0 || sc_i64(a[9], &trans) < 0 ||
        sc_i64(a[10], &threads) < 0)
        return NULL;
    sc_bufs B = {.n = 0};
    sc_arr indptr, indices;
    common_arrs A;
    csr_job J;
    PyObject *vals[6] = {a[3], a[4], a[5], NULL, a[7], a[8]};
    if (sc_get(&B, a[0], 0, 8, "indptr", &indptr) < 0 ||
        sc_get(&B, a[1], 0, 0, "indices", &indices) < 0)
        goto fail;
    const int64_t rows = indptr.n - 1;
    if (rows < 0 || cols < 0 || indices.itemsize > 8 || indices.itemsize == 0 ||
        (indices.itemsize & (indices.itemsize - 1))) {
        PyErr_SetString(PyExc_ValueError, "csr_matmul: empty indptr, bad cols or index items");
        goto fail;
    }
    if (get_common(&B, vals, &J.P, &A, mode, trans, trans ? rows : cols, trans ? cols : rows) < 0)
        goto fail;
    J.indptr = indptr.p;
    J.indices = indices.p;
    J.isize = (int)indices.itemsize;
    J.nindices = indices.n;
    J.P.rows = rows;
    J.P.cols = cols;
    int64_t count;
    /* batch 1: the CSR GEMV (indices of 1..4 bytes; x's columns are 32-bit gather offsets) */
    const int gemv = !J.P.trans && J.P.nb == 1 && J.isize <= 4 && cols <= INT32_MAX;
    Py_BEGIN_ALLOW_THREADS
    if (gemv) {
#if SC_X86
        if (J.P.simd)
            count = parallel_rows(csr1_rows_avx2, &J, rows, threads);
        else
#endif
            count = parallel_rows(csr1_rows_scalar, &J, rows, threads);
    } else {
        count = padded_rows(csr_rows, &J, &J.P, rows, threads);
    }
    Py_END_ALLOW_THREADS
    sc_release(&B);
    return result(count);
fail:
    sc_release(&B);
    return NULL;
}

/* -- window: 2:4 with fixed-length values, bfloat16 ---------------------------------------- */

/* The layout (codecs/window.py): per row, `pb` bytes of 6-bit pair codes (6 * c0 + c1 of two
 * groups' 2:4 codes), `eb` bytes of 3-bit exponent codes (one per kept value), and one `rest`
 * byte per kept value (sign << 7 | 7 mantissa bits); all LSB first, rows padded to bytes. A
 * kept value is the float32 (rest & 0x80) << 24 | (rest & 0x7f) << 16 | etab[code], where etab
 * holds field << 23 for the window's codes, 0 for code 7 and 1 (a marker no valid value has:
 * bfloat16's low 16 bits are zero) for codes the window does not have; an escape's field (a
 * sorted list of kept-value indices) is or-ed in afterwards. Per block of 8 groups (32 columns,
 * 16 kept values) everything is byte-aligned: 3 pattern bytes, 6 exponent bytes, 16 rest bytes.
 * The AVX2 path decodes a block in registers (the rest bytes by one shuffle into the top half of
 * each lane, the exponents by a variable shift and a permute of etab) and multiplies it by x
 * gathered per step of 4 groups, as the 2:4 GEMV does (win_lane: the pair codes of the frame
 * regrouped into the GEMV's lane pairs); the AVX-512 path (below it) does a block
 * in one 16-lane vector; the scalar twin keeps the same 16 lanes and the same fmaf order.
 * Columns past the last whole block go one fmaf at a time in all three. */

#define WIN_MAX_NB 4

typedef struct {
    prod_t P;
    const uint8_t *pattern, *exps, *rest;
    int64_t pb, eb, gpr;
    uint32_t etab[8];
    const int64_t *esc; /* ascending kept-value indices */
    const uint8_t *escf;
    int64_t nesc;
    const float *xrows;
    int64_t ystride; /* the batch: P.yt points at this call's first column of yt */
} win_job;

/* win_pair[code * 8 + lane]: as nm24_pair for pair codes 0..35; 8 in every lane for 36..63
 * (a frame's bad code reads x lane 0, and bit 3, which no valid index has, reports it). */
static int32_t win_pair[64 * 8];

/* win_lane[p | p' << 6]: for the pair codes p = 6 a + b of groups (q, q+1) and p' = 6 c + d
 * of (q+2, q+3) (12 bits of the pattern, as stored), the byte offsets in nm24_lane_pair of the
 * code pairs (a, c) (bits 0-14) and (b, d) (bits 16-30), as nm24_gather takes them. An entry
 * with a code above 35 has offsets 0 and bit 15 set (WIN_LANE_BAD), which the row loop reports. */
#define WIN_LANE_BAD 0x8000u
static uint32_t win_lane[4096];

#if SC_X86
static void win_quad_init(void);
#endif

static void win_init(void) {
    nm24_init();
    memcpy(win_pair, nm24_pair, sizeof nm24_pair);
    for (int i = 36 * 8; i < 64 * 8; i++) win_pair[i] = 8;
    for (int p = 0; p < 64; p++)
        for (int p2 = 0; p2 < 64; p2++)
            win_lane[p | p2 << 6] = p >= 36 || p2 >= 36 ? WIN_LANE_BAD
                                    : (uint32_t)((p / 6 * 6 + p2 / 6) * 32) |
                                      (uint32_t)((p % 6 * 6 + p2 % 6) * 32) << 16;
#if SC_X86
    win_quad_init();
#endif
}

/* First escape at or after kept value v (binary search). */
static int64_t win_first_escape(const win_job *J, int64_t v) {
    int64_t lo = 0, hi = J->nesc;
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (J->esc[mid] < v) lo = mid + 1; else hi = mid;
    }
    return lo;
}

/* 24 bits at p, `end` the end of the buffer: one 4-byte load where a byte follows. */
SC_INLINE uint32_t win_ld24(const uint8_t *p, const uint8_t *end) {
    uint32_t w;
    if (end - p >= 4) {
        memcpy(&w, p, 4);
        return w & 0xFFFFFFu;
    }
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16;
}

SC_INLINE uint32_t win_bits(uint32_t code_bits, int64_t t) { /* 3-bit field t of a word */
    return (code_bits >> (3 * t)) & 7;
}


/* Row r's three byte streams and its first kept value, after the row checks (window.h). */
typedef struct {
    const uint8_t *p, *e, *rest;
    int64_t v0;
} win_row_t;

SC_INLINE int win_row(const win_job *J, int64_t r, win_row_t *w) {
    w->p = J->pattern + r * J->pb;
    w->e = J->exps + r * J->eb;
    w->v0 = r * J->gpr * 2;
    w->rest = J->rest + w->v0;
    return win_row_ok(w->p, w->e, J->gpr) ? 0 : SC_BAD_FRAME;
}

/* One kept value (index t of row r, exponent code `code`) as float32 bits; escapes advance *e. */
SC_INLINE uint32_t win_value(const win_job *J, int64_t v, uint8_t rest, uint32_t code,
                             int64_t *e, int *bad) {
    uint32_t bits = (uint32_t)(rest & 0x80) << 24 | (uint32_t)(rest & 0x7f) << 16 | J->etab[code];
    if (*e < J->nesc && J->esc[*e] == v) {
        if (code != 7) *bad = 1;
        bits |= (uint32_t)J->escf[*e] << 23;
        ++*e;
    }
    if (bits & 1) *bad = 1;
    return bits;
}

/* The columns past the last whole block of row r (groups q0 .. gpr-1), one fmaf at a time into
 * sum[b]; SC_BAD_PAD for a non-zero value in a padding slot. */
static int win_tail(const win_job *J, int64_t r, int64_t q0, int64_t *e, float *sum) {
    const int64_t gpr = J->gpr, cols = J->P.cols, nb = J->P.nb;
    const uint8_t *prow = J->pattern + r * J->pb, *erow = J->exps + r * J->eb;
    int bad = 0;
    for (int64_t q = q0; q < gpr; q++) {
        uint32_t pair = win_field(prow, J->pb, (q / 2) * 6, 6);
        if (pair >= 36) return SC_BAD_FRAME;
        const uint32_t code = q % 2 ? pair % 6 : pair / 6;
        for (int t = 0; t < 2; t++) {
            const int64_t slot = 2 * q + t, v = r * gpr * 2 + slot;
            uint32_t ec = win_field(erow, J->eb, slot * 3, 3);
            uint32_t bits = win_value(J, v, J->rest[v], ec, e, &bad);
            const int64_t c = q * 4 + nm24_pos[code][t];
            if (c >= cols) {
                if (bits) return SC_BAD_PAD;
                continue;
            }
            for (int64_t b = 0; b < nb; b++)
                sum[b] = fmaf(bits_to_f(bits), J->xrows[b * cols + c], sum[b]);
        }
    }
    return bad ? SC_BAD_FRAME : 0;
}

/* The two 24-bit exponent-code words of block k (codes 0-7, 8-15); bits 24+ are never read. */
SC_INLINE void win_codes(const uint8_t *erow, const uint8_t *eend, int64_t k, uint32_t *ca,
                         uint32_t *cb) {
    const uint8_t *p = erow + 6 * k;
    if (eend - p >= 7) {
        memcpy(ca, p, 4);
        memcpy(cb, p + 3, 4);
    } else {
        *ca = win_ld24(p, eend);
        *cb = win_ld24(p + 3, eend);
    }
}

/* OR the fields of the escapes in block k (kept values v0 .. v0+15) into its 16 float32 bit
 * patterns; *e advances past them. SC_BAD_FRAME if one has a code other than 7. */
static int win_patch(const win_job *J, uint32_t *bits, uint32_t ca, uint32_t cb, int64_t v0,
                     int64_t *e) {
    int bad = 0;
    for (; *e < J->nesc && J->esc[*e] < v0 + 16; ++*e) {
        const int64_t l = J->esc[*e] - v0;
        if (l < 0 || win_bits(l < 8 ? ca : cb, l % 8) != 7) bad = 1;
        else bits[l] |= (uint32_t)J->escf[*e] << 23;
    }
    return bad ? SC_BAD_FRAME : 0;
}

/* The end of row r in every twin: the columns after the whole blocks, then per batch column
 * the 16 lanes (a[b]) summed as nm24_hsum sums two 8-lane accumulators, plus that tail. */
static int win_finish(const win_job *J, int64_t r, int64_t nblk, int64_t *e,
                      float a[][16]) {
    float tail[WIN_MAX_NB] = {0};
    int err = win_tail(J, r, 8 * nblk, e, tail);
    if (err) return err;
    for (int64_t b = 0; b < J->P.nb; b++) {
        float sum8[8];
        for (int l = 0; l < 8; l++) sum8[l] = a[b][l] + a[b][l + 8];
        J->P.yt[r * J->ystride + b] = nm24_hsum(sum8) + tail[b];
    }
    return 0;
}

static int64_t win_rows_scalar(const void *job, int64_t r0, int64_t r1) {
    const win_job *J = (const win_job *)job;
    const int64_t gpr = J->gpr, nb = J->P.nb, cols = J->P.cols, nblk = cols / 32;
    const uint8_t *eend = J->exps + J->P.rows * J->eb;
    int64_t e = win_first_escape(J, r0 * gpr * 2);
    for (int64_t r = r0; r < r1; r++) {
        win_row_t w;
        int err = win_row(J, r, &w), bad = 0;
        if (err) return err;
        const uint8_t *prow = w.p, *erow = w.e;
        float acc[WIN_MAX_NB][16] = {{0}};
        for (int64_t k = 0; k < nblk; k++) {
            const uint32_t pw = win_field(prow, J->pb, 24 * k, 24);
            const int64_t v0 = r * gpr * 2 + 16 * k;
            uint32_t ca, cb, bits[16];
            win_codes(erow, eend, k, &ca, &cb);
            for (int l = 0; l < 16; l++) {
                const uint8_t rest = J->rest[v0 + l];
                const uint32_t code = win_bits(l < 8 ? ca : cb, l % 8);
                bits[l] = (uint32_t)(rest & 0x80) << 24 | (uint32_t)(rest & 0x7f) << 16 |
                          J->etab[code];
                bad |= (int)(bits[l] & 1);
            }
            if ((err = win_patch(J, bits, ca, cb, v0, &e))) return err;
            for (int j = 0; j < 4; j++)
                if (((pw >> (6 * j)) & 63) >= 36) return SC_BAD_FRAME;
            for (int64_t b = 0; b < nb; b++) {
                const float *x = J->xrows + b * cols + 32 * k;
                for (int l = 0; l < 16; l++) {
                    const int j = l / 4; /* the pair: 8 columns of x */
                    const int32_t idx = win_pair[((pw >> (6 * j)) & 63) * 8 + l % 8];
                    acc[b][l] = fmaf(bits_to_f(bits[l]), x[8 * j + idx], acc[b][l]);
                }
            }
        }
        if (bad) return SC_BAD_FRAME;
        if ((err = win_finish(J, r, nblk, &e, acc))) return err;
    }
    return (r1 - r0) * (cols / 4 * 2 + (cols % 4 < 2 ? cols % 4 : 2));
}

#if SC_X86
/* Block k of a row on the AVX2 level: its 16 kept values as float32 bit patterns (va: values
 * 0-7, vb: 8-15) and the win_lane entries of its two pairs of pair codes (o01, o23). FAST:
 * the block's loads (4 pattern bytes at 3k, the exponent codes' 4-byte words at 6k and
 * 6k + 3) stay inside the buffers and are taken unchecked. */
typedef struct {
    __m256i va, vb;
    uint32_t o01, o23;
} win_blk2_t;

SC_TARGET("avx2,fma") SC_INLINE win_blk2_t win_block256(
    const uint8_t *prow, const uint8_t *erow, const uint8_t *rrow, const uint8_t *pend,
    const uint8_t *eend, int64_t k, __m256i etab, const int FAST) {
    const __m256i shifts = _mm256_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21);
    const __m256i keep = _mm256_set1_epi32((int)0x807F0000u);
    /* rest byte i of 16 into the top two bytes of its lane: values 0-7, then 8-15 */
    const __m256i spread_a = _mm256_setr_epi8(-1, -1, 0, 0, -1, -1, 1, 1, -1, -1, 2, 2, -1, -1, 3, 3,
                                              -1, -1, 4, 4, -1, -1, 5, 5, -1, -1, 6, 6, -1, -1, 7, 7);
    const __m256i spread_b = _mm256_add_epi8(spread_a, _mm256_setr_epi8(
        0, 0, 8, 8, 0, 0, 8, 8, 0, 0, 8, 8, 0, 0, 8, 8, 0, 0, 8, 8, 0, 0, 8, 8, 0, 0, 8, 8, 0, 0, 8, 8));
    uint32_t pw;
    int32_t ca, cb; /* bits 24+ are shifted out of the 3-bit fields read */
    if (FAST) {
        memcpy(&pw, prow + 3 * k, 4);
        pw &= 0xFFFFFFu;
        memcpy(&ca, erow + 6 * k, 4);
        memcpy(&cb, erow + 6 * k + 3, 4);
    } else {
        uint32_t ua, ub;
        pw = win_ld24(prow + 3 * k, pend);
        win_codes(erow, eend, k, &ua, &ub);
        ca = (int32_t)ua, cb = (int32_t)ub;
    }
    win_blk2_t h;
    h.o01 = win_lane[pw & 0xFFF], h.o23 = win_lane[pw >> 12];
    const __m256i rr = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)(rrow + 16 * k)));
    /* vpermd reads an index's low 3 bits: the shifted codes need no mask */
    const __m256i ea = _mm256_permutevar8x32_epi32(
        etab, _mm256_srlv_epi32(_mm256_set1_epi32(ca), shifts));
    const __m256i eb = _mm256_permutevar8x32_epi32(
        etab, _mm256_srlv_epi32(_mm256_set1_epi32(cb), shifts));
    h.va = _mm256_or_si256(_mm256_and_si256(_mm256_shuffle_epi8(rr, spread_a), keep), ea);
    h.vb = _mm256_or_si256(_mm256_and_si256(_mm256_shuffle_epi8(rr, spread_b), keep), eb);
    return h;
}

/* Block k's product into acc[0..NB) (xp: the batch's rows in nm24_lane_order, nblk * 32
 * apart). */
SC_TARGET("avx2,fma") SC_INLINE void win_fma256(const float *xp, int64_t nblk, int64_t k,
                                                const win_blk2_t *h, __m256 acc[][2],
                                                const int NB) {
    const char *pairs = (const char *)nm24_lane_pair;
    const uint32_t lo = ~WIN_LANE_BAD & 0xFFFF;
    const __m256i i0 = _mm256_loadu_si256((const __m256i *)(pairs + (h->o01 & lo)));
    const __m256i i1 = _mm256_loadu_si256((const __m256i *)(pairs + (h->o01 >> 16)));
    const __m256i i2 = _mm256_loadu_si256((const __m256i *)(pairs + (h->o23 & lo)));
    const __m256i i3 = _mm256_loadu_si256((const __m256i *)(pairs + (h->o23 >> 16)));
    for (int b = 0; b < NB; b++) {
        const float *xq = xp + b * nblk * 32 + 32 * k;
        const __m256 g0 = nm24_gather(xq, i0, i1);
        const __m256 g1 = nm24_gather(xq + 16, i2, i3);
        acc[b][0] = _mm256_fmadd_ps(_mm256_castsi256_ps(h->va), g0, acc[b][0]);
        acc[b][1] = _mm256_fmadd_ps(_mm256_castsi256_ps(h->vb), g1, acc[b][1]);
    }
}

/* Row r's first block that win_block's FAST may not take: its 4 pattern bytes at 3k or its
 * exponent words' 7 bytes at 6k would reach past the buffers (pend, eend). */
SC_INLINE int64_t win_fast_blocks(const uint8_t *prow, const uint8_t *erow, const uint8_t *pend,
                                  const uint8_t *eend, int64_t nblk) {
    int64_t kfast = nblk;
    if (pend - prow < 4) kfast = 0;
    else if ((pend - prow - 4) / 3 + 1 < kfast) kfast = (pend - prow - 4) / 3 + 1;
    if (eend - erow < 7) kfast = 0;
    else if ((eend - erow - 7) / 6 + 1 < kfast) kfast = (eend - erow - 7) / 6 + 1;
    return kfast;
}

/* The block of row r's next escape (kept value `next` of the row, INT64_MAX: none), at most
 * nblk; 0 for an escape before the row's values (win_patch refuses it there). */
SC_INLINE int64_t win_escape_block(int64_t next, int64_t nblk) {
    return next < 0 ? 0 : next / 16 < nblk ? next / 16 : nblk;
}

/* Rows [r0, r1) with NB (1..4) columns of x; see the section comment. A row's blocks run in a
 * plain loop up to the next escape's block and up to its last blocks (whose loads are
 * checked); those take the step after it, one at a time. */
SC_TARGET("avx2,fma") SC_INLINE int64_t win_rows_avx2_nb(const win_job *J, int64_t r0,
                                                          int64_t r1, const int NB) {
    const int64_t gpr = J->gpr, cols = J->P.cols, nblk = cols / 32;
    const __m256i etab = _mm256_loadu_si256((const __m256i *)J->etab);
    const uint8_t *pend = J->pattern + J->P.rows * J->pb, *eend = J->exps + J->P.rows * J->eb;
    const int64_t nesc = J->nesc, *esc = J->esc;
    float *xp = malloc(((size_t)NB * nblk * 32 + 1) * 4); /* x in nm24_lane_order */
    if (!xp) return SC_NOMEM;
    for (int b = 0; b < NB; b++)
        nm24_lane_order(J->xrows + b * cols, cols, 1, nblk * 8, xp + b * nblk * 32);
    int64_t e = win_first_escape(J, r0 * gpr * 2), err = 0;
    for (int64_t r = r0; r < r1 && !err; r++) {
        win_row_t w;
        if ((err = win_row(J, r, &w))) break;
        const uint8_t *prow = w.p, *erow = w.e, *rrow = w.rest;
        const int64_t kfast = win_fast_blocks(prow, erow, pend, eend, nblk), vrow = r * gpr * 2;
        __m256i badv = _mm256_setzero_si256();
        uint32_t badp = 0; /* WIN_LANE_BAD: a pair code above 35 */
        __m256 acc[WIN_MAX_NB][2];
        for (int b = 0; b < NB; b++) acc[b][0] = acc[b][1] = _mm256_setzero_ps();
        for (int64_t k = 0; k < nblk && !err;) {
            const int64_t kesc = win_escape_block(e < nesc ? esc[e] - vrow : INT64_MAX, nblk);
            const int64_t kend = kesc < kfast ? kesc : kfast;
            for (; k < kend; k++) {
                const win_blk2_t h = win_block256(prow, erow, rrow, pend, eend, k, etab, 1);
                badp |= h.o01 | h.o23;
                badv = _mm256_or_si256(badv, _mm256_or_si256(h.va, h.vb));
                win_fma256(xp, nblk, k, &h, acc, NB);
            }
            if (k == nblk) break;
            win_blk2_t h = k < kfast ? win_block256(prow, erow, rrow, pend, eend, k, etab, 1)
                                     : win_block256(prow, erow, rrow, pend, eend, k, etab, 0);
            badp |= h.o01 | h.o23;
            badv = _mm256_or_si256(badv, _mm256_or_si256(h.va, h.vb));
            if (k == kesc) { /* an escape in this block (rare) */
                uint32_t tmp[16], ca, cb;
                win_codes(erow, eend, k, &ca, &cb);
                _mm256_storeu_si256((__m256i *)tmp, h.va);
                _mm256_storeu_si256((__m256i *)(tmp + 8), h.vb);
                if ((err = win_patch(J, tmp, ca, cb, vrow + 16 * k, &e))) break;
                h.va = _mm256_loadu_si256((const __m256i *)tmp);
                h.vb = _mm256_loadu_si256((const __m256i *)(tmp + 8));
            }
            win_fma256(xp, nblk, k, &h, acc, NB);
            k++;
        }
        if (err) break;
        if ((badp & WIN_LANE_BAD) || !_mm256_testz_si256(badv, _mm256_set1_epi32(1))) {
            err = SC_BAD_FRAME;
            break;
        }
        float a16[WIN_MAX_NB][16];
        for (int b = 0; b < NB; b++) {
            _mm256_storeu_ps(a16[b], acc[b][0]);
            _mm256_storeu_ps(a16[b] + 8, acc[b][1]);
        }
        err = win_finish(J, r, nblk, &e, a16);
    }
    free(xp);
    return err ? err : (r1 - r0) * (cols / 4 * 2 + (cols % 4 < 2 ? cols % 4 : 2));
}

SC_TARGET("avx2,fma") static int64_t win_rows_avx2_1(const void *j, int64_t r0, int64_t r1) {
    return win_rows_avx2_nb(j, r0, r1, 1);
}
SC_TARGET("avx2,fma") static int64_t win_rows_avx2_2(const void *j, int64_t r0, int64_t r1) {
    return win_rows_avx2_nb(j, r0, r1, 2);
}
SC_TARGET("avx2,fma") static int64_t win_rows_avx2_3(const void *j, int64_t r0, int64_t r1) {
    return win_rows_avx2_nb(j, r0, r1, 3);
}
SC_TARGET("avx2,fma") static int64_t win_rows_avx2_4(const void *j, int64_t r0, int64_t r1) {
    return win_rows_avx2_nb(j, r0, r1, 4);
}
/* AVX-512 (F, BW, VL): one block of 32 columns is one 16-lane vector. The x entries of its 16
 * kept values come from the block's 32 columns by one vpermt2ps, whose indices are two rows of
 * win_quad (a row per two pair codes, p0 | p1 << 6: lanes 0-3 from p0, 4-7 from p1 + 8; 32 in
 * every lane of a row with a code above 35, a bit the permute ignores and the row check sees).
 * Lanes 0-7 and 8-15 hold what the AVX2 path's two accumulators hold, in the same fmaf order:
 * the same bytes. */
static int32_t win_quad[4096 * 8];

static void win_quad_init(void) {
    for (int a = 0; a < 64; a++)
        for (int b = 0; b < 64; b++) {
            int32_t *e = win_quad + (a | b << 6) * 8;
            for (int l = 0; l < 8; l++)
                e[l] = a >= 36 || b >= 36 ? 32 : l < 4 ? nm24_pair[a * 8 + l]
                                                        : 8 + nm24_pair[b * 8 + l];
        }
}

/* Block k of a row on the AVX-512 level: its 16 kept values as float32 bit patterns (the
 * result) and their x gather indices (*idx). FAST: the block's loads (4 pattern bytes at 3k,
 * the exponent codes' 4-byte words at 6k and 6k + 3) stay inside the buffers and are taken
 * unchecked, the words broadcast from memory. */
SC_TARGET("avx512f,avx512bw,avx512vl,avx2,fma") SC_INLINE __m512i win_block512(
    const uint8_t *prow, const uint8_t *erow, const uint8_t *rrow, const uint8_t *pend,
    const uint8_t *eend, int64_t k, __m512i etab, __m512i *idx, const int FAST) {
    const __m512i shifts = _mm512_setr_epi32(0, 3, 6, 9, 12, 15, 18, 21, 0, 3, 6, 9, 12, 15, 18, 21);
    const __m512i keep = _mm512_set1_epi32((int)0x807F0000u);
    const __m512i high = _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 16, 16, 16, 16, 16, 16, 16, 16);
    /* rest byte 4q + i of 16 into the top two bytes of lane 4q + i (q: the 128-bit lane) */
    const __m512i spread = _mm512_set_epi8(
        15, 15, -1, -1, 14, 14, -1, -1, 13, 13, -1, -1, 12, 12, -1, -1,
        11, 11, -1, -1, 10, 10, -1, -1, 9, 9, -1, -1, 8, 8, -1, -1,
        7, 7, -1, -1, 6, 6, -1, -1, 5, 5, -1, -1, 4, 4, -1, -1,
        3, 3, -1, -1, 2, 2, -1, -1, 1, 1, -1, -1, 0, 0, -1, -1);
    uint32_t pw;
    __m512i words;
    if (FAST) {
        memcpy(&pw, prow + 3 * k, 4);
        pw &= 0xFFFFFFu;
        int32_t ca, cb; /* bits 24+ are shifted out of the 3-bit fields read */
        memcpy(&ca, erow + 6 * k, 4);
        memcpy(&cb, erow + 6 * k + 3, 4);
        words = _mm512_mask_set1_epi32(_mm512_set1_epi32(ca), 0xFF00, cb);
    } else {
        uint32_t ca, cb;
        pw = win_ld24(prow + 3 * k, pend);
        win_codes(erow, eend, k, &ca, &cb);
        words = _mm512_mask_set1_epi32(_mm512_set1_epi32((int)ca), 0xFF00, (int)cb);
    }
    *idx = _mm512_add_epi32(_mm512_inserti64x4(
        _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(win_quad + (pw & 0xFFF) * 8))),
        _mm256_loadu_si256((const __m256i *)(win_quad + (pw >> 12) * 8)), 1), high);
    const __m512i codes = _mm512_srlv_epi32(words, shifts);
    const __m512i ex = _mm512_permutexvar_epi32(codes, etab);
    const __m512i rr = _mm512_broadcast_i32x4(_mm_loadu_si128((const __m128i *)(rrow + 16 * k)));
    return _mm512_ternarylogic_epi32(_mm512_shuffle_epi8(rr, spread), keep, ex, 0xEA);
}

/* Block k's product into acc[0..NB) (x: the batch's rows, `cols` apart). */
SC_TARGET("avx512f,avx512bw,avx512vl,avx2,fma") SC_INLINE void win_fma512(
    const float *xrows, int64_t cols, int64_t k, __m512i v, __m512i idx, __m512 *acc,
    const int NB) {
    for (int b = 0; b < NB; b++) {
        const float *xq = xrows + b * cols + 32 * k;
        const __m512 g = _mm512_permutex2var_ps(_mm512_loadu_ps(xq), idx, _mm512_loadu_ps(xq + 16));
        acc[b] = _mm512_fmadd_ps(_mm512_castsi512_ps(v), g, acc[b]);
    }
}

SC_TARGET("avx512f,avx512bw,avx512vl,avx2,fma") SC_INLINE int64_t win_rows_avx512_nb(
    const win_job *J, int64_t r0, int64_t r1, const int NB) {
    const int64_t gpr = J->gpr, cols = J->P.cols, nblk = cols / 32;
    /* the window in both halves: the permute reads an index's low 4 bits, and the shifted
     * exponent codes are not masked to 3 (bit 3 is the next code's) */
    const __m512i etab = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)J->etab));
    const uint8_t *pend = J->pattern + J->P.rows * J->pb, *eend = J->exps + J->P.rows * J->eb;
    const int64_t nesc = J->nesc, *esc = J->esc;
    const float *const xrows = J->xrows;
    int64_t e = win_first_escape(J, r0 * gpr * 2);
    for (int64_t r = r0; r < r1; r++) {
        win_row_t w;
        int err = win_row(J, r, &w);
        if (err) return err;
        const uint8_t *prow = w.p, *erow = w.e, *rrow = w.rest;
        /* From 3 columns of x the loop is bound by vector loads (two 64-byte loads of x a
         * column), and the unchecked blocks' broadcasts from memory add to them: with 3 and 4
         * columns every block takes the checked step (its words through integer registers),
         * 2.80-2.85 and 3.52-3.55 ms a hot 4096x4096 layer against 3.5-3.6 and 3.7-4.0 through
         * the plain loop; with 1 and 2 the plain loop is the faster (1.42-1.44 against 2.20-2.34
         * ms, 2.13-2.24 against 2.45-2.49). */
        const int64_t kfast = NB >= 3 ? 0 : win_fast_blocks(prow, erow, pend, eend, nblk);
        __m512i badv = _mm512_setzero_si512(), badi = badv;
        __m512 acc[WIN_MAX_NB];
        for (int b = 0; b < NB; b++) acc[b] = _mm512_setzero_ps();
        const int64_t vrow = r * gpr * 2;
        for (int64_t k = 0; k < nblk;) {
            /* the block of the next escape (rare): blocks before it, and before kfast, run
             * the plain loop; that block, or one past kfast, the checked step below */
            const int64_t kesc = win_escape_block(e < nesc ? esc[e] - vrow : INT64_MAX, nblk);
            const int64_t kend = kesc < kfast ? kesc : kfast;
            for (; k < kend; k++) {
                __m512i idx;
                const __m512i v = win_block512(prow, erow, rrow, pend, eend, k, etab, &idx, 1);
                badi = _mm512_or_si512(badi, idx);
                badv = _mm512_or_si512(badv, v);
                win_fma512(xrows, cols, k, v, idx, acc, NB);
            }
            if (k == nblk) break;
            __m512i idx;
            __m512i v = k < kfast ? win_block512(prow, erow, rrow, pend, eend, k, etab, &idx, 1)
                                  : win_block512(prow, erow, rrow, pend, eend, k, etab, &idx, 0);
            badi = _mm512_or_si512(badi, idx);
            badv = _mm512_or_si512(badv, v);
            if (k == kesc) {
                uint32_t tmp[16], ca, cb;
                win_codes(erow, eend, k, &ca, &cb);
                _mm512_storeu_si512(tmp, v);
                if ((err = win_patch(J, tmp, ca, cb, vrow + 16 * k, &e))) return err;
                v = _mm512_loadu_si512(tmp);
            }
            win_fma512(xrows, cols, k, v, idx, acc, NB);
            k++;
        }
        if (_mm512_test_epi32_mask(badi, _mm512_set1_epi32(32)) ||
            _mm512_test_epi32_mask(badv, _mm512_set1_epi32(1)))
            return SC_BAD_FRAME;
        float a16[WIN_MAX_NB][16];
        for (int b = 0; b < NB; b++) _mm512_storeu_ps(a16[b], acc[b]);
        if ((err = win_finish(J, r, nblk, &e, a16))) return err;
    }
    return (r1 - r0) * (cols / 4 * 2 + (cols % 4 < 2 ? cols % 4 : 2));
}

#define WIN512(n) \
    SC_TARGET("avx512f,avx512bw,avx512vl,avx2,fma") static int64_t win_rows_avx512_##n( \
        const void *j, int64_t r0, int64_t r1) { return win_rows_avx512_nb(j, r0, r1, n); }
WIN512(1)
WIN512(2)
WIN512(3)
WIN512(4)
#endif

/* window_matmul(pattern, exps, rest, escapes, escaped, etab, rows, cols, xt, yt, threads)
 * -> count: y = x @ W.T for a bfloat16 window frame, nb >= 1 columns of x in passes of up to
 * WIN_MAX_NB (each pass reads the weight once: 39% of its dense bytes). pattern, exps,
 * rest: uint8, sized as the layout says; escapes int64 ascending below rows * gpr * 2 (checked
 * by the codec), escaped uint8; etab 8 uint32 (see above). */
static PyObject *window_matmul(PyObject *self, PyObject *const *a, Py_ssize_t nargs) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, win_init);
    if (sc_nargs(nargs, 11, "window_matmul") < 0) return NULL;
    int64_t rows, cols, threads;
    if (sc_i64(a[6], &rows) < 0 || sc_i64(a[7], &cols) < 0 || sc_i64(a[10], &threads) < 0)
        return NULL;
    sc_bufs B = {.n = 0};
    sc_arr pat, exps, rest, esc, escf, etab, xt, yt;
    if (sc_get(&B, a[0], 0, 1, "pattern", &pat) < 0 || sc_get(&B, a[1], 0, 1, "exps", &exps) < 0 ||
        sc_get(&B, a[2], 0, 1, "rest", &rest) < 0 || sc_get(&B, a[3], 0, 8, "escapes", &esc) < 0 ||
        sc_get(&B, a[4], 0, 1, "escaped", &escf) < 0 || sc_get(&B, a[5], 0, 4, "etab", &etab) < 0 ||
        sc_get(&B, a[8], 0, 4, "xt", &xt) < 0 || sc_get(&B, a[9], 1, 4, "yt", &yt) < 0)
        goto fail;
    win_job J;
    memset(&J, 0, sizeof J);
    const int64_t gpr = cols > 0 ? (cols + 3) / 4 : 0;
    const int64_t nb = cols > 0 ? xt.n / cols : (rows > 0 ? yt.n / rows : 0);
    J.pb = win_pattern_bytes(gpr);
    J.eb = win_code_bytes(gpr);
    if (rows < 0 || cols < 0 || etab.n != 8 || escf.n != esc.n || nb < 1 ||
        xt.n != cols * nb || yt.n != rows * nb || pat.n != rows * J.pb || exps.n != rows * J.eb ||
        rest.n != rows * gpr * 2) {
        PyErr_SetString(PyExc_ValueError, "window_matmul: buffer sizes do not match the shape");
        goto fail;
    }
    const int64_t *ev = esc.p;
    for (int64_t i = 0; i < esc.n; i++)
        if (ev[i] < 0 || ev[i] >= rows * gpr * 2 || (i && ev[i] <= ev[i - 1])) {
            PyErr_SetString(PyExc_ValueError, "window_matmul: escapes not ascending in range");
            goto fail;
        }
    J.P.xt = xt.p;
    J.P.yt = yt.p;
    J.P.nb = nb;
    J.P.rows = rows;
    J.P.cols = cols;
    J.P.simd = use_avx2();
    const int avx512 = sc_simd >= SC_SIMD_AVX512; /* read once, before the GIL is released */
    (void)avx512; /* (read by the x86 kernels' branch only) */
    J.pattern = pat.p;
    J.exps = exps.p;
    J.rest = rest.p;
    J.gpr = gpr;
    memcpy(J.etab, etab.p, 32);
    J.esc = ev;
    J.escf = escf.p;
    J.nesc = esc.n;
    int64_t count;
    float *xrows = NULL;
    Py_BEGIN_ALLOW_THREADS
    if (!rows || !cols) {
        memset(J.P.yt, 0, (size_t)(rows * nb) * 4);
        count = 0;
    } else {
        xrows = nb == 1 ? NULL : x_by_rows(J.P.xt, cols, nb, 0);
        const float *xbase = nb == 1 ? J.P.xt : xrows;
        float *ybase = J.P.yt;
        J.ystride = nb;
        count = xbase ? 0 : SC_NOMEM;
        for (int64_t c0 = 0; xbase && c0 < nb && count >= 0; c0 += WIN_MAX_NB) {
            const int64_t part = nb - c0 < WIN_MAX_NB ? nb - c0 : WIN_MAX_NB;
            J.xrows = xbase + c0 * cols;
            J.P.yt = ybase + c0;
            J.P.nb = part;
            rows_fn fn = win_rows_scalar;
#if SC_X86
            if (J.P.simd)
                fn = part == 1 ? win_rows_avx2_1 : part == 2 ? win_rows_avx2_2
                   : part == 3 ? win_rows_avx2_3 : win_rows_avx2_4;
            if (J.P.simd && avx512)
                fn = part == 1 ? win_rows_avx512_1 : part == 2 ? win_rows_avx512_2
                   : part == 3 ? win_rows_avx512_3 : win_rows_avx512_4;
#endif
            count = parallel_rows(fn, &J, rows, threads);
        }
        free(xrows);
    }
    Py_END_ALLOW_THREADS
    sc_release(&B);
    return result(count);
fail:
    sc_release(&B);
    return NULL;
}

/* -- table -------------------------------------------------------------------------------- */

/* -- transposes ----------------------------------------------------------------------------- */

/* transpose(src, dst, rows, cols): dst (cols, rows) float32 = src (rows, cols) transposed, src
 * items of 4 bytes copied or of 2 (bfloat16 patterns) widened by a shift, in 8x8 tiles. numpy's
 * transposed copy of a (64, 4096) float32 array walks one side 16 KB apart: 0.73 ms, about as
 * long as the batch-64 product's own overhead; the products' x.T and the result's transpose
 * back go through here. On AVX2 a whole tile is eight row loads, the classic 24 shuffles and
 * eight column stores, where the scalar twin (the edge tiles, and every tile below the AVX2
 * level) moves one item at a time: a (240, 384) float32 x, a MiniLM batch's, 47-59 -> 22-26
 * us (docs/compute.md, thirty-sixth session). A transpose moves bits: both write the same
 * bytes. */
#define TRANSPOSE_TILE 8

/* The tile of rows r0 .. r1 and columns c0 .. c1, item by item. */
static void transpose_tile(const void *src, int isz, int64_t rows, int64_t cols, int64_t r0,
                           int64_t r1, int64_t c0, int64_t c1, uint32_t *d) {
    if (isz == 4) {
        const uint32_t *sp = (const uint32_t *)src;
        for (int64_t c = c0; c < c1; c++)
            for (int64_t r = r0; r < r1; r++) d[c * rows + r] = sp[r * cols + c];
    } else {
        const uint16_t *sp = (const uint16_t *)src;
        for (int64_t c = c0; c < c1; c++)
            for (int64_t r = r0; r < r1; r++) d[c * rows + r] = (uint32_t)sp[r * cols + c] << 16;
    }
}

#if SC_X86
/* The whole tile at (r0, c0): its eight rows loaded (2-byte items widened by a shift), each
 * pair interleaved, then pairs of pairs, then the 128-bit halves exchanged: eight columns. */
SC_TARGET("avx2") static void transpose_tile_avx2(const void *src, int isz, int64_t rows,
                                                   int64_t cols, int64_t r0, int64_t c0,
                                                   uint32_t *d) {
    __m256 v[8];
    for (int i = 0; i < 8; i++) {
        const int64_t at = (r0 + i) * cols + c0;
        v[i] = isz == 4 ? _mm256_loadu_ps((const float *)src + at)
                        : _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(
                              _mm_loadu_si128((const __m128i *)((const uint16_t *)src + at))), 16));
    }
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(v[i], v[i + 1]);     /* a0 b0 a1 b1 | a4 b4 a5 b5 */
        t[i + 1] = _mm256_unpackhi_ps(v[i], v[i + 1]); /* a2 b2 a3 b3 | a6 b6 a7 b7 */
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], 0x44);     /* a0 b0 c0 d0 | a4 b4 c4 d4 */
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], 0xEE); /* column 1 | column 5 */
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0x44);
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], 0xEE);
    }
    float *out = (float *)d;
    for (int j = 0; j < 4; j++) {
        _mm256_storeu_ps(out + (c0 + j) * rows + r0, _mm256_permute2f128_ps(u[j], u[j + 4], 0x20));
        _mm256_storeu_ps(out + (c0 + j + 4) * rows + r0,
                         _mm256_permute2f128_ps(u[j], u[j + 4], 0x31));
    }
}
#endif

static PyObject *transpose(PyObject *self, PyObject *const *a, Py_ssize_t nargs) {
    if (sc_nargs(nargs, 4, "transpose") < 0) return NULL;
    int64_t rows, cols;
    if (sc_i64(a[2], &rows) < 0 || sc_i64(a[3], &cols) < 0) return NULL;
    sc_bufs B = {.n = 0};
    sc_arr src, dst;
    if (sc_get(&B, a[0], 0, 0, "src", &src) < 0 || sc_get(&B, a[1], 1, 4, "dst", &dst) < 0)
        goto fail;
    if (rows < 0 || cols < 0 || (src.itemsize != 2 && src.itemsize != 4) ||
        src.n != rows * cols || dst.n != rows * cols) {
        PyErr_SetString(PyExc_ValueError, "transpose: src and dst must hold rows x cols items "
                                          "(src of 2 or 4 bytes, dst of 4)");
        goto fail;
    }
    const int simd = sc_simd >= SC_SIMD_AVX2; /* read once, before the GIL is released */
    (void)simd; /* (read by the x86 build only) */
    const int isz = (int)src.itemsize;
    Py_BEGIN_ALLOW_THREADS
    uint32_t *d = (uint32_t *)dst.p;
    for (int64_t r0 = 0; r0 < rows; r0 += TRANSPOSE_TILE)
        for (int64_t c0 = 0; c0 < cols; c0 += TRANSPOSE_TILE) {
            const int64_t r1 = r0 + TRANSPOSE_TILE < rows ? r0 + TRANSPOSE_TILE : rows;
            const int64_t c1 = c0 + TRANSPOSE_TILE < cols ? c0 + TRANSPOSE_TILE : cols;
#if SC_X86
            if (simd && r1 - r0 == TRANSPOSE_TILE && c1 - c0 == TRANSPOSE_TILE) {
                transpose_tile_avx2(src.p, isz, rows, cols, r0, c0, d);
                continue;
            }
#endif
            transpose_tile(src.p, isz, rows, cols, r0, r1, c0, c1, d);
        }
    Py_END_ALLOW_THREADS
    sc_release(&B);
    Py_RETURN_NONE;
fail:
    sc_release(&B);
    return NULL;
}

PyMethodDef sc_compute_methods[] = {
    {"transpose", (PyCFunction)(void (*)(void))transpose, METH_FASTCALL,
     "dst (cols, rows) float32 = src (rows, cols) transposed; 2-byte items as bfloat16."},
    {"nm_matmul", (PyCFunction)(void (*)(void))nm_matmul, METH_FASTCALL,
     "x @ W.T (or x @ W) from N:M group codes and kept values."},
    {"mask_matmul", (PyCFunction)(void (*)(void))mask_matmul, METH_FASTCALL,
     "x @ W.T (or x @ W) from an LSB-first bitmask and the kept values."},
    {"csr_matmul", (PyCFunction)(void (*)(void))csr_matmul, METH_FASTCALL,
     "x @ W.T (or x @ W) from CSR indptr (int64), indices and values."},
    {"mask_codes24", (PyCFunction)(void (*)(void))mask_codes24, METH_FASTCALL,
     "The 2:4 pattern code of each 4-bit group of a bitmask; False if one keeps not two."},
    {"dense_matmul", (PyCFunction)(void (*)(void))dense_matmul, METH_FASTCALL,
     "W @ x (batch 1-16) from a dense bfloat16 weight's bit patterns, widened in registers."},
    {"window_matmul", (PyCFunction)(void (*)(void))window_matmul, METH_FASTCALL,
     "x @ W.T (batch 1-4) from a bfloat16 window frame's sections, decoded in registers."},
    {NULL, NULL, 0, NULL},
};
