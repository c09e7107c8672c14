/* Kernels of the Huffman stage (the Python layer is codecs/_huffman_kernels.py).
 *
 * Bit order: a coded stream is a sequence of 64-bit words; codes are written MSB-first, so a
 * stream's bits read left to right are its symbols' canonical codes in order. The frame stores
 * the words big-endian: the encoders write those bytes directly (a big-endian bit writer), and
 * the decoder reads 64-bit windows from the bytes at any bit position (one unaligned load and
 * a byte swap).
 *
 * Decoding follows the shape of zstd's huf_decompress.c: a table indexed by the next `width`
 * bits (here up to two symbols per entry), four streams decoded in lockstep so that their
 * look-ups overlap, a fast loop that checks output room and stream ends once per batch of
 * look-ups (the bytes are padded so a batch that overruns stays in bounds) and a careful tail,
 * one look-up at a time, that checks every step. Codes longer than the table are resolved
 * canonically from the per-length first codes, with no second table.
 *
 * Every function here is METH_FASTCALL and named huf_*; arrays are C-contiguous buffers.
 * Integer arguments are checked on entry (a caller's mistake raises ValueError); what comes
 * from a frame is checked as it is read and answered with an error code.
 */
#include "native.h"

#include <math.h>
#include <pthread.h>
#include <stdlib.h>

/* ---- helpers -------------------------------------------------------------------------- */

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define HUF_LE 1
#else
#define HUF_LE 0
#endif

/* Unsigned item i of a buffer of `isz`-byte items (any alignment). */
SC_INLINE uint64_t ld(const void *p, int64_t i, int isz) {
    const char *b = (const char *)p + i * isz;
    switch (isz) {
    case 1: return *(const uint8_t *)b;
    case 2: { uint16_t v; memcpy(&v, b, 2); return v; }
    case 4: { uint32_t v; memcpy(&v, b, 4); return v; }
    default: { uint64_t v; memcpy(&v, b, 8); return v; }
    }
}

/* Store the low 8*isz bits of v as item i. */
SC_INLINE void st(void *p, int64_t i, int isz, uint64_t v) {
    char *b = (char *)p + i * isz;
    switch (isz) {
    case 1: *(uint8_t *)b = (uint8_t)v; break;
    case 2: { uint16_t x = (uint16_t)v; memcpy(b, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)v; memcpy(b, &x, 4); break; }
    default: memcpy(b, &v, 8); break;
    }
}

SC_INLINE int64_t ld64s(const void *p, int64_t i) {
    int64_t v;
    memcpy(&v, (const char *)p + 8 * i, 8);
    return v;
}

/* Rotate the `width`-bit value v left by r (0 <= r < width). */
SC_INLINE uint64_t rotl(uint64_t v, unsigned r, unsigned width, uint64_t mask) {
    return r ? ((v << r) | (v >> (width - r))) & mask : v;
}

SC_INLINE uint64_t rotr(uint64_t v, unsigned r, unsigned width, uint64_t mask) {
    return r ? ((v >> r) | (v << (width - r))) & mask : v;
}

static uint64_t width_mask(unsigned width) {
    return width >= 64 ? ~(uint64_t)0 : ((uint64_t)1 << width) - 1;
}

/* Scalar kernels come in two builds of the same C: plain (the portable twin) and one compiled
 * for AVX2 and BMI2 (shifts by any register, wider vectors where the compiler finds them),
 * chosen at run time by huf_fast() at SIMD level avx2. HUF_TWINS(name, (params), { body })
 * defines name_plain and name_fast; HUF_RUN calls the chosen one. */
#define HUF_TWINS(name, PARAMS, ...) \
    static int name##_plain PARAMS __VA_ARGS__ \
    SC_TARGET("avx2,bmi2") static int name##_fast PARAMS __VA_ARGS__
#define HUF_RUN(fast, name, ...) ((fast) ? name##_fast(__VA_ARGS__) : name##_plain(__VA_ARGS__))

/* Whether the AVX2+BMI2 builds run: at SIMD level avx2 on a CPU with BMI2 (read before the
 * GIL is released). */
static int huf_fast(void) {
#if SC_X86
    static int cpu = -1;
    if (cpu < 0) {
        __builtin_cpu_init();
        cpu = __builtin_cpu_supports("bmi2") && __builtin_cpu_supports("avx2") ? 1 : 0;
    }
    return cpu && sc_simd >= SC_SIMD_AVX2;
#else
    return 0;
#endif
}

static int item_size_ok(Py_ssize_t isz) { return isz == 1 || isz == 2 || isz == 4 || isz == 8; }

static PyObject *bad_arg(const char *fn, const char *what) {
    PyErr_Format(PyExc_ValueError, "%s: %s", fn, what);
    return NULL;
}

/* The integer arguments of a call, in order. */
static int ints(PyObject *const *args, Py_ssize_t from, Py_ssize_t n, int64_t *v) {
    for (Py_ssize_t i = 0; i < n; i++)
        if (sc_i64(args[from + i], &v[i]) < 0) return -1;
    return 0;
}

static int aligned8(const sc_arr *a) { return ((uintptr_t)a->p & 7) == 0; }

/* ---- encoding ------------------------------------------------------------------------- */

/* A big-endian bit writer, as zstd's BIT_CStream but MSB-first: `acc` holds `n` pending bits
 * in its low end (stale bits above them are shifted out), and a flush stores all of them
 * MSB-first in one 8-byte window at `p`, then moves `p` past the whole bytes. The partial byte
 * left (n < 8 after a flush) is in memory already, zero-padded, from that window. The caller
 * keeps n <= 63 between flushes. Near the end of the buffer the window is stored byte by byte,
 * never past `lim`; a flush whose whole bytes pass `lim` fails. */
typedef struct {
    uint8_t *p, *lim;
    uint64_t acc;
    unsigned n;
} huf_bitw;

SC_INLINE void bw_put(huf_bitw *w, uint64_t code, unsigned len) {
    w->acc = (w->acc << len) | code;
    w->n += len;
}

SC_INLINE int bw_flush(huf_bitw *w) {
    uint64_t v = w->n ? w->acc << (64 - w->n) : 0;
    unsigned whole = w->n >> 3;
    if (SC_LIKELY(w->lim - w->p >= 8)) {
        uint64_t be = HUF_LE ? __builtin_bswap64(v) : v;
        memcpy(w->p, &be, 8);
    } else {
        if ((size_t)(w->lim - w->p) < whole + ((w->n & 7) != 0)) return -1;
        for (int b = 0; b < 8 && w->p + b < w->lim; b++) w->p[b] = (uint8_t)(v >> (56 - 8 * b));
    }
    w->p += whole;
    w->n &= 7;
    return 0;
}

/* Close a stream that began at `start`: the last partial byte is counted and zero bytes pad
 * the stream to whole 64-bit words. Returns the stream's bytes, or -1 past `lim`. */
SC_INLINE int64_t bw_close(huf_bitw *w, const uint8_t *start) {
    if (bw_flush(w) < 0) return -1;
    uint8_t *end = w->p + (w->n != 0);
    int64_t nbytes = (end - start + 7) / 8 * 8;
    if (w->lim - start < nbytes) return -1;
    memset(end, 0, (size_t)(start + nbytes - end));
    return nbytes;
}

/* Symbols a stream takes between flushes: k codes of at most `maxlen` bits on top of the 7
 * bits a flush may leave must fit in 63. */
SC_INLINE unsigned codes_per_flush(unsigned maxlen) {
    unsigned k = maxlen ? 56 / maxlen : 56;
    return k < 1 ? 1 : k > 4 ? 4 : k;
}

/* encode_streams(symbols, codes u32, lengths u8, bounds i64, byte_offsets i64, out u8 (w),
 * used i64 (w)) -> 0, -1 (a symbol outside the code table), -2 (a stream outgrew its room).
 * Stream s goes to out[byte_offsets[s]:byte_offsets[s + 1]] as MSB-first bytes, zero-padded
 * to whole 64-bit words (the bytes the frame holds); used[s] is its byte count. Four streams
 * are written in lockstep, so that their shift-and-or chains overlap. */
#define HUF_PUT(w, i)                                                               \
    do {                                                                            \
        uint64_t sym_ = ld(symbols, (i), isz);                                      \
        if (check && SC_UNLIKELY(sym_ >= (uint64_t)alphabet)) return -1;            \
        bw_put((w), codes[sym_], lengths[sym_]);                                    \
    } while (0)

/* A flush the caller has proven fits (at least 8 bytes of room at p): no bounds test. */
SC_INLINE void bw_flush_room(huf_bitw *w) {
    uint64_t v = w->n ? w->acc << (64 - w->n) : 0;
    uint64_t be = HUF_LE ? __builtin_bswap64(v) : v;
    memcpy(w->p, &be, 8);
    w->p += w->n >> 3;
    w->n &= 7;
}

/* Steps of K codes a lane that has `room` bytes left can take with unchecked flushes: a step
 * adds at most K * maxlen <= 56 bits to the < 8 pending, so moves p by at most 7 bytes, and its
 * flush stores 8 bytes at p. */
SC_INLINE int64_t safe_steps(const huf_bitw *w) {
    int64_t room = w->lim - w->p;
    return room < 8 ? 0 : (room - 8) / 7 + 1;
}

/* `lanes` (1 or 2, a constant where this is inlined) streams in lockstep from symbol j of
 * each, K codes each between flushes (K a constant, so the puts unroll), for `steps` steps
 * whose flushes fit in every lane (safe_steps). Functions of their own, so that the lanes'
 * state stays in registers (inlined, four lanes or two, they spilled). Two lanes are four
 * streams' pairs; one lane is the lone stream of a small input (under 2**14 symbols) or a tail
 * lane, which wrote code by code with a checked flush after each: 30,720 11-bit fields took 84
 * us as one stream that way (27 as four in lockstep), 27 in batches. The same bytes: a flush
 * with room stores the same window either way. Returns 0, or -1 at a symbol outside the code
 * table. */
#define HUF_STEPS(K)                                                                        \
    do {                                                                                    \
        for (int64_t e = j + steps * (K); j < e; j += (K)) {                                \
            for (unsigned t = 0; t < (K); t++) {                                            \
                HUF_PUT(&a, ja + j + t);                                                    \
                if (lanes == 2) HUF_PUT(&b, jb + j + t);                                    \
            }                                                                               \
            bw_flush_room(&a);                                                              \
            if (lanes == 2) bw_flush_room(&b);                                              \
        }                                                                                   \
    } while (0)
SC_INLINE int lanes_body(const void *symbols, const uint32_t *codes, const uint8_t *lengths,
                         int64_t alphabet, unsigned k, int64_t ja, int64_t jb, int64_t j,
                         int64_t steps, huf_bitw *wa, huf_bitw *wb, int isz, int lanes) {
    const int check = isz == 8 || alphabet < ((int64_t)1 << (8 * isz));
    huf_bitw a = *wa, b = lanes == 2 ? *wb : a;
    switch (k) {
    case 4: HUF_STEPS(4); break;
    case 3: HUF_STEPS(3); break;
    case 2: HUF_STEPS(2); break;
    default: HUF_STEPS(1); break;
    }
    *wa = a;
    if (lanes == 2) *wb = b;
    return 0;
}
#undef HUF_STEPS
#define CALL(s) \
    rc = lanes_body(symbols, codes, lengths, alphabet, k, ja, jb, j, steps, wa, wb, s, 2)
__attribute__((noinline)) static int lockstep_plain(
    const void *symbols, const uint32_t *codes, const uint8_t *lengths, int64_t alphabet,
    unsigned k, int64_t ja, int64_t jb, int64_t j, int64_t steps, huf_bitw *wa, huf_bitw *wb,
    int isz) { int rc = 0; SC_BY_SIZE(isz, CALL) return rc; }
#if SC_X86
__attribute__((noinline)) SC_TARGET("avx2,bmi2") static int lockstep_fast(
    const void *symbols, const uint32_t *codes, const uint8_t *lengths, int64_t alphabet,
    unsigned k, int64_t ja, int64_t jb, int64_t j, int64_t steps, huf_bitw *wa, huf_bitw *wb,
    int isz) { int rc = 0; SC_BY_SIZE(isz, CALL) return rc; }
#else
#define lockstep_fast lockstep_plain
#endif
#undef CALL
/* One lane from symbol i (lanes_body with one stream). */
#define CALL(s) \
    rc = lanes_body(symbols, codes, lengths, alphabet, k, i, 0, 0, steps, wa, NULL, s, 1)
HUF_TWINS(one_lane, (const void *symbols, const uint32_t *codes, const uint8_t *lengths,
                     int64_t alphabet, unsigned k, int64_t i, int64_t steps, huf_bitw *wa,
                     int isz),
          { int rc = 0; SC_BY_SIZE(isz, CALL) return rc; })
#undef CALL

/* Streams A and B in lockstep from symbol 0 while both have symbols and room: done[A] and
 * done[B] get the symbols written, -1 returns from encode_body at a bad symbol. */
#define HUF_LOCKSTEP_K(A, B)                                                                \
    do {                                                                                    \
        int64_t j = 0;                                                                      \
        for (;;) {                                                                          \
            int64_t steps = (common - j) / k, sa = safe_steps(&w[A]), sb = safe_steps(&w[B]); \
            steps = sa < steps ? sa : steps;                                                \
            steps = sb < steps ? sb : steps;                                                \
            if (steps <= 0) break;                                                          \
            if ((fast ? lockstep_fast : lockstep_plain)(                                    \
                    symbols, codes, lengths, alphabet, k, bounds[s0 + (A)],                 \
                    bounds[s0 + (B)], j, steps, &w[A], &w[B], isz) < 0)                     \
                return -1;                                                                  \
            j += steps * k;                                                                 \
        }                                                                                   \
        done[A] = done[B] = j;                                                              \
    } while (0)

SC_INLINE int encode_body(const void *symbols, const uint32_t *codes, const uint8_t *lengths,
                          int64_t alphabet, unsigned maxlen, const int64_t *bounds,
                          const int64_t *boff, int64_t nboff, uint8_t *out, int64_t nout,
                          int64_t *used, int64_t ns, int isz, int fast) {
    const int check = isz == 8 || alphabet < ((int64_t)1 << (8 * isz));
    unsigned k = codes_per_flush(maxlen);
    huf_bitw w[4];
    for (int64_t s0 = 0; s0 < ns; s0 += 4) {
        int lanes = ns - s0 < 4 ? (int)(ns - s0) : 4;
        int64_t common = INT64_MAX;
        for (int l = 0; l < lanes; l++) {
            int64_t s = s0 + l, hi = s + 1 < nboff && boff[s + 1] < nout ? boff[s + 1] : nout;
            w[l] = (huf_bitw){out + boff[s], out + hi, 0, 0};
            int64_t len = bounds[s + 1] - bounds[s];
            common = len < common ? len : common;
        }
        int64_t done[4] = {0, 0, 0, 0};
        if (lanes == 4) {
            HUF_LOCKSTEP_K(0, 1);
            HUF_LOCKSTEP_K(2, 3);
        }
        for (int l = 0; l < lanes; l++) {
            int64_t s = s0 + l, i = bounds[s] + done[l], end = bounds[s + 1];
            for (;;) { /* batches while there is room for them, then code by code */
                int64_t steps = (end - i) / k, room = safe_steps(&w[l]);
                steps = room < steps ? room : steps;
                if (steps <= 0) break;
                if (HUF_RUN(fast, one_lane, symbols, codes, lengths, alphabet, k, i, steps, &w[l],
                            isz) < 0)
                    return -1;
                i += steps * k;
            }
            for (; i < end; i++) {
                HUF_PUT(&w[l], i);
                if (SC_UNLIKELY(bw_flush(&w[l]) < 0)) return -2;
            }
            int64_t nbytes = bw_close(&w[l], out + boff[s]);
            if (nbytes < 0) return -2;
            used[s] = nbytes;
        }
    }
    return 0;
}
#undef HUF_LOCKSTEP_K
#undef HUF_PUT

#define CALL(k) rc = encode_body(symbols, codes, lengths, alphabet, maxlen, bounds, boff, nboff, out, nout, used, ns, k, fast)
HUF_TWINS(encode_k, (const void *symbols, const uint32_t *codes, const uint8_t *lengths,
                     int64_t alphabet, unsigned maxlen, const int64_t *bounds,
                     const int64_t *boff, int64_t nboff, uint8_t *out, int64_t nout,
                     int64_t *used, int64_t ns, int isz, int fast),
          { int rc = 0; SC_BY_SIZE(isz, CALL) return rc; })
#undef CALL

static PyObject *huf_encode_streams(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "encode_streams";
    if (sc_nargs(nargs, 7, fn) < 0) return NULL;
    sc_bufs bufs = {.n = 0};
    sc_arr sym, codes, lens, bounds, boff, out, used;
    PyObject *res = NULL;
    if (sc_get(&bufs, args[0], 0, 0, "symbols", &sym) < 0 ||
        sc_get(&bufs, args[1], 0, 4, "codes", &codes) < 0 ||
        sc_get(&bufs, args[2], 0, 1, "lengths", &lens) < 0 ||
        sc_get(&bufs, args[3], 0, 8, "bounds", &bounds) < 0 ||
        sc_get(&bufs, args[4], 0, 8, "byte_offsets", &boff) < 0 ||
        sc_get(&bufs, args[5], 1, 1, "out", &out) < 0 ||
        sc_get(&bufs, args[6], 1, 8, "used", &used) < 0)
        goto done;
    if (!item_size_ok(sym.itemsize)) { bad_arg(fn, "symbols must have 1, 2, 4 or 8-byte items"); goto done; }
    if (!aligned8(&bounds) || !aligned8(&boff) || !aligned8(&used) || ((uintptr_t)codes.p & 3)) {
        bad_arg(fn, "arrays must be aligned");
        goto done;
    }
    int64_t ns = bounds.n - 1;
    int64_t alphabet = codes.n < lens.n ? codes.n : lens.n;
    const int64_t *b = bounds.p, *o = boff.p;
    if (ns < 0 || used.n < ns || boff.n < ns) { bad_arg(fn, "bounds, byte_offsets and used disagree"); goto done; }
    for (int64_t s = 0; s <= ns; s++)
        if (b[s] < 0 || b[s] > sym.n || (s && b[s] < b[s - 1])) { bad_arg(fn, "bounds out of range"); goto done; }
    for (int64_t s = 0; s < ns; s++)
        if (o[s] < 0 || o[s] > out.n || (s && o[s] < o[s - 1])) { bad_arg(fn, "byte_offsets out of range"); goto done; }
    unsigned maxlen = 0;
    for (int64_t i = 0; i < alphabet; i++) {
        unsigned ln = ((const uint8_t *)lens.p)[i];
        if (ln > 32) { bad_arg(fn, "code lengths must be <= 32"); goto done; }
        maxlen = ln > maxlen ? ln : maxlen;
    }
    int rc, fast = huf_fast();
    Py_BEGIN_ALLOW_THREADS
    rc = HUF_RUN(fast, encode_k, sym.p, codes.p, lens.p, alphabet, maxlen, b, o, boff.n, out.p,
                 out.n, used.p, ns, (int)sym.itemsize, fast);
    Py_END_ALLOW_THREADS
    if (rc == -1) bad_arg(fn, "a symbol is outside the code table");
    else if (rc == -2) bad_arg(fn, "a stream outgrew its room in out");
    else res = (Py_INCREF(Py_None), Py_None);
done:
    sc_release(&bufs);
    return res;
}

/* canonical_codes(lengths u8, codes u32 (w)) -> None. */
static int canonical(const uint8_t *lengths, int64_t n, uint32_t *codes) {
    int64_t count[17] = {0}, nxt[17] = {0}, s = 0;
    /* eight lengths at a time: runs of unused symbols (most of a sparse alphabet) at once */
    for (; s + 8 <= n; s += 8) {
        uint64_t eight;
        memcpy(&eight, lengths + s, 8);
        if (!eight) continue;
        for (int64_t t = s; t < s + 8; t++) {
            if (lengths[t] > 16) return -1;
            count[lengths[t]]++;
        }
    }
    for (; s < n; s++) {
        if (lengths[s] > 16) return -1;
        count[lengths[s]]++;
    }
    count[0] = 0;
    for (int ln = 2; ln <= 16; ln++) nxt[ln] = (nxt[ln - 1] + count[ln - 1]) << 1;
    for (s = 0; s + 8 <= n; s += 8) {
        uint64_t eight;
        memcpy(&eight, lengths + s, 8);
        if (!eight) {
            memset(codes + s, 0, 8 * sizeof(uint32_t));
            continue;
        }
        for (int64_t t = s; t < s + 8; t++) {
            unsigned ln = lengths[t];
            codes[t] = ln ? (uint32_t)nxt[ln]++ : 0;
        }
    }
    for (; s < n; s++) {
        unsigned ln = lengths[s];
        codes[s] = ln ? (uint32_t)nxt[ln]++ : 0;
    }
    return 0;
}

static PyObject *huf_canonical_codes(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "canonical_codes";
    if (sc_nargs(nargs, 2, fn) < 0) return NULL;
    sc_bufs bufs = {.n = 0};
    sc_arr lens, codes;
    PyObject *res = NULL;
    if (sc_get(&bufs, args[0], 0, 1, "lengths", &lens) < 0 ||
        sc_get(&bufs, args[1], 1, 4, "codes", &codes) < 0)
        goto done;
    if (codes.n < lens.n || ((uintptr_t)codes.p & 3)) { bad_arg(fn, "codes too short or unaligned"); goto done; }
    if (canonical(lens.p, lens.n, codes.p) < 0) bad_arg(fn, "code lengths must be <= 16");
    else res = (Py_INCREF(Py_None), Py_None);
done:
    sc_release(&bufs);
    return res;
}

/* ---- code lengths --------------------------------------------------------------------- */

/* Moffat and Katajainen's in-place minimum-redundancy code lengths of a[0..n) (ascending
 * frequencies, n >= 2), then JPEG's length limiting (ITU T.81 K.3). Returns 0, or -1 if the
 * input is not what the algorithm needs (no write outside a[0..n) either way). */
static int code_lengths_impl(int64_t *a, int64_t n, int64_t limit) {
    if (n < 2) return -1;
    a[0] += a[1];
    int64_t root = 0, leaf = 2;
    for (int64_t nxt = 1; nxt < n - 1; nxt++) {
        if (leaf >= n || a[root] < a[leaf]) {
            a[nxt] = a[root];
            a[root] = nxt;
            root++;
        } else {
            a[nxt] = a[leaf];
            leaf++;
        }
        if (leaf >= n || (root < nxt && a[root] < a[leaf])) {
            a[nxt] += a[root];
            a[root] = nxt;
            root++;
        } else {
            a[nxt] += a[leaf];
            leaf++;
        }
    }
    a[n - 2] = 0;
    for (int64_t nxt = n - 3; nxt >= 0; nxt--) {
        if (a[nxt] <= nxt || a[nxt] >= n - 1) return -1; /* a parent index, after its child */
        a[nxt] = a[a[nxt]] + 1;
    }
    int64_t avbl = 1, used = 0, depth = 0;
    root = n - 2;
    int64_t nxt = n - 1;
    while (avbl > 0) {
        while (root >= 0 && a[root] == depth) {
            used++;
            root--;
        }
        while (avbl > used) {
            if (nxt < 0) return -1;
            a[nxt--] = depth;
            avbl--;
        }
        avbl = 2 * used;
        depth++;
        used = 0;
    }
    int64_t longest = a[0];
    if (longest <= limit) return 0;
    if (limit < 1 || longest >= n || (limit < 62 && n > ((int64_t)1 << limit))) return -1;
    int64_t *count = calloc((size_t)longest + 1, sizeof(int64_t));
    if (!count) return -2;
    for (int64_t i = 0; i < n; i++) {
        if (a[i] < 0 || a[i] > longest) { free(count); return -1; }
        count[a[i]]++;
    }
    for (int64_t i = longest; i > limit; i--) {
        while (count[i] > 0) {
            int64_t j = i - 2;
            while (j > 0 && count[j] == 0) j--;
            if (j <= 0) { free(count); return -1; }
            count[i] -= 2;
            count[i - 1] += 1;
            count[j + 1] += 2;
            count[j] -= 1;
        }
    }
    int64_t k = 0;
    for (int64_t length = limit; length > 0; length--)
        for (int64_t c = 0; c < count[length] && k < n; c++) a[k++] = length;
    free(count);
    return 0;
}

static PyObject *huf_code_lengths(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "code_lengths";
    if (sc_nargs(nargs, 2, fn) < 0) return NULL;
    int64_t limit;
    if (sc_i64(args[1], &limit) < 0) return NULL;
    sc_bufs bufs = {.n = 0};
    sc_arr a;
    PyObject *res = NULL;
    if (sc_get(&bufs, args[0], 1, 8, "freqs", &a) < 0) goto done;
    if (!aligned8(&a)) { bad_arg(fn, "freqs must be aligned"); goto done; }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = code_lengths_impl(a.p, a.n, limit);
    Py_END_ALLOW_THREADS
    if (rc == -2) PyErr_NoMemory();
    else if (rc < 0) bad_arg(fn, "needs at least two positive ascending frequencies and at most 2**limit of them");
    else res = (Py_INCREF(Py_None), Py_None);
done:
    sc_release(&bufs);
    return res;
}

/* Sort int64 ascending: quicksort (median of three, the smaller side recursed) with an
 * insertion sort for short runs. */
static void quicksort_i64(int64_t *a, int64_t n) {
    while (n > 16) {
        int64_t m = n / 2, x = a[0], y = a[m], z = a[n - 1];
        int64_t pivot = x < y ? (y < z ? y : (x < z ? z : x)) : (x < z ? x : (y < z ? z : y));
        int64_t i = 0, j = n - 1;
        while (i <= j) {
            while (a[i] < pivot) i++;
            while (a[j] > pivot) j--;
            if (i <= j) {
                int64_t t = a[i];
                a[i++] = a[j];
                a[j--] = t;
            }
        }
        if (j + 1 < n - i) {
            quicksort_i64(a, j + 1);
            a += i;
            n -= i;
        } else {
            quicksort_i64(a + i, n - i);
            n = j + 1;
        }
    }
    for (int64_t i = 1; i < n; i++) {
        int64_t v = a[i], j = i;
        while (j > 0 && a[j - 1] > v) {
            a[j] = a[j - 1];
            j--;
        }
        a[j] = v;
    }
}

/* Sort non-negative int64 ascending: keys no larger than a few per item by counting them;
 * others by an LSD radix sort by bytes, as many passes as the largest key has bytes (counts of
 * a tensor's symbols take 2-3; build_code_impl's (count, symbol) keys 4-5). huffman_cost on
 * the 1621 symbols of a 12-bit field went from 42-62 to 27-42 us with the radix sort. Short
 * or unallocatable runs go to the quicksort. */
static void sort_i64(int64_t *a, int64_t n) {
    if (n > 64) {
        /* keys no larger than a few per item (a histogram's counts: 1,429 counts up to 566
         * for the 12-bit top fields of 147,456 float16 values): counted, then written out in
         * order, one pass each, where the radix sort took two of each */
        uint64_t top = 0;
        int64_t low = 0;
        for (int64_t i = 0; i < n; i++) {
            top = (uint64_t)a[i] > top ? (uint64_t)a[i] : top;
            low |= a[i];
        }
        if (low >= 0 && top <= (uint64_t)(4 * n + 1024)) {
            uint32_t *at = calloc((size_t)top + 1, sizeof(uint32_t));
            if (at && n < UINT32_MAX) {
                for (int64_t i = 0; i < n; i++) at[a[i]]++;
                int64_t k = 0;
                for (uint64_t v = 0; v <= top; v++)
                    for (uint32_t c = at[v]; c; c--) a[k++] = (int64_t)v;
                free(at);
                return;
            }
            free(at);
        }
    }
    int64_t *tmp = n > 64 ? malloc((size_t)n * sizeof(int64_t)) : NULL;
    if (!tmp) {
        quicksort_i64(a, n);
        return;
    }
    uint64_t all = 0;
    for (int64_t i = 0; i < n; i++) all |= (uint64_t)a[i];
    int64_t *src = a, *dst = tmp;
    for (int shift = 0; shift < 64 && (all >> shift); shift += 8) {
        int64_t at[256] = {0};
        for (int64_t i = 0; i < n; i++) at[((uint64_t)src[i] >> shift) & 255]++;
        int64_t sum = 0;
        for (int d = 0; d < 256; d++) {
            int64_t c = at[d];
            at[d] = sum;
            sum += c;
        }
        for (int64_t i = 0; i < n; i++) dst[at[((uint64_t)src[i] >> shift) & 255]++] = src[i];
        int64_t *t = src;
        src = dst;
        dst = t;
    }
    if (src != a) memcpy(a, src, (size_t)n * sizeof(int64_t));
    free(tmp);
}

/* One pass over counts c[0..n) (any alignment): how many are not 0 (*used), the first and
 * last of those, their sum (wrapping: the caller refuses a negative count before using it)
 * and the OR of every count, whose bits tell a count out of range (the sign bit: negative).
 * Runs of eight zero counts (most of a sparse histogram) are passed over at once. */
typedef struct {
    int64_t used, first, last;
    uint64_t sum, any;
} huf_scan;

SC_INLINE huf_scan scan_counts(const void *c, int64_t n) {
    huf_scan r = {0, 0, 0, 0, 0};
    int64_t at = 0;
    for (; at + 8 <= n; at += 8) {
        uint64_t any = 0;
        for (int j = 0; j < 8; j++) any |= (uint64_t)ld64s(c, at + j);
        if (!any) continue;
        r.any |= any;
        for (int64_t j = at; j < at + 8; j++) {
            int64_t v = ld64s(c, j);
            if (v) {
                if (!r.used) r.first = j;
                r.last = j;
                r.used++;
                r.sum += (uint64_t)v;
            }
        }
    }
    for (; at < n; at++) {
        int64_t v = ld64s(c, at);
        r.any |= (uint64_t)v;
        if (v) {
            if (!r.used) r.first = at;
            r.last = at;
            r.used++;
            r.sum += (uint64_t)v;
        }
    }
    return r;
}

/* The encoder's code for counts[0..n) (n <= 2**16): lengths (ln) and canonical codes; the
 * symbols that occur, and the first and last of them. 0, -1 (a count outside 0 .. 2**46 - 1),
 * -2 (no memory), -3 (more than 2**limit symbols occur). No Python calls: runs without the GIL. */
static int build_code_impl(const void *counts, int64_t n, int64_t limit, uint8_t *ln,
                           uint32_t *codes, int64_t *used_out, int64_t *first_out,
                           int64_t *last_out) {
    int rc = 0;
    memset(ln, 0, (size_t)n);
    const huf_scan scan = scan_counts(counts, n);
    const int64_t used = scan.used, first = scan.first, last = scan.last;
    if (scan.any >> 46) return -1; /* a count outside 0 .. 2**46 - 1 sets a bit from 46 up */
    if (used > ((int64_t)1 << limit)) return -3;
    if (used == 1) ln[first] = 1;
    if (used > 1) {
        int64_t *key = malloc((size_t)used * sizeof(int64_t));
        int64_t *l = malloc((size_t)used * sizeof(int64_t));
        if (!key || !l) rc = -2;
        else {
            int64_t k = 0;
            for (int64_t i = first; i <= last; i++) {
                int64_t v = ld64s(counts, i);
                if (v) key[k++] = (v << 16) | i; /* (count, symbol) order */
            }
            sort_i64(key, used);
            for (int64_t i = 0; i < used; i++) l[i] = key[i] >> 16;
            rc = code_lengths_impl(l, used, limit);
            for (int64_t i = 0; rc == 0 && i < used; i++) ln[key[i] & 0xFFFF] = (uint8_t)l[i];
        }
        free(key);
        free(l);
    }
    if (rc == 0) canonical(ln, n, codes);
    *used_out = used;
    *first_out = first;
    *last_out = last;
    return rc;
}

static PyObject *code_error(const char *fn, int rc) {
    if (rc == -2) return PyErr_NoMemory();
    if (rc == -3) return bad_arg(fn, "more symbols occur than codes of at most limit bits");
    return bad_arg(fn, "counts must be 0 .. 2**46 - 1");
}

/* Unsigned LEB128 varints, as the codebooks of frame format 3 store numbers (see
 * _huffman.py): 7 bits a byte, low first, the high bit set on all but the last byte. */
SC_INLINE int64_t varint_bytes(uint64_t v) {
    int64_t n = 1;
    for (; v >= 128; v >>= 7) n++;
    return n;
}

SC_INLINE int64_t put_varint(uint8_t *out, uint64_t v) {
    int64_t n = 0;
    do {
        const uint8_t b = (uint8_t)(v & 127);
        v >>= 7;
        out[n++] = (uint8_t)(b | (v ? 128 : 0));
    } while (v);
    return n;
}

/* The varint at b[*at..n) into *v, *at moved past it: 0, or -1 for one cut short, longer than
 * 9 bytes, or ending in a redundant 0 byte (as _huffman._read_varint refuses them). */
SC_INLINE int get_varint(const uint8_t *b, int64_t n, int64_t *at, uint64_t *v) {
    uint64_t x = 0;
    for (int k = 0; k < 9; k++) {
        if (*at + k >= n) return -1;
        const uint8_t c = b[*at + k];
        x |= (uint64_t)(c & 127) << (7 * k);
        if (!(c & 128)) {
            if (k && !c) return -1;
            *at += k + 1;
            *v = x;
            return 0;
        }
    }
    return -1;
}

/* The lengths part of a codebook (as _huffman._serialize_lengths writes it) into `out` (room
 * for the larger format); returns its bytes. Dense: 2, first, span (varints), then the span's
 * lengths two to a byte (low nibble first); sparse: 3, used (varint), then (symbol u16,
 * length u8) of each symbol with a code. The dense one on a tie. */
SC_INLINE int64_t lengths_dense_bytes(int64_t first, int64_t span) {
    return 1 + varint_bytes((uint64_t)first) + varint_bytes((uint64_t)span) + (span + 1) / 2;
}
SC_INLINE int64_t lengths_sparse_bytes(int64_t used) {
    return 1 + varint_bytes((uint64_t)used) + 3 * used;
}

static int64_t serialize_lengths(const uint8_t *ln, int64_t used, int64_t first, int64_t last,
                                 uint8_t *out) {
    if (!used) first = 0;
    int64_t span = used ? last + 1 - first : 0;
    if (lengths_dense_bytes(first, span) <= lengths_sparse_bytes(used)) {
        int64_t k = 1;
        out[0] = 2;
        k += put_varint(out + k, (uint64_t)first);
        k += put_varint(out + k, (uint64_t)span);
        for (int64_t i = 0; i < span; i += 2)
            out[k + i / 2] = (uint8_t)(ln[first + i] | (i + 1 < span ? ln[first + i + 1] << 4 : 0));
        return k + (span + 1) / 2;
    }
    out[0] = 3;
    int64_t k = 1 + put_varint(out + 1, (uint64_t)used);
    for (int64_t s = first; s <= last; s++)
        if (ln[s]) {
            out[k] = (uint8_t)s;
            out[k + 1] = (uint8_t)(s >> 8);
            out[k + 2] = ln[s];
            k += 3;
        }
    return k;
}

/* encode_coded(symbols, counts i64, limit, nstreams) -> (codebook: bytes, bits: bytes): what
 * _huffman.encode_symbols stores, in one call: the code of `counts` (at most 2**16 symbols;
 * lengths in ascending (count, symbol) order, a lone symbol length 1; canonical codes), the
 * codebook (lengths, the stream count, each stream's bytes as u64) and the symbols coded in
 * `nstreams` streams, stream s holding symbols (s * n) / nstreams onwards, packed one after
 * another. ValueError for a symbol outside the counts, a count outside 0 .. 2**46 - 1, or more
 * than 2**limit symbols that occur. */
static PyObject *huf_encode_coded(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "encode_coded";
    if (sc_nargs(nargs, 4, fn) < 0) return NULL;
    int64_t limit, ns;
    if (sc_i64(args[2], &limit) < 0 || sc_i64(args[3], &ns) < 0) return NULL;
    if (limit < 1 || limit > 16) return bad_arg(fn, "limit must be 1..16");
    if (ns < 1 || ns > 255) return bad_arg(fn, "nstreams must be 1..255");
    sc_bufs bufs = {.n = 0};
    sc_arr sym, c;
    PyObject *res = NULL, *book = NULL, *bits = NULL;
    uint8_t *ln = NULL;
    uint32_t *codes = NULL;
    int64_t bounds[256], boff[256], sizes[255], used, first, last, total = 0, nbook;
    int rc;
    if (sc_get(&bufs, args[0], 0, 0, "symbols", &sym) < 0 ||
        sc_get(&bufs, args[1], 0, 8, "counts", &c) < 0)
        goto done;
    if (!item_size_ok(sym.itemsize)) { bad_arg(fn, "symbols must have 1, 2, 4 or 8-byte items"); goto done; }
    if (c.n < 1 || c.n > (1 << 16)) { bad_arg(fn, "1 .. 2**16 counts"); goto done; }
    ln = malloc((size_t)c.n);
    codes = malloc((size_t)c.n * sizeof(uint32_t));
    if (!ln || !codes) { PyErr_NoMemory(); goto done; }
    Py_BEGIN_ALLOW_THREADS
    rc = build_code_impl(c.p, c.n, limit, ln, codes, &used, &first, &last);
    Py_END_ALLOW_THREADS
    if (rc < 0) { code_error(fn, rc); goto done; }
    unsigned maxlen = 1;
    for (int64_t i = 0; i < c.n; i++) maxlen = ln[i] > maxlen ? ln[i] : maxlen;
    /* each stream is written into room for its symbols at the longest code, then packed */
    boff[0] = 0;
    for (int64_t s = 0; s <= ns; s++) bounds[s] = (int64_t)(((__int128)s * sym.n) / ns);
    for (int64_t s = 0; s < ns; s++)
        boff[s + 1] = boff[s] + ((bounds[s + 1] - bounds[s]) * (int64_t)maxlen + 63) / 64 * 8;
    int64_t lmax = lengths_dense_bytes(c.n, c.n) > lengths_sparse_bytes(used)
                       ? lengths_dense_bytes(c.n, c.n) : lengths_sparse_bytes(used);
    book = PyBytes_FromStringAndSize(NULL, lmax + 9 * ns);
    bits = PyBytes_FromStringAndSize(NULL, boff[ns]);
    if (!book || !bits) goto done;
    uint8_t *out = (uint8_t *)PyBytes_AS_STRING(bits), *bk = (uint8_t *)PyBytes_AS_STRING(book);
    int fast = huf_fast();
    Py_BEGIN_ALLOW_THREADS
    rc = HUF_RUN(fast, encode_k, sym.p, codes, ln, c.n, maxlen, bounds, boff, ns + 1, out,
                 boff[ns], sizes, ns, (int)sym.itemsize, fast);
    if (rc == 0)
        for (int64_t s = 0; s < ns; s++) {
            memmove(out + total, out + boff[s], (size_t)sizes[s]);
            total += sizes[s];
        }
    nbook = serialize_lengths(ln, used, first, last, bk);
    for (int64_t s = 0; s + 1 < ns; s++) /* every stream's words but the last's */
        nbook += put_varint(bk + nbook, rc == 0 ? (uint64_t)sizes[s] / 8 : 0);
    Py_END_ALLOW_THREADS
    if (rc == -1) { bad_arg(fn, "a symbol is outside the code table"); goto done; }
    if (rc < 0) { bad_arg(fn, "a stream outgrew its room"); goto done; }
    if (_PyBytes_Resize(&book, nbook) < 0 || _PyBytes_Resize(&bits, total) < 0) goto done;
    res = PyTuple_Pack(2, book, bits);
done:
    Py_XDECREF(book);
    Py_XDECREF(bits);
    free(ln);
    free(codes);
    sc_release(&bufs);
    return res;
}

/* huffman_cost(counts i64, limit) -> (bits, total, used, first, last). */
/* What coding counts c[0..n) with codes of at most `limit` bits costs: r = {bits, total,
 * used, first, last} (bits -1 when more than 2**limit symbols occur). Returns 0, -1 for a
 * negative count, -2 out of memory. */
/* The bits of a code of at most `limit` bits for the used > 1 counts f (no more than
 * 2**limit of them), as huffman_cost_impl answers them; f, the caller's, is sorted in place.
 * Returns 0, or code_lengths_impl's or the allocation's error. */
static int code_bits(int64_t *f, int64_t used, int64_t limit, int64_t *bits) {
    sort_i64(f, used);
    /* the lengths come back in the same (ascending frequency) order */
    int64_t *l = malloc((size_t)used * sizeof(int64_t));
    if (!l) return -2;
    memcpy(l, f, (size_t)used * sizeof(int64_t));
    const int rc = code_lengths_impl(l, used, limit);
    *bits = 0;
    for (int64_t i = 0; rc == 0 && i < used; i++) *bits += f[i] * l[i];
    free(l);
    return rc;
}

static int huffman_cost_impl(const int64_t *c, int64_t n, int64_t limit, int64_t r[5]) {
    int64_t bits = 0;
    int rc = 0;
    const huf_scan scan = scan_counts(c, n);
    if ((int64_t)scan.any < 0) return -1; /* a negative count */
    const int64_t total = (int64_t)scan.sum, used = scan.used, first = scan.first,
                  last = scan.last;
    if (used == 1) bits = total;
    else if (used > ((int64_t)1 << limit)) bits = -1;
    else if (used > 1) {
        int64_t *f = malloc((size_t)used * sizeof(int64_t));
        if (!f) return -2;
        int64_t k = 0;
        for (int64_t i = first; i <= last; i++) {
            int64_t v = ld64s(c, i);
            if (v) f[k++] = v;
        }
        rc = code_bits(f, used, limit, &bits);
        free(f);
    }
    r[0] = bits, r[1] = total, r[2] = used, r[3] = first, r[4] = last;
    return rc;
}

/* A histogram's used bins, sparse: bin idx[k] holds cnt[k] > 0, idx ascending. */
typedef struct {
    int64_t *idx, *cnt, used;
} huf_bins;
static double entropy_floor_bins(const huf_bins *b, int64_t len);

/* The used bins of counts c[0..n) into b (room for as many as scan_counts found). Runs of
 * eight zero counts are passed over at once, as scan_counts does. */
static void gather_bins(const int64_t *c, int64_t n, huf_bins *b) {
    int64_t k = 0, at = 0;
    for (; at + 8 <= n; at += 8) {
        uint64_t eight = 0;
        for (int j = 0; j < 8; j++) eight |= (uint64_t)ld64s(c, at + j);
        if (!eight) continue;
        for (int64_t j = at; j < at + 8; j++) {
            const int64_t v = ld64s(c, j);
            if (v) b->idx[k] = j, b->cnt[k++] = v;
        }
    }
    for (; at < n; at++) {
        const int64_t v = ld64s(c, at);
        if (v) b->idx[k] = at, b->cnt[k++] = v;
    }
    b->used = k;
}

/* The next coarser level of `src` (adjacent pairs of bins summed: bin j of it is bins 2j and
 * 2j + 1 of src) into dst. */
static void coarsen_bins(const huf_bins *src, huf_bins *dst) {
    int64_t k = 0;
    for (int64_t i = 0; i < src->used; i++) {
        const int64_t j = src->idx[i] >> 1;
        if (k && dst->idx[k - 1] == j) dst->cnt[k - 1] += src->cnt[i];
        else dst->idx[k] = j, dst->cnt[k++] = src->cnt[i];
    }
    dst->used = k;
}

/* huffman_cost_impl of the histogram whose used bins are b: the same r, from the same sorted
 * counts (their order in the histogram does not change the sort). */
static int huffman_cost_bins(const huf_bins *b, int64_t limit, int64_t r[5]) {
    const int64_t used = b->used;
    uint64_t sum = 0;
    for (int64_t i = 0; i < used; i++) sum += (uint64_t)b->cnt[i];
    int64_t bits = 0;
    int rc = 0;
    if (used == 1) bits = (int64_t)sum;
    else if (used > ((int64_t)1 << limit)) bits = -1;
    else if (used > 1) {
        int64_t *f = malloc((size_t)used * sizeof(int64_t));
        if (!f) return -2;
        memcpy(f, b->cnt, (size_t)used * sizeof(int64_t));
        rc = code_bits(f, used, limit, &bits);
        free(f);
    }
    r[0] = bits, r[1] = (int64_t)sum, r[2] = used;
    r[3] = used ? b->idx[0] : 0, r[4] = used ? b->idx[used - 1] : 0;
    return rc;
}

/* The levels of a histogram of n counts, sparse: bins[0] its used bins, bins[lv] those of the
 * lv-th coarser one, in one allocation (*mem, for the caller to free). Where few bins are in
 * use (a small tensor's 12-bit top fields: 5-50 of 4096), the dense levels' copy, pair sums
 * and scans were most of a planner's call: 6-8 us for the four levels of 8 used bins.
 * Returns 0, -1 for a negative count, -2 out of memory. */
static int sparse_levels(const int64_t *c, int64_t n, int64_t levels, huf_bins *bins,
                         int64_t **mem) {
    const huf_scan scan = scan_counts(c, n);
    if ((int64_t)scan.any < 0) return -1;
    const int64_t used = scan.used; /* no level has more bins in use than the finest */
    *mem = malloc((size_t)(used ? used : 1) * 2 * (size_t)levels * sizeof(int64_t));
    if (!*mem) return -2;
    for (int64_t lv = 0; lv < levels; lv++)
        bins[lv] = (huf_bins){*mem + 2 * lv * used, *mem + (2 * lv + 1) * used, 0};
    gather_bins(c, n, &bins[0]);
    for (int64_t lv = 1; lv < levels; lv++) coarsen_bins(&bins[lv - 1], &bins[lv]);
    return 0;
}

/* The bytes encode_coded stores for a code of cost r (huffman_cost_impl's r): the codebook
 * in the smaller of serialize_lengths' two formats and the streams' lengths but the last, then
 * the streams, each padded to whole 64-bit words: for one stream exact (no length stored), for
 * four an upper bound (each stream's padding, and each length's varint as long as the words of
 * all the streams'). HUF_UNCODABLE where no code of the limit exists (r[0] < 0).
 * tests/test_huffman.py states it in Python (_coded_bytes_reference) and holds them equal. */
#define HUF_UNCODABLE ((int64_t)1 << 62)
static int64_t coded_bytes(const int64_t r[5]) {
    if (r[0] < 0) return HUF_UNCODABLE;
    const int64_t ns = r[1] >= ((int64_t)1 << 14) ? 4 : 1, used = r[2];
    const int64_t first = used ? r[3] : 0, span = used ? r[4] + 1 - r[3] : 0;
    const int64_t dense = lengths_dense_bytes(first, span), sparse = lengths_sparse_bytes(used);
    const int64_t words = (r[0] + 63) / 64 + (ns - 1);
    return (dense <= sparse ? dense : sparse) + (ns - 1) * varint_bytes((uint64_t)words) +
           8 * words;
}

/* huffman_costs(counts i64 (rows x n), rows, levels, limit, out i64 (w, rows x levels x 5)
 * [, sizes i64 (w, rows x levels)]): huffman_cost of each row's counts and of `levels - 1`
 * coarser histograms, each summing adjacent pairs of the one before (n even at every level but
 * the last): one call for what a planner compares (the top fields of 12..9 bits, the byte
 * planes); with `sizes`, also the bytes each would take coded (coded_bytes), which the planner
 * compares (in Python, 0.6 us a histogram). More than one level: from the used bins of each
 * (sparse_levels). */

/* huffman_costs with `extra` (one row): the bytes each level adds besides its coded sizes
 * (a top field width's raw low bits) given, only the levels that may give the least
 * sizes[lv] + extra[lv] (the finest on a tie, as the caller picks) are coded exactly; the rest
 * get bits -1 (HUF_UNCODABLE), which the caller passes over. The levels are coded in the order
 * of a floor of that total, their codebook's bytes and their order-0 entropy less a bit
 * (against the sum's rounding): a Huffman code's bits are at least the entropy, its streams'
 * bytes at least those bits / 8, and a level whose floor loses to an exact total found cannot
 * win. The exact costs of 768 used 12-bit top fields took 24 us for the four widths; their
 * floors, the codebook (known from the used bins' span) and the entropy (a look-up a used
 * bin), ~1 us each. */
static int level_sizes(const int64_t *c, int64_t n, int64_t levels, int64_t limit,
                       const int64_t *extra, int64_t *out, int64_t *sizes) {
    huf_bins bins[16];
    int64_t *mem = NULL, floor_[16];
    int rc;
    rc = sparse_levels(c, n, levels, bins, &mem);
    int order[16];
    for (int64_t lv = 0; rc == 0 && lv < levels; lv++) {
        /* the codebook's bytes are known from the used bins alone (a 12-bit field's is often
         * a tenth of a small frame); the streams' are at least the entropy's */
        const huf_bins *b = &bins[lv];
        const int64_t first = b->used ? b->idx[0] : 0,
                      span = b->used ? b->idx[b->used - 1] + 1 - first : 0;
        const int64_t dense = lengths_dense_bytes(first, span), sparse = lengths_sparse_bytes(b->used);
        const double bits = entropy_floor_bins(b, n >> lv) - 1.0;
        floor_[lv] = (bits > 0 ? (int64_t)(bits / 8) : 0) + (dense <= sparse ? dense : sparse) +
                     extra[lv];
        order[lv] = (int)lv;
        int64_t *r = out + lv * 5;
        r[0] = -1, r[1] = r[2] = r[3] = r[4] = 0;
        sizes[lv] = HUF_UNCODABLE;
    }
    for (int i = 1; rc == 0 && i < levels; i++) /* insertion sort by floor, the finer first on a tie */
        for (int j = i; j > 0 && floor_[order[j]] < floor_[order[j - 1]]; j--) {
            const int t = order[j];
            order[j] = order[j - 1], order[j - 1] = t;
        }
    int64_t best = -1, best_total = 0;
    for (int i = 0; rc == 0 && i < levels; i++) {
        const int lv = order[i];
        if (best >= 0 && (floor_[lv] > best_total || (floor_[lv] == best_total && lv > best)))
            continue;
        int64_t *r = out + lv * 5;
        rc = huffman_cost_bins(&bins[lv], limit, r);
        if (rc < 0) break;
        sizes[lv] = coded_bytes(r);
        if (sizes[lv] >= HUF_UNCODABLE) continue;
        const int64_t total = sizes[lv] + extra[lv];
        if (best < 0 || total < best_total || (total == best_total && lv < best))
            best = lv, best_total = total;
    }
    free(mem);
    return rc;
}

/* level_sizes without the GIL. */
static int best_level_sizes(const int64_t *c, int64_t n, int64_t levels, int64_t limit,
                            const int64_t *extra, int64_t *out, int64_t *sizes) {
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = level_sizes(c, n, levels, limit, extra, out, sizes);
    Py_END_ALLOW_THREADS
    return rc;
}

static PyObject *huf_huffman_costs(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "huffman_costs";
    if (nargs < 5 || nargs > 7) {
        PyErr_Format(PyExc_TypeError, "%s takes 5 to 7 arguments (%zd given)", fn, nargs);
        return NULL;
    }
    int64_t v[3]; /* rows, levels, limit */
    if (ints(args, 1, 3, v) < 0) return NULL;
    const int64_t rows = v[0], levels = v[1], limit = v[2];
    if (limit < 1 || limit > 32) return bad_arg(fn, "limit must be 1..32");
    if (rows < 1 || levels < 1 || levels > 16) return bad_arg(fn, "need rows >= 1, 1 <= levels <= 16");
    sc_bufs bufs = {.n = 0};
    sc_arr c, out, sizes = {0}, extra = {0};
    PyObject *res = NULL;
    if (sc_get(&bufs, args[0], 0, 8, "counts", &c) < 0 ||
        sc_get(&bufs, args[4], 1, 8, "out", &out) < 0 ||
        (nargs >= 6 && sc_get(&bufs, args[5], 1, 8, "sizes", &sizes) < 0) ||
        (nargs == 7 && sc_get(&bufs, args[6], 0, 8, "extra", &extra) < 0))
        goto done;
    const int64_t n = c.n / rows;
    if (n * rows != c.n || (n >> (levels - 1)) << (levels - 1) != n || out.n != rows * levels * 5 ||
        !aligned8(&c) || !aligned8(&out) ||
        (nargs >= 6 && (sizes.n != rows * levels || !aligned8(&sizes))) ||
        (nargs == 7 && (rows != 1 || extra.n != levels || !aligned8(&extra)))) {
        bad_arg(fn, "counts must be rows of a length 2**(levels - 1) divides; out rows x levels x 5");
        goto done;
    }
    int rc = 0;
    if (nargs == 7) {
        rc = best_level_sizes(c.p, n, levels, limit, extra.p, out.p, sizes.p);
        if (rc == -2) PyErr_NoMemory();
        else if (rc < 0) bad_arg(fn, "counts must be non-negative");
        else res = (Py_INCREF(Py_None), Py_None);
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    for (int64_t row = 0; rc == 0 && row < rows; row++) {
        const int64_t *cur = (const int64_t *)c.p + row * n;
        if (levels == 1) { /* one level: straight from the counts */
            int64_t *r = (int64_t *)out.p + row * 5;
            rc = huffman_cost_impl(cur, n, limit, r);
            if (rc == 0 && sizes.p) ((int64_t *)sizes.p)[row] = coded_bytes(r);
            continue;
        }
        huf_bins bins[16];
        int64_t *mem = NULL;
        rc = sparse_levels(cur, n, levels, bins, &mem);
        for (int64_t lv = 0; rc == 0 && lv < levels; lv++) {
            int64_t *r = (int64_t *)out.p + (row * levels + lv) * 5;
            rc = huffman_cost_bins(&bins[lv], limit, r);
            if (rc == 0 && sizes.p) ((int64_t *)sizes.p)[row * levels + lv] = coded_bytes(r);
        }
        free(mem);
    }
    Py_END_ALLOW_THREADS
    if (rc == -2) PyErr_NoMemory();
    else if (rc < 0) bad_arg(fn, "counts must be non-negative");
    else res = (Py_INCREF(Py_None), Py_None);
done:
    sc_release(&bufs);
    return res;
}

/* ---- decoding tables ------------------------------------------------------------------ */

/* of[l]: how many of the n lengths are l (0..16); of[17]: how many are above 16. In four sets
 * of counters that take the lengths in turn: a code's lengths come mostly equal (10,924 codes
 * of 13-14 bits, a centroid index's), and one counter incremented back to back waits on its
 * own store at every length. The tables' three passes over the lengths (coded_width,
 * code_shape and the longest code) are one. */
static void length_counts(const uint8_t *lengths, int64_t n, int64_t of[18]) {
    int64_t part[4][18];
    memset(part, 0, sizeof(part));
    int64_t s = 0;
    for (; s + 4 <= n; s += 4)
        for (int k = 0; k < 4; k++) part[k][lengths[s + k] <= 16 ? lengths[s + k] : 17]++;
    for (; s < n; s++) part[0][lengths[s] <= 16 ? lengths[s] : 17]++;
    for (int l = 0; l < 18; l++) of[l] = part[0][l] + part[1][l] + part[2][l] + part[3][l];
}

/* The fast table's width for `count` symbols of these lengths (see decode_coded_width):
 * under the code's implied probabilities 2**-len, wide enough that at most 1/64 of the codes
 * are longer than the table (those take the slower long-code path), and wider still, up to
 * max_fast, if two codes of the average length then fit (a look-up decodes both): only for
 * byte alphabets (`bytes`: the table's uint32 entries) and when there are at least 64
 * symbols to decode for each entry built (HUF_PAIR_SYMBOLS). Where they did not hold, the
 * wider table decoded slower: a 64 KiB table of uint64 entries (float16 fields of 9 bits,
 * ~6.4-bit codes, 1536x384: 0.82 ns a symbol at 13 bits, 0.78 at 12) and a byte table built
 * for too few symbols (a 70%-sparse mask of 73,728 bytes: 1.03 ns at 14 bits, 0.88 at 12;
 * docs/benchmarks.md, issue 13's eighteenth pass). */
#define HUF_PAIR_SYMBOLS 64
/* What a table of `width` bits costs, in table entries, to decode `count` symbols whose codes
 * longer than the table have the mass `past`: its entries, and each long code as
 * HUF_LONG_ENTRIES entries (the canonical long-code path, a branch miss and a loop, against an
 * entry's build; bench/huffman_speed.py times both). */
#define HUF_LONG_ENTRIES 4.0
SC_INLINE double huf_width_cost(int64_t width, int64_t count, double past) {
    return ldexp(1.0, (int)width) + HUF_LONG_ENTRIES * (double)count * past;
}
static int64_t coded_width(const int64_t of_len[18], int64_t count, int64_t min_fast,
                           int64_t max_fast, int bytes) {
    /* the codes of each length counted (length_counts; above 16: no code), then their mass:
     * the same sums (every partial sum is a multiple of 2**-16 below 2**21, exact in a double,
     * in any order) without two ldexp calls a symbol (40 -> 3 us for 4,096 symbols with codes,
     * a 12-bit top field's) */
    double mean = 0.0, mass[17] = {0.0};
    for (int ln = 1; ln <= 16; ln++) {
        mass[ln] = (double)of_len[ln] * ldexp(1.0, -ln);
        mean += ln * mass[ln];
    }
    int64_t w = min_fast, pair = (int64_t)ceil(2 * mean);
    double longer = 0.0; /* the mass of codes longer than w */
    for (int ln = (int)min_fast + 1; ln <= 16; ln++) longer += mass[ln];
    while (w < max_fast && longer > 1.0 / 64) longer -= mass[++w];
    if (bytes && pair > w && pair <= max_fast && count / HUF_PAIR_SYMBOLS >= ((int64_t)1 << pair))
        w = pair;
    int64_t bits = 0;
    for (int64_t per8 = count / 8; per8; per8 >>= 1) bits++;
    if (w > bits) { /* the narrowest of bits .. w that costs least, entries and long codes */
        double past[18] = {0.0}; /* past[v]: the mass of codes longer than v bits */
        for (int ln = 16; ln >= 1; ln--) past[ln - 1] = past[ln] + mass[ln];
        int64_t best = w;
        double least = huf_width_cost(w, count, past[w]);
        for (int64_t v = w - 1; v >= bits; v--) {
            const double cost = huf_width_cost(v, count, past[v]);
            if (cost <= least) least = cost, best = v;
        }
        w = best;
    }
    return w < 1 ? 1 : w;
}

static PyObject *huf_decode_coded_width(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "decode_coded_width";
    if (sc_nargs(nargs, 4, fn) < 0) return NULL;
    int64_t v[3];
    if (ints(args, 1, 3, v) < 0) return NULL;
    sc_bufs bufs = {.n = 0};
    sc_arr lens;
    PyObject *res = NULL;
    if (sc_get(&bufs, args[0], 0, 1, "lengths", &lens) < 0) goto done;
    int64_t of[18];
    length_counts(lens.p, lens.n, of);
    res = PyLong_FromLongLong(coded_width(of, v[0], v[1], v[2], lens.n <= 256));
done:
    sc_release(&bufs);
    return res;
}

/* The tables of a canonical code (see build_decoder in the Python layer): `count`, `first`,
 * `offset` (17 each), `order` (room for every used symbol), and `table` (1 << width entries,
 * width already capped at 2 * full). Returns the number of used symbols. */
typedef struct {
    int64_t count[17], first[17], offset[17];
    int full, kraft_ok;
} huf_code;

/* A fast-table entry (uint64): bits 0-5 the bits the counted symbols use, 8-15 the length
 * of the first symbol's code, 16-31 the first symbol, 32-47 the second (when the code after
 * the first also fits in the table's width), 62-63 the count: 0 (no code of at most `width`
 * bits starts here: a long code, resolved canonically), 1 or 2. The bits used sit at the
 * bottom so that the window shifts by the entry itself (a shift takes its count modulo 64):
 * the look-up chain is an index, a load and a shift; the count is one shift. */
#define HUF_USED(x) ((x) & 63)
#define HUF_COUNT(x) ((x) >> 62)
#define HUF_FIRST_LEN(x) (((x) >> 8) & 0xFF)
#define HUF_ENTRY(used, count, first_len, s1, s2)                                              \
    ((uint64_t)(used) | ((uint64_t)(count) << 62) | ((uint64_t)(first_len) << 8) |             \
     ((uint64_t)(s1) << 16) | ((uint64_t)(s2) << 32))
/* The widest fast table the decoder takes: a batch of four look-ups consumes at most 4 x 14 =
 * 56 bits, and a window holds at least 57 (see window). */
#define HUF_MAX_WIDTH 14

/* The byte table: the same entries for outputs of one byte (alphabets of at most 256 symbols),
 * in a uint32: bits 0-5 the bits used, 6-7 the count, 8-15 the first symbol, 16-23 the second,
 * 24-31 the first code's length. A look-up's two symbols are then one 16-bit store, and the
 * table half the size: 1.20 -> 0.97 ns a symbol on ~8-bit codes, 0.59 -> 0.47 on a 2:4 mask
 * (bench/huffman_speed.py, a scratch build that converted the table). Item size 1 means the
 * byte table wherever the decoder is instantiated (ent_* below). */
#define HUF_E8(used, count, first_len, s1, s2)                                                 \
    ((uint32_t)(used) | ((uint32_t)(count) << 6) | ((uint32_t)(s1) << 8) |                    \
     ((uint32_t)(s2) << 16) | ((uint32_t)(first_len) << 24))

SC_INLINE uint64_t ent(const void *table, uint64_t i, int isz) {
    return isz == 1 ? ((const uint32_t *)table)[i] : ((const uint64_t *)table)[i];
}
SC_INLINE uint64_t ent_count(uint64_t x, int isz) { return isz == 1 ? (x >> 6) & 3 : x >> 62; }
SC_INLINE uint64_t ent_first_len(uint64_t x, int isz) {
    return isz == 1 ? x >> 24 : HUF_FIRST_LEN(x);
}
SC_INLINE uint64_t ent_first(uint64_t x, int isz) {
    return isz == 1 ? (x >> 8) & 0xFF : (x >> 16) & 0xFFFF;
}

/* Pass 1 of the tables, from the lengths' counts (length_counts): counts, longest code,
 * Kraft check. -1 if a length is above 16. */
static int code_shape(const int64_t of[18], huf_code *c) {
    memset(c, 0, sizeof(*c));
    if (of[17]) return -1;
    memcpy(c->count, of, sizeof(c->count));
    c->count[0] = 0;
    c->full = 1;
    int64_t kraft = 0;
    for (int ln = 1; ln <= 16; ln++) {
        if (c->count[ln]) c->full = ln;
        kraft += c->count[ln] << (16 - ln);
    }
    c->kraft_ok = kraft <= (1 << 16);
    if (!c->kraft_ok) return 0;
    for (int ln = 2; ln <= 16; ln++) {
        c->first[ln] = (c->first[ln - 1] + c->count[ln - 1]) << 1;
        c->offset[ln] = c->offset[ln - 1] + c->count[ln - 1];
    }
    c->offset[1] = 0;
    return 0;
}

/* Pass 2: order and the fast table (entry layout in build_decoder's docstring). lengths[i]
 * is symbol base + i's (symbols below base have no code).
 *
 * The table is written once, left to right, with no reads (huff0's HUF_fillDTableX2 builds its
 * two-symbol table the same way): a canonical code's codes of at most `width` bits cover a
 * prefix of the table, one run each, in `order`; within the run of a first code of length a,
 * the codes of at most width - a bits again cover a prefix of the run, in `order`, one
 * two-symbol entry each, and the rest of the run (a longer second code, or none) holds the
 * first symbol alone. The entries past the short codes (long codes' prefixes, and the unused
 * end of an incomplete code) stay 0. */
SC_INLINE void code_tables_body(const uint8_t *lengths, int64_t n, int64_t base,
                                const huf_code *c, int width, void *table, uint16_t *order,
                                int e8) {
    int64_t nxt[17];
    memcpy(nxt, c->offset, sizeof(nxt));
    for (int64_t s = 0; s < n; s++)
        if (lengths[s]) order[nxt[lengths[s]]++] = (uint16_t)(s + base);
    int64_t upto[17]; /* upto[L]: how many codes are at most L bits long */
    upto[0] = 0;
    for (int ln = 1; ln <= 16; ln++) upto[ln] = upto[ln - 1] + c->count[ln];
    uint64_t *t = table;
    uint32_t *t8 = table;
    int64_t at = 0; /* the next entry */
#define HUF_RUN_OF(e, e8v, len)                                                                \
    do {                                                                                       \
        if (e8)                                                                                \
            for (int64_t i_ = 0; i_ < (len); i_++) t8[at + i_] = (e8v);                       \
        else                                                                                   \
            for (int64_t i_ = 0; i_ < (len); i_++) t[at + i_] = (e);                          \
        at += (len);                                                                           \
    } while (0)
    for (int64_t k = 0; k < upto[width]; k++) {
        const uint64_t s1 = order[k];
        const int a = lengths[s1 - base], rest = width - a;
        const int64_t end = at + ((int64_t)1 << rest);
        for (int64_t k2 = 0; k2 < upto[rest]; k2++) {
            const uint64_t s2 = order[k2];
            const int b = lengths[s2 - base];
            HUF_RUN_OF(HUF_ENTRY(a + b, 2, a, s1, s2), HUF_E8(a + b, 2, a, s1 & 0xFF, s2 & 0xFF),
                       (int64_t)1 << (rest - b));
        }
        HUF_RUN_OF(HUF_ENTRY(a, 1, a, s1, 0), HUF_E8(a, 1, a, s1 & 0xFF, 0), end - at);
    }
#undef HUF_RUN_OF
    const int64_t size = (int64_t)1 << width, esz = e8 ? 4 : 8;
    memset((char *)table + at * esz, 0, (size_t)((size - at) * esz));
}

/* e8: the byte table's uint32 entries (HUF_E8) instead of uint64 ones. */
static void code_tables(const uint8_t *lengths, int64_t n, int64_t base, const huf_code *c,
                        int width, void *table, uint16_t *order, int e8) {
    if (e8)
        code_tables_body(lengths, n, base, c, width, table, order, 1);
    else
        code_tables_body(lengths, n, base, c, width, table, order, 0);
}

/* build_decoder(lengths u8, width, table u64 (w, >= 1 << width), first, count, offset (i64
 * x 17, w), order u16 (w, >= used symbols)) -> (width, full, used, kraft_ok). */
static PyObject *huf_build_decoder(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "build_decoder";
    if (sc_nargs(nargs, 7, fn) < 0) return NULL;
    int64_t width;
    if (sc_i64(args[1], &width) < 0) return NULL;
    if (width < 1 || width > 16) return bad_arg(fn, "width must be 1..16");
    if (width > HUF_MAX_WIDTH) width = HUF_MAX_WIDTH;
    sc_bufs bufs = {.n = 0};
    sc_arr lens, table, first, count, offset, order;
    PyObject *res = NULL;
    if (sc_get(&bufs, args[0], 0, 1, "lengths", &lens) < 0 ||
        sc_get(&bufs, args[2], 1, 8, "table", &table) < 0 ||
        sc_get(&bufs, args[3], 1, 8, "first", &first) < 0 ||
        sc_get(&bufs, args[4], 1, 8, "count", &count) < 0 ||
        sc_get(&bufs, args[5], 1, 8, "offset", &offset) < 0 ||
        sc_get(&bufs, args[6], 1, 2, "order", &order) < 0)
        goto done;
    if (first.n < 17 || count.n < 17 || offset.n < 17 || !aligned8(&table) ||
        ((uintptr_t)order.p & 1)) {
        bad_arg(fn, "first, count and offset need 17 items; arrays must be aligned");
        goto done;
    }
    huf_code c;
    int64_t of[18];
    length_counts(lens.p, lens.n, of);
    if (code_shape(of, &c) < 0) { bad_arg(fn, "code lengths must be <= 16"); goto done; }
    int64_t used = c.offset[16] + c.count[16];
    if (c.kraft_ok) {
        if (width > 2 * c.full) width = 2 * c.full;
        if (table.n < ((int64_t)1 << width) || order.n < used) {
            bad_arg(fn, "table or order too small");
            goto done;
        }
        Py_BEGIN_ALLOW_THREADS
        code_tables(lens.p, lens.n, 0, &c, (int)width, table.p, order.p, 0);
        Py_END_ALLOW_THREADS
    }
    memcpy(first.p, c.first, sizeof(c.first));
    memcpy(count.p, c.count, sizeof(c.count));
    memcpy(offset.p, c.offset, sizeof(c.offset));
    res = Py_BuildValue("(LiLO)", (long long)width, c.full, (long long)used,
                        c.kraft_ok ? Py_True : Py_False);
done:
    sc_release(&bufs);
    return res;
}

/* ---- decoding ------------------------------------------------------------------------- */

typedef struct {
    const uint8_t *bytes; /* the streams, followed by HUF_PAD zero bytes */
    const void *table;    /* uint64 entries, or the byte table's uint32 ones for 1-byte output */
    unsigned shift;
    int width, full;
    const int64_t *first, *count, *offset;
    const uint16_t *order;
    int64_t norder;
} huf_dec;

/* The zero bytes after the streams: a batch reads up to 8 bytes from a position that may
 * itself overshoot a stream's end by one batch (4 x 14 bits) before the overrun check. */
#define HUF_PAD 32

/* The 64 bits starting at bit p, of which the top 57 or more are the stream's (one unaligned
 * load of bytes p / 8 .. p / 8 + 7, big-endian): four look-ups of at most 14 bits. */
SC_INLINE uint64_t load_be64(const uint8_t *b) {
    uint64_t v;
    memcpy(&v, b, 8);
#if HUF_LE
    v = __builtin_bswap64(v);
#endif
    return v;
}

SC_INLINE uint64_t window(const uint8_t *bytes, int64_t p) {
    return load_be64(bytes + (p >> 3)) << (p & 7);
}

/* Write an entry's two symbols at out[o], out[o + 1] (the caller keeps o + 1 in bounds). */
SC_INLINE void put2(void *out, int64_t o, uint64_t x, int isz) {
    char *b = (char *)out + o * isz;
    if (isz == 1) { /* the byte table: both symbols in bits 8-23 */
#if HUF_LE
        uint16_t v = (uint16_t)(x >> 8);
        memcpy(b, &v, 2);
#else
        b[0] = (char)(x >> 8);
        b[1] = (char)(x >> 16);
#endif
        return;
    }
#if HUF_LE
    if (isz == 2) {
        uint32_t v = (uint32_t)(x >> 16);
        memcpy(b, &v, 4);
        return;
    }
    if (isz == 4) {
        uint64_t v = ((x >> 16) & 0xFFFF) | (x & 0xFFFF00000000);
        memcpy(b, &v, 8);
        return;
    }
#endif
    st(b, 0, isz, (x >> 16) & 0xFFFF);
    st(b, 1, isz, (x >> 32) & 0xFFFF);
}

/* One code longer than the fast table at bit *p into out[*o]. In a canonical code the codes
 * of length L are first[L] .. first[L] + count[L] - 1, and a prefix beyond them continues at
 * or after first[L + 1]: the first L whose L-bit prefix is below first[L] + count[L] is the
 * code's length. Returns 1, or 0 if no code matches (the unused patterns of an incomplete
 * code). */
SC_INLINE int long_code(const huf_dec *d, int64_t *p, int64_t *o, void *out, int isz) {
    uint64_t v = window(d->bytes, *p) >> (64 - d->full);
    for (int ln = d->width + 1; ln <= d->full; ln++) {
        int64_t c = (int64_t)(v >> (d->full - ln));
        if (c < d->first[ln] + d->count[ln]) {
            int64_t k = d->offset[ln] + c - d->first[ln];
            if (SC_UNLIKELY(k < 0 || k >= d->norder)) return 0;
            st(out, *o, isz, d->order[k]);
            *o += 1;
            *p += ln;
            return 1;
        }
    }
    return 0;
}

/* long_code for a stream whose output position is the pointer *q: 0, or -1 if no code
 * matches. Out of line: the batches call it rarely, and inlined it crowded their registers. */
static __attribute__((noinline)) int long_at(const huf_dec *d, int64_t *p, char **q, int isz) {
    int64_t o = 0;
    if (!long_code(d, p, &o, *q, isz)) return -1;
    *q += o * isz;
    return 0;
}

/* The window at bit p with a sentinel: window(p) with its last bit (the stream's bit p - (p & 7)
 * + 63, which no batch reads) set before the shift. As look-ups shift the window left by the
 * bits they use, the sentinel rises with them, so the window itself says where the stream is:
 * p moved by c bits is (p & ~7) + ctz(w) (zstd's huf fast loop keeps its position the same
 * way). The bits a batch reads: at most 4 x 14 = 56 from the top, and the sentinel sits at
 * bit 63 - (p & 7) >= 56 from the top. */
SC_INLINE uint64_t window_s(const uint8_t *bytes, int64_t p) {
    return (load_be64(bytes + (p >> 3)) | 1) << (p & 7);
}

/* `batches` batches of k (1, 2 or 4) streams in lockstep, the stream ends checked once per
 * batch. A batch: four look-ups of each stream on one window per stream, at most 8 symbols a
 * stream. A look-up: the entry x[j] for the next `width` bits of w[j], its symbols at q[j] (a
 * pointer into out), the window moved past the bits they use; the look-up chain is an index,
 * a load and a shift. The stream's position is not counted per look-up: after the batch it is
 * read off the window's sentinel (window_s), so a stream's state is three registers (window,
 * byte position, output), and four streams' fit in the registers (counting the position per
 * look-up as well spilled the windows to the stack, on the look-up chain). No branch: an
 * entry for a long code (count 0) uses no bits and writes no symbol, so the stream stands
 * still on it for the rest of the batch (at most 3 look-ups of 2 symbols before it and the
 * long code's 1 make 7), and the long code is decoded after the batch. Look-up-major order
 * puts the streams' look-up chains next to each other, so the CPU overlaps them; k is a
 * constant where this is inlined, so the arrays become registers. (In stream-major order,
 * with a branch per look-up, the same loop ran 6-12% slower.) Returns 0, -1 (no code) or -2
 * (a stream overran its end). */
SC_INLINE int decode_lanes_q(const huf_dec *d, int64_t *pos, char **qs, const int64_t *lim,
                             int64_t batches, int isz, int k) {
    const void *const table = d->table;
    const uint8_t *const bytes = d->bytes;
    const unsigned shift = d->shift;
    char *q[4];
    int64_t pb[4]; /* the bit position of the window's first byte */
    uint64_t w[4], x[4];
    for (int j = 0; j < k; j++) {
        q[j] = qs[j];
        pb[j] = pos[j] & ~(int64_t)7;
        w[j] = window_s(bytes, pos[j]);
    }
    for (; batches > 0; batches--) {
#pragma GCC unroll 4
        for (int r = 0; r < 4; r++) {
#pragma GCC unroll 4
            for (int j = 0; j < k; j++) {
                x[j] = ent(table, w[j] >> shift, isz);
                put2(q[j], 0, x[j], isz);
                w[j] <<= x[j] & 63; /* HUF_USED(x): the entry is the shift count */
                q[j] += ent_count(x[j], isz) * isz;
            }
        }
        int stand = 0, over = 0;
        int64_t p[4];
        for (int j = 0; j < k; j++) p[j] = pb[j] + __builtin_ctzll(w[j]);
        for (int j = 0; j < k; j++) stand |= !ent_count(x[j], isz);
        if (SC_UNLIKELY(stand))
            for (int j = 0; j < k; j++)
                if (!ent_count(x[j], isz) && long_at(d, &p[j], &q[j], isz)) return -1;
        for (int j = 0; j < k; j++) over |= p[j] > lim[j];
        if (over) return -2;
        for (int j = 0; j < k; j++) {
            pb[j] = p[j] & ~(int64_t)7;
            w[j] = window_s(bytes, p[j]);
        }
    }
    for (int j = 0; j < k; j++) pos[j] = pb[j] + __builtin_ctzll(w[j]), qs[j] = q[j];
    return 0;
}

/* decode_lanes_q with each lane's output as an index o[j] into out. */
SC_INLINE int decode_lanes(const huf_dec *d, int64_t *pos, int64_t *o, const int64_t *lim,
                           int64_t batches, void *out, int isz, int k) {
    char *q[4];
    for (int j = 0; j < k; j++) q[j] = (char *)out + o[j] * isz;
    int rc = decode_lanes_q(d, pos, q, lim, batches, isz, k);
    if (!rc)
        for (int j = 0; j < k; j++) o[j] = (q[j] - (char *)out) / isz;
    return rc;
}

/* One symbol at bit *p into *sym, *p moved past its code: 0, -1 (no code matches) or -2 (the
 * code ends past `limit`). */
SC_INLINE int one_symbol(const huf_dec *d, int64_t *p, int64_t limit, uint64_t *sym, int isz) {
    const uint64_t x = ent(d->table, window(d->bytes, *p) >> d->shift, isz);
    if (ent_count(x, isz)) {
        *sym = ent_first(x, isz);
        *p += ent_first_len(x, isz);
    } else {
        char one[8];
        int64_t o = 0;
        if (!long_code(d, p, &o, one, isz)) return -1;
        *sym = ld(one, 0, isz);
    }
    return *p <= limit ? 0 : -2;
}

/* out[o:e] from one stream starting at bit p, ending at bit limit: 0, -1 (no code) or -2 (the
 * stream ends early). Batches of four look-ups on one window while 8 symbols of room are
 * left, the stream end checked once per batch; then one look-up at a time, each checked. */
SC_INLINE int decode_rest(const huf_dec *d, int64_t p, int64_t limit, int64_t o, int64_t e,
                          void *out, int isz) {
    const void *table = d->table;
    const unsigned shift = d->shift;
    while (e - o >= 8) {
        int rc = decode_lanes(d, &p, &o, &limit, (e - o) / 8, out, isz, 1);
        if (rc) return rc;
    }
    while (o < e - 1) {
        uint64_t x = ent(table, window(d->bytes, p) >> shift, isz);
        put2(out, o, x, isz);
        o += ent_count(x, isz);
        p += HUF_USED(x);
        if (!ent_count(x, isz) && !long_code(d, &p, &o, out, isz)) return -1;
        if (p > limit) return -2;
    }
    if (o < e) { /* the last symbol: exactly one code, which must end by the stream's end */
        uint64_t sym;
        const int rc = one_symbol(d, &p, limit, &sym, isz);
        if (rc) return rc;
        st(out, o, isz, sym);
    }
    return 0;
}

/* Streams s (bits starts[s] .. limits[s]) into out[bounds[s]:bounds[s+1]], four at a time:
 * while every stream of the four has room for a batch (8 symbols), batches of the four in
 * lockstep (decode_lanes); the tails by decode_rest. */
SC_INLINE int decode_body(const huf_dec *d, const int64_t *starts, const int64_t *limits,
                          const int64_t *bounds, int64_t ns, void *out, int isz) {
    for (int64_t s0 = 0; s0 < ns; s0 += 4) {
        if (ns - s0 < 4) {
            for (int64_t s = s0; s < ns; s++) {
                int rc = decode_rest(d, starts[s], limits[s], bounds[s], bounds[s + 1], out, isz);
                if (rc) return rc;
            }
            continue;
        }
        int64_t p[4], o[4], e[4], lim[4];
        for (int j = 0; j < 4; j++) {
            p[j] = starts[s0 + j];
            o[j] = bounds[s0 + j];
            e[j] = bounds[s0 + j + 1];
            lim[j] = limits[s0 + j];
        }
        for (;;) {
            int64_t room = e[0] - o[0];
            for (int j = 1; j < 4; j++) room = e[j] - o[j] < room ? e[j] - o[j] : room;
            if (room < 8) break;
            int rc = decode_lanes(d, p, o, lim, room / 8, out, isz, 4);
            if (rc) return rc;
        }
        for (int j = 0; j < 4; j++) {
            int rc = decode_rest(d, p[j], lim[j], o[j], e[j], out, isz);
            if (rc) return rc;
        }
    }
    return 0;
}

static int decode_plain(const huf_dec *d, const int64_t *starts, const int64_t *limits,
                        const int64_t *bounds, int64_t ns, void *out, int isz) {
    int rc = 0;
#define CALL(k) rc = decode_body(d, starts, limits, bounds, ns, out, k)
    SC_BY_SIZE(isz, CALL)
    return rc;
}

#if SC_X86
/* The same code compiled for BMI2: shifts by a register other than CL (shlx, shrx), which
 * the look-up chain (index = w >> shift, w <<= bits used) is made of. */
SC_TARGET("bmi,bmi2") static int decode_bmi2(const huf_dec *d, const int64_t *starts,
                                         const int64_t *limits, const int64_t *bounds,
                                         int64_t ns, void *out, int isz) {
    int rc = 0;
    SC_BY_SIZE(isz, CALL)
    return rc;
}
#endif
#undef CALL

/* Whether the BMI2 decoder runs: at SIMD level avx2 (every AVX2 CPU this targets has BMI2,
 * checked anyway); the plain one is its scalar twin. Read before the GIL is released. */
static int use_bmi2(void) {
#if SC_X86
    static int cpu = -1;
    if (cpu < 0) {
        __builtin_cpu_init();
        cpu = __builtin_cpu_supports("bmi2") ? 1 : 0;
    }
    return cpu && sc_simd >= SC_SIMD_AVX2;
#else
    return 0;
#endif
}

static int decode_any(const huf_dec *d, const int64_t *starts, const int64_t *limits,
                      const int64_t *bounds, int64_t ns, void *out, int isz, int bmi2) {
#if SC_X86
    if (bmi2) return decode_bmi2(d, starts, limits, bounds, ns, out, isz);
#endif
    return decode_plain(d, starts, limits, bounds, ns, out, isz);
}

/* Streams s0 and s0 + 1 in lockstep (a batch of each per round), then their tails: what a
 * thread of a threaded decode runs on its half of a four-stream block (decode_split). Two
 * independent look-up chains instead of four: each thread runs a little slower than the
 * one-thread decoder per symbol, but two run at once. */
SC_INLINE int decode_two(const huf_dec *d, const int64_t *starts, const int64_t *limits,
                         const int64_t *bounds, void *out, int isz) {
    int64_t p[2] = {starts[0], starts[1]}, o[2] = {bounds[0], bounds[1]};
    const int64_t e0 = bounds[1], e1 = bounds[2], lim[2] = {limits[0], limits[1]};
    for (;;) {
        int64_t room = e0 - o[0] < e1 - o[1] ? e0 - o[0] : e1 - o[1];
        if (room < 8) break;
        int rc = decode_lanes(d, p, o, lim, room / 8, out, isz, 2);
        if (rc) return rc;
    }
    int rc = decode_rest(d, p[0], lim[0], o[0], e0, out, isz);
    return rc ? rc : decode_rest(d, p[1], lim[1], o[1], e1, out, isz);
}

static int decode_two_plain(const huf_dec *d, const int64_t *starts, const int64_t *limits,
                            const int64_t *bounds, void *out, int isz) {
    int rc = 0;
#define CALL(k) rc = decode_two(d, starts, limits, bounds, out, k)
    SC_BY_SIZE(isz, CALL)
    return rc;
}

#if SC_X86
SC_TARGET("bmi,bmi2") static int decode_two_bmi2(const huf_dec *d, const int64_t *starts,
                                             const int64_t *limits, const int64_t *bounds,
                                             void *out, int isz) {
    int rc = 0;
    SC_BY_SIZE(isz, CALL)
    return rc;
}
#endif
#undef CALL

/* ---- a thread's two streams as four lanes: each also from its middle ------------------ */

/* A thread of a two-thread decode has two of a section's four streams: two look-up chains,
 * where one thread runs four. So each stream is also decoded from the middle of its bits
 * (lane B, into a buffer), while lane A decodes it from its start; the four lanes run in
 * lockstep. A Huffman code read from a bit that is not a code's start soon falls back into
 * step with the codes ("resynchronises"): B's first SPEC_K symbols are decoded one at a time
 * and the bit position after each recorded; A, once near the middle, goes on one symbol at a
 * time until its position is one of those, and from there B's symbols are the stream's. A
 * stream whose A never meets a recorded position (a code that does not resynchronise there,
 * such as one of codes all the same length) goes on from A's position as one lane. The lanes'
 * budgets keep A before the middle and B within its stream and its buffer, so neither reads
 * past what a batch may; anything refused along the way (B's symbols before it is in step are
 * not the stream's) sends the two streams to decode_two, whose answer is the answer. */
#define SPEC_K 64

/* Batches lane j may run: A (even j) stays at most `stop[j]` bits and within its output, B
 * (odd) within its stream and its buffer; a batch moves at most 56 bits and 8 symbols. */
SC_INLINE int64_t spec_budget(const int64_t *p, char *const *q, const int64_t *stop,
                              char *const *end, int j, int isz) {
    const int64_t bits = (stop[j] - p[j]) / 56, room = (end[j] - q[j]) / isz / 8;
    const int64_t b = bits < room ? bits : room;
    return b > 0 ? b : 0;
}

/* Streams starts/limits/bounds[0..1] as four lanes, B's symbols in tmp (cap items a stream):
 * 0, or 1 if the streams must go to decode_two. */
SC_INLINE int spec_two(const huf_dec *d, const int64_t *starts, const int64_t *limits,
                       const int64_t *bounds, void *out, int isz, char *tmp, int64_t cap) {
    int64_t rec[2][SPEC_K], p[4], stop[4], lim[4];
    char *q[4], *end[4];
    for (int s = 0; s < 2; s++) {
        char *buf = tmp + s * cap * isz;
        int64_t m = starts[s] + (limits[s] - starts[s]) / 2;
        for (int k = 0; k < SPEC_K; k++) {
            uint64_t sym;
            if (one_symbol(d, &m, limits[s], &sym, isz)) return 1;
            st(buf, k, isz, sym);
            rec[s][k] = m;
        }
        p[2 * s] = starts[s], q[2 * s] = (char *)out + bounds[s] * isz;
        stop[2 * s] = rec[s][0], end[2 * s] = (char *)out + bounds[s + 1] * isz;
        p[2 * s + 1] = m, q[2 * s + 1] = buf + SPEC_K * isz;
        stop[2 * s + 1] = limits[s], end[2 * s + 1] = buf + cap * isz;
        lim[2 * s] = lim[2 * s + 1] = limits[s];
    }
    for (;;) { /* the four lanes in lockstep, then each alone to the end of its budget */
        int64_t b = spec_budget(p, q, stop, end, 0, isz);
        for (int j = 1; j < 4; j++) {
            const int64_t bj = spec_budget(p, q, stop, end, j, isz);
            b = bj < b ? bj : b;
        }
        if (b < 1) break;
        if (decode_lanes_q(d, p, q, lim, b, isz, 4)) return 1;
    }
    for (int j = 0; j < 4; j++)
        for (int64_t b; (b = spec_budget(p, q, stop, end, j, isz)) > 0;)
            if (decode_lanes_q(d, p + j, q + j, lim + j, b, isz, 1)) return 1;
    for (int s = 0; s < 2; s++) { /* A into step with B, then B's symbols */
        int64_t pa = p[2 * s];
        char *qa = q[2 * s], *const ea = end[2 * s], *const buf = tmp + s * cap * isz;
        int k = 0;
        for (;;) {
            while (k < SPEC_K && rec[s][k] < pa) k++;
            if (k == SPEC_K || qa == ea || rec[s][k] == pa) break;
            uint64_t sym;
            if (one_symbol(d, &pa, limits[s], &sym, isz)) return 1;
            st(qa, 0, isz, sym);
            qa += isz;
        }
        if (k < SPEC_K && qa < ea) { /* (the loop stopped on a match) */
            const int64_t have = (q[2 * s + 1] - buf) / isz - (k + 1), need = (ea - qa) / isz;
            const int64_t take = have < need ? have : need;
            memcpy(qa, buf + (k + 1) * isz, (size_t)(take * isz));
            qa += take * isz;
            pa = p[2 * s + 1]; /* where B stopped: only read if B fell short */
        }
        if (qa < ea && decode_rest(d, pa, limits[s], (qa - (char *)out) / isz, bounds[s + 1], out,
                                   isz))
            return 1;
    }
    return 0;
}

static int spec_two_plain(const huf_dec *d, const int64_t *starts, const int64_t *limits,
                          const int64_t *bounds, void *out, int isz, char *tmp, int64_t cap) {
    int rc = 0;
#define CALL(k) rc = spec_two(d, starts, limits, bounds, out, k, tmp, cap)
    SC_BY_SIZE(isz, CALL)
    return rc;
}

#if SC_X86
SC_TARGET("bmi,bmi2") static int spec_two_bmi2(const huf_dec *d, const int64_t *starts,
                                              const int64_t *limits, const int64_t *bounds,
                                              void *out, int isz, char *tmp, int64_t cap) {
    int rc = 0;
    SC_BY_SIZE(isz, CALL)
    return rc;
}
#endif
#undef CALL

/* Streams from this many symbols take the four lanes (spec_two) on two threads. */
#define SPEC_MIN 65536

/* spec_two's buffers: one kept between calls (up to 32 MiB, sc_kept), lent to one decode at a
 * time; a decode that finds it lent, or needs more, allocates its own (a fresh buffer pays
 * its page faults, about 0.1 ms a MiB here). */
static sc_kept spec_kept = SC_KEPT((size_t)32 << 20);

/* A threaded decode of one coded section: part i copies its own streams' bytes into the
 * padded buffer, then (after every part has) decodes them. With two parts and four streams
 * each part takes two streams, as four lanes from their starts and middles (spec_two) when
 * they have SPEC_MIN symbols, else (or if that refuses) in lockstep (decode_two); with four
 * parts, one stream each. */
typedef struct {
    const huf_dec *d;
    const uint8_t *data;
    uint8_t *bytes;
    const int64_t *starts, *bounds;
    int64_t ns, per;
    void *out;
    int isz, bmi2;
    char *tmp;   /* spec_two's buffers (two streams a part), or NULL: decode_two */
    int64_t cap; /* items a stream */
    int rc[SC_MAX_THREADS];
} huf_split;

/* Part i of the copy: its streams' bytes. All of it is done before any part decodes: a batch
 * near a stream's end reads the next stream's first bytes (and ignores their bits, or the
 * overrun check refuses the stream), which another part would still be writing. */
static void copy_part(void *ctx, int i) {
    huf_split *t = ctx;
    int64_t from = t->starts[i * t->per] / 8, to = t->starts[(i + 1) * t->per] / 8;
    memcpy(t->bytes + from, t->data + from, (size_t)(to - from));
}

static void decode_part(void *ctx, int i) {
    huf_split *t = ctx;
    int64_t s0 = i * t->per;
    const int64_t *st_ = t->starts + s0, *li = t->starts + s0 + 1, *bo = t->bounds + s0;
    int rc;
    if (t->per == 2) {
        rc = 1;
        if (t->tmp) {
            char *tmp = t->tmp + 2 * i * t->cap * t->isz;
#if SC_X86
            if (t->bmi2) rc = spec_two_bmi2(t->d, st_, li, bo, t->out, t->isz, tmp, t->cap);
            else
#endif
            rc = spec_two_plain(t->d, st_, li, bo, t->out, t->isz, tmp, t->cap);
        }
        if (rc) {
#if SC_X86
            if (t->bmi2) rc = decode_two_bmi2(t->d, st_, li, bo, t->out, t->isz);
            else
#endif
            rc = decode_two_plain(t->d, st_, li, bo, t->out, t->isz);
        }
    } else {
        rc = decode_any(t->d, st_, li, bo, t->per, t->out, t->isz, t->bmi2);
    }
    t->rc[i] = rc;
}

/* The first failure in stream order, or 0. (The Python layer re-reads a refused section with
 * its checked reader for the message, so which failure is reported does not matter.) */
static int decode_split(const huf_dec *d, const uint8_t *data, uint8_t *bytes,
                        const int64_t *starts, const int64_t *bounds, int64_t ns, void *out,
                        int isz, int bmi2, int parts) {
    huf_split t = {d, data, bytes, starts, bounds, ns, ns / parts, out, isz, bmi2, NULL, 0, {0}};
    int kept = 0;
    if (t.per == 2) { /* B's buffers: a little over half a stream each (spec_two) */
        int64_t most = 0;
        for (int64_t s = 0; s < ns; s++)
            if (bounds[s + 1] - bounds[s] > most) most = bounds[s + 1] - bounds[s];
        t.cap = most / 2 + most / 16 + SPEC_K + 16;
        if (most >= SPEC_MIN) t.tmp = sc_borrow(&spec_kept, (size_t)(ns * t.cap * isz), &kept);
    }
    sc_parallel(parts, copy_part, &t);
    sc_parallel(parts, decode_part, &t);
    if (t.tmp) sc_giveback(&spec_kept, t.tmp, kept);
    for (int i = 0; i < parts; i++)
        if (t.rc[i]) return t.rc[i];
    return 0;
}

/* How many parts a section of `count` symbols in `ns` streams is decoded in: one unless more
 * threads are allowed, the streams split evenly (2 or 4 parts of a four-stream section) and
 * each part has enough symbols to pay for a thread (~30 us to start and join, against
 * ~1 ns a symbol: 64K symbols a part). */
static int decode_parts_for(int64_t count, int64_t ns, int threads) {
    if (threads <= 1 || ns < 2 || count < 2 * 65536) return 1;
    int parts = threads >= 4 && ns % 4 == 0 && count >= 4 * 65536 ? 4 : 2;
    return ns % parts ? 1 : parts;
}

/* decode_streams(bytes u8, starts, limits, bounds (i64), table u64, width, first, count,
 * offset (i64 x 17), order u16, full, out (w)) -> 0, -1 or -2. Everything is checked on entry:
 * the tables may come from anywhere, the bytes must have HUF_PAD (32) padding bytes after
 * the last limit (what a batch may read past a stream's end before its check). */
static PyObject *huf_decode_streams(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "decode_streams";
    if (sc_nargs(nargs, 12, fn) < 0) return NULL;
    int64_t width, full;
    if (sc_i64(args[5], &width) < 0 || sc_i64(args[10], &full) < 0) return NULL;
    if (width < 1 || width > HUF_MAX_WIDTH || full < 1 || full > 16)
        return bad_arg(fn, "width must be 1..14 and full 1..16");
    sc_bufs bufs = {.n = 0};
    sc_arr bytes, starts, limits, bounds, table, first, count, offset, order, out;
    PyObject *res = NULL;
    if (sc_get(&bufs, args[0], 0, 1, "bytes", &bytes) < 0 ||
        sc_get(&bufs, args[1], 0, 8, "starts", &starts) < 0 ||
        sc_get(&bufs, args[2], 0, 8, "limits", &limits) < 0 ||
        sc_get(&bufs, args[3], 0, 8, "bounds", &bounds) < 0 ||
        sc_get(&bufs, args[4], 0, 8, "table", &table) < 0 ||
        sc_get(&bufs, args[6], 0, 8, "first", &first) < 0 ||
        sc_get(&bufs, args[7], 0, 8, "count", &count) < 0 ||
        sc_get(&bufs, args[8], 0, 8, "offset", &offset) < 0 ||
        sc_get(&bufs, args[9], 0, 2, "order", &order) < 0 ||
        sc_get(&bufs, args[11], 1, 0, "out", &out) < 0)
        goto done;
    if (!item_size_ok(out.itemsize)) { bad_arg(fn, "out must have 1, 2, 4 or 8-byte items"); goto done; }
    if (!aligned8(&starts) || !aligned8(&limits) || !aligned8(&bounds) ||
        !aligned8(&table) || !aligned8(&first) || !aligned8(&count) || !aligned8(&offset) ||
        ((uintptr_t)order.p & 1)) {
        bad_arg(fn, "arrays must be aligned");
        goto done;
    }
    int64_t ns = bounds.n - 1;
    if (ns < 0 || starts.n < ns || limits.n < ns || first.n < 17 || count.n < 17 || offset.n < 17 ||
        table.n < ((int64_t)1 << width)) {
        bad_arg(fn, "array sizes disagree");
        goto done;
    }
    const int64_t *st_ = starts.p, *li = limits.p, *bo = bounds.p;
    int64_t maxbit = 8 * (bytes.n - HUF_PAD);
    for (int64_t s = 0; s < ns; s++)
        if (st_[s] < 0 || st_[s] > li[s] || li[s] > maxbit) {
            bad_arg(fn, "stream bits out of range (the bytes need 32 padding bytes)");
            goto done;
        }
    for (int64_t s = 0; s <= ns; s++)
        if (bo[s] < 0 || bo[s] > out.n || (s && bo[s] < bo[s - 1])) { bad_arg(fn, "bounds out of range"); goto done; }
    /* the entries' counts and bit counts bound how far a batch moves */
    const uint64_t *t = table.p;
    for (int64_t i = 0; i < ((int64_t)1 << width); i++) {
        uint64_t n = HUF_USED(t[i]), c = HUF_COUNT(t[i]), f = HUF_FIRST_LEN(t[i]);
        if (c > 2 || n > (uint64_t)width || f > n || (!c && n) || (c && !f)) {
            bad_arg(fn, "invalid table entry");
            goto done;
        }
    }
    /* 1-byte output decodes with the byte table (HUF_E8): made from the entries given */
    uint32_t *t8 = NULL;
    if (out.itemsize == 1) {
        t8 = malloc(((size_t)1 << width) * sizeof(uint32_t));
        if (!t8) { PyErr_NoMemory(); goto done; }
        for (int64_t i = 0; i < ((int64_t)1 << width); i++)
            t8[i] = HUF_E8(HUF_USED(t[i]), HUF_COUNT(t[i]), HUF_FIRST_LEN(t[i]), (t[i] >> 16) & 0xFF,
                           (t[i] >> 32) & 0xFF);
    }
    huf_dec d = {bytes.p, t8 ? (const void *)t8 : table.p, (unsigned)(64 - width), (int)width,
                 (int)full, first.p, count.p, offset.p, order.p, order.n};
    int rc, bmi2 = use_bmi2();
    Py_BEGIN_ALLOW_THREADS
    rc = decode_any(&d, st_, li, bo, ns, out.p, (int)out.itemsize, bmi2);
    Py_END_ALLOW_THREADS
    free(t8);
    res = PyLong_FromLong(rc);
done:
    sc_release(&bufs);
    return res;
}

enum { BAD_CODEBOOK = -3, BAD_KRAFT = -4, NO_MEMORY = -5 };

SC_INLINE uint64_t le(const uint8_t *b, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)b[i] << (8 * i);
    return v;
}

/* The codebook (checked as _huffman._parse_codebook checks it, in the same order), the
 * tables, the byte swap and the decode: 0, -1, -2, BAD_CODEBOOK, BAD_KRAFT or NO_MEMORY. */
static int decode_coded_impl(const uint8_t *book, int64_t n, const uint8_t *data, int64_t dsize,
                             int64_t count, int64_t alphabet, int64_t nstreams,
                             int64_t max_length, int64_t min_fast, int64_t max_fast, void *out,
                             int isz, int bmi2, int threads) {
    if (n < 2) return BAD_CODEBOOK;
    const int fmt = book[0];
    if (fmt < 2 && n < 5) return BAD_CODEBOOK;
    int64_t used, end, at, lo = 0, hi = 0; /* symbols lo..hi-1 have codes */
    uint64_t v1, v2;
    uint8_t *lengths = calloc((size_t)alphabet, 1);
    void *table = NULL;
    uint8_t *bytes = NULL;
    uint16_t *order = NULL;
    int rc = BAD_CODEBOOK;
    if (!lengths) return NO_MEMORY;
    if (fmt == 0 || fmt == 2) { /* dense: first, span, the span's 4-bit lengths */
        if (fmt == 0) {
            if (n < 9) goto finish;
            v1 = le(book + 1, 4), v2 = le(book + 5, 4), at = 9;
        } else {
            at = 1;
            if (get_varint(book, n, &at, &v1) < 0 || get_varint(book, n, &at, &v2) < 0)
                goto finish;
        }
        if (v1 > (uint64_t)alphabet || v2 > (uint64_t)alphabet - v1) goto finish;
        const int64_t first = (int64_t)v1;
        used = (int64_t)v2;
        end = at + (used + 1) / 2;
        if (n < end) goto finish;
        for (int64_t i = 0; i < used; i++)
            lengths[first + i] = (book[at + (i >> 1)] >> (4 * (i & 1))) & 15;
        lo = first, hi = first + used;
    } else if (fmt == 1 || fmt == 3) { /* sparse: used, then (symbol u16, length u8) pairs */
        if (fmt == 1) {
            v1 = le(book + 1, 4), at = 5;
        } else {
            at = 1;
            if (get_varint(book, n, &at, &v1) < 0) goto finish;
        }
        if (v1 > (uint64_t)alphabet) goto finish;
        used = (int64_t)v1;
        end = at + 3 * used;
        if (n < end) goto finish;
        int64_t prev = -1;
        for (int64_t i = 0; i < used; i++) {
            int64_t sym = (int64_t)book[at + 3 * i] | ((int64_t)book[at + 1 + 3 * i] << 8);
            if (sym <= prev || sym >= alphabet) goto finish;
            lengths[sym] = book[at + 2 + 3 * i];
            prev = sym;
        }
        lo = used ? (int64_t)book[at] | ((int64_t)book[at + 1] << 8) : 0, hi = prev + 1;
    } else {
        goto finish;
    }
    /* the passes below run over symbols lo..hi-1 only: a 12-bit top field's codebook lists
     * a few hundred of 4096, and a small frame's decode was mostly passes over the rest */
    const uint8_t *ln = lengths + lo;
    const int64_t span = hi - lo;
    int64_t of[18];
    length_counts(ln, span, of);
    int longest = 0;
    for (int l = 1; l < 18; l++)
        if (of[l]) longest = l; /* 17: some length above 16 */
    if (longest > max_length) goto finish;
    int64_t ns, starts[65]; /* each stream's first bit */
    starts[0] = 0;
    if (fmt >= 2) { /* the streams' words but the last's: the last is the rest of the data */
        ns = nstreams;
        if (ns < 1 || ns > 64) goto finish;
        at = end;
        for (int64_t s = 0; s + 1 < ns; s++) {
            if (get_varint(book, n, &at, &v1) < 0 || v1 > (uint64_t)(dsize - starts[s] / 8) / 8)
                goto finish;
            starts[s + 1] = starts[s] + (int64_t)v1 * 64;
        }
        if (at != n || (dsize - starts[ns - 1] / 8) % 8) goto finish;
        starts[ns] = 8 * dsize;
    } else {
        if (n < end + 1) goto finish;
        ns = book[end];
        if (ns < 1 || ns > 64 || n != end + 1 + 8 * ns) goto finish;
        for (int64_t s = 0; s < ns; s++) {
            uint64_t size = le(book + end + 1 + 8 * s, 8);
            if (size % 8 || size > (uint64_t)(dsize - starts[s] / 8)) goto finish;
            starts[s + 1] = starts[s] + (int64_t)size * 8;
        }
        if (starts[ns] != 8 * dsize || ns != nstreams) goto finish;
    }
    rc = 0;
    if (count == 0) goto finish;
    rc = BAD_CODEBOOK;
    if (longest == 0) goto finish;
    int64_t width = coded_width(of, count, min_fast, max_fast, isz == 1);
    huf_code c;
    code_shape(of, &c); /* lengths <= max_length <= 16: cannot fail */
    rc = BAD_KRAFT;
    if (!c.kraft_ok) goto finish;
    if (width > 2 * c.full) width = 2 * c.full;
    rc = NO_MEMORY;
    int64_t nused = c.offset[16] + c.count[16];
    table = malloc(((size_t)1 << width) * (isz == 1 ? sizeof(uint32_t) : sizeof(uint64_t)));
    order = malloc((size_t)nused * sizeof(uint16_t));
    bytes = malloc((size_t)dsize + HUF_PAD);
    if (!table || !order || !bytes) goto finish;
    code_tables(ln, span, lo, &c, (int)width, table, order, isz == 1);
    memset(bytes + dsize, 0, HUF_PAD);
    int64_t bounds[65];
    for (int64_t s = 0; s <= ns; s++) bounds[s] = s * count / ns;
    huf_dec d = {bytes, table, (unsigned)(64 - width), (int)width, c.full, c.first,
                 c.count, c.offset, order, nused};
    int parts = decode_parts_for(count, ns, threads);
    if (parts > 1) {
        rc = decode_split(&d, data, bytes, starts, bounds, ns, out, isz, bmi2, parts);
    } else {
        memcpy(bytes, data, (size_t)dsize);
        rc = decode_any(&d, starts, starts + 1, bounds, ns, out, isz, bmi2);
    }
finish:
    free(lengths);
    free(table);
    free(order);
    free(bytes);
    return rc;
}

/* decode_coded(book u8, data u8, count, alphabet, nstreams, max_length, min_fast, max_fast,
 * out (w)[, threads]) -> 0, -1, -2, BAD_CODEBOOK, BAD_KRAFT. */
static PyObject *huf_decode_coded(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "decode_coded";
    int64_t threads = 1;
    if (nargs == 10) {
        if (sc_i64(args[9], &threads) < 0) return NULL;
        if (threads < 1) return bad_arg(fn, "threads must be >= 1");
        if (threads > SC_MAX_THREADS) threads = SC_MAX_THREADS;
        nargs = 9;
    }
    if (sc_nargs(nargs, 9, fn) < 0) return NULL;
    int64_t v[6]; /* count, alphabet, nstreams, max_length, min_fast, max_fast */
    if (ints(args, 2, 6, v) < 0) return NULL;
    if (v[0] < 0 || v[1] < 1 || v[1] > (1 << 16) || v[3] < 0 || v[3] > 16 || v[4] < 1 ||
        v[5] > HUF_MAX_WIDTH || v[4] > v[5])
        return bad_arg(fn, "count >= 0, alphabet 1..65536, max_length <= 16 and "
                           "1 <= min_fast <= max_fast <= 14 required");
    sc_bufs bufs = {.n = 0};
    sc_arr book, data, out;
    PyObject *res = NULL;
    if (sc_get(&bufs, args[0], 0, 1, "book", &book) < 0 ||
        sc_get(&bufs, args[1], 0, 1, "data", &data) < 0 ||
        sc_get(&bufs, args[8], 1, 0, "out", &out) < 0)
        goto done;
    if (!item_size_ok(out.itemsize)) { bad_arg(fn, "out must have 1, 2, 4 or 8-byte items"); goto done; }
    if (out.n < v[0]) { bad_arg(fn, "out is smaller than count"); goto done; }
    int rc, bmi2 = use_bmi2();
    Py_BEGIN_ALLOW_THREADS
    rc = decode_coded_impl(book.p, book.n, data.p, data.n, v[0], v[1], v[2], v[3], v[4], v[5],
                           out.p, (int)out.itemsize, bmi2, (int)threads);
    Py_END_ALLOW_THREADS
    if (rc == NO_MEMORY) PyErr_NoMemory();
    else res = PyLong_FromLong(rc);
done:
    sc_release(&bufs);
    return res;
}

/* ---- histograms ----------------------------------------------------------------------- */

/* Byte counts added to counts[0..alphabet) (every byte below alphabet, checked), in eight
 * tables of uint32 that take the bytes of each 8-byte word in turn: one counter incremented
 * back to back waits on its own store, which a mask of mostly 0xFF bytes (a dense tensor's
 * bitmask) does at every byte. 18,432 0xFF bytes: 44 -> 11 us a call; 147,456 geometric
 * bytes: 117 -> 52 (docs/benchmarks.md, issue 13's thirty-first pass). Chunks of at most
 * 2**30 bytes keep the tables' counts below 2**32. */
SC_INLINE void hist_bytes(const void *sym, int64_t n, int64_t alphabet, int64_t *counts) {
    uint32_t t[8][256];
    const uint8_t *b = sym;
    while (n > 0) {
        const int64_t m = n < ((int64_t)1 << 30) ? n : ((int64_t)1 << 30);
        memset(t, 0, sizeof(t));
        int64_t i = 0;
        for (; i + 8 <= m; i += 8) {
            uint64_t w;
            memcpy(&w, b + i, 8);
            for (int k = 0; k < 8; k++) t[k][(w >> (8 * k)) & 0xFF]++;
        }
        for (; i < m; i++) t[0][b[i]]++;
        for (int64_t k = 0; k < alphabet && k < 256; k++) {
            int64_t sum = 0;
            for (int j = 0; j < 8; j++) sum += t[j][k];
            counts[k] += sum;
        }
        b += m;
        n -= m;
    }
}

/* histogram(symbols, alphabet, counts i64 (w)) -> 0, or -1 for a symbol >= alphabet (counted
 * up to there; nothing counted without counts). */
SC_INLINE int histogram_body(const void *sym, int64_t n, int64_t alphabet, int64_t *counts,
                             int isz) {
    if (isz == 8 || alphabet < ((int64_t)1 << (8 * isz))) {
        /* the largest symbol first (a loop the compiler vectorises), then count unchecked */
        uint64_t top = 0;
        for (int64_t i = 0; i < n; i++) {
            uint64_t s = ld(sym, i, isz);
            top = s > top ? s : top;
        }
        if (n && top >= (uint64_t)alphabet) return -1;
    }
    if (!counts) return 0; /* the check alone */
    if (isz == 1 && n >= 64) { /* bytes: eight tables, so that repeats do not wait in line */
        hist_bytes(sym, n, alphabet, counts);
        return 0;
    }
    for (int64_t i = 0; i < n; i++) counts[ld(sym, i, isz)]++;
    return 0;
}

#define CALL(k) rc = histogram_body(sym, n, alphabet, counts, k)
HUF_TWINS(histogram_k, (const void *sym, int64_t n, int64_t alphabet, int64_t *counts, int isz),
          { int rc = 0; SC_BY_SIZE(isz, CALL) return rc; })
#undef CALL

/* A table of 2**16 counts' blocks of 64 bins (see "tables of 2**16 counts" below). */
#define BLK_SHIFT 6
#define BLK_COUNT (65536 >> BLK_SHIFT)

#if SC_X86
/* 16-bit symbols with many zeros (a pruned tensor's patterns: half of a 2:4 tensor's). One
 * counter incremented back to back waits on its own store, so the scalar loop spends a store's
 * latency on each zero (2:4 float16, 148,507 patterns: ~125 us against ~80 dense). Here each
 * block of HIST_BLOCK symbols has its zeros counted in a vector first; a block more than a
 * quarter zeros has its other symbols packed into a buffer (eight at a time, a byte shuffle
 * chosen by the lanes that are not zero) and counted from there, the zeros added once (~64
 * us; below a quarter the packing cost more than it saved). */
#define HIST_BLOCK 512
/* lanes not zero (a bit each) -> the shuffle packing them (read by aligned loads) */
static uint8_t hist_pack[256][16] __attribute__((aligned(16)));
static void hist_pack_init(void) {
    for (int m = 0; m < 256; m++) {
        int k = 0;
        for (int j = 0; j < 8; j++)
            if (m >> j & 1) {
                hist_pack[m][2 * k] = (uint8_t)(2 * j);
                hist_pack[m][2 * k + 1] = (uint8_t)(2 * j + 1);
                k++;
            }
        for (; k < 8; k++) hist_pack[m][2 * k] = hist_pack[m][2 * k + 1] = 0x80;
    }
}

/* The table histogram16_sparse reads, built once whoever asks first. */
static void hist_pack_ready(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, hist_pack_init);
}

/* After the alphabet check; counts has room for every symbol. With blocks (a table of 2**16
 * counts' map of its 64-bin blocks in use), each symbol's block is marked too, in the same
 * loops (a store that waits on nothing). */
SC_TARGET("avx2,bmi2,popcnt") static inline __attribute__((always_inline)) void
histogram16_sparse_body(const uint16_t *sym, int64_t n, int64_t *counts, uint8_t *blocks) {
    uint16_t buf[HIST_BLOCK];
    const __m128i zero = _mm_setzero_si128();
    int64_t zeros = 0, i = 0;
    while (n - i >= 8) {
        const int64_t end = i + ((n - i < HIST_BLOCK ? n - i : HIST_BLOCK) & ~(int64_t)7);
        __m128i acc = zero; /* at most HIST_BLOCK / 8 a lane: no overflow */
        for (int64_t j = i; j < end; j += 8)
            acc = _mm_sub_epi16(acc, _mm_cmpeq_epi16(_mm_loadu_si128((const void *)(sym + j)), zero));
        acc = _mm_madd_epi16(acc, _mm_set1_epi16(1));
        acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0x4e));
        acc = _mm_add_epi32(acc, _mm_shuffle_epi32(acc, 0xb1));
        const int64_t z = _mm_cvtsi128_si32(acc);
        if (4 * z <= end - i) {
            for (; i < end; i++) {
                counts[sym[i]]++;
                if (blocks) blocks[sym[i] >> BLK_SHIFT] = 1;
            }
            continue;
        }
        int64_t k = 0;
        for (; i < end; i += 8) {
            const __m128i v = _mm_loadu_si128((const void *)(sym + i));
            const unsigned eq = (unsigned)_mm_movemask_epi8(
                _mm_packs_epi16(_mm_cmpeq_epi16(v, zero), zero));
            const unsigned kept = ~eq & 0xffu;
            _mm_storeu_si128((void *)(buf + k), /* k <= HIST_BLOCK - 8 here */
                             _mm_shuffle_epi8(v, _mm_load_si128((const void *)hist_pack[kept])));
            k += __builtin_popcount(kept);
        }
        for (int64_t j = 0; j < k; j++) {
            counts[buf[j]]++;
            if (blocks) blocks[buf[j] >> BLK_SHIFT] = 1;
        }
        zeros += z;
    }
    for (; i < n; i++) {
        counts[sym[i]]++;
        if (blocks) blocks[sym[i] >> BLK_SHIFT] = 1;
    }
    counts[0] += zeros;
    if (blocks && zeros) blocks[0] = 1;
}

SC_TARGET("avx2,bmi2,popcnt") static void histogram16_sparse(const uint16_t *sym, int64_t n,
                                                             int64_t *counts) {
    histogram16_sparse_body(sym, n, counts, NULL);
}

SC_TARGET("avx2,bmi2,popcnt") static void histogram16_sparse_blocks(const uint16_t *sym,
                                                                    int64_t n, int64_t *counts,
                                                                    uint8_t *blocks) {
    histogram16_sparse_body(sym, n, counts, blocks);
}
#endif

/* entropy_bits(counts i64) -> (bits, used): the order-0 entropy of the counts in bits,
 * sum c * log2(total / c) over the counts that are not 0, and how many those are. c log2 c of
 * small counts comes from a table. */
#define ENT_TAB 4096
static double ent_tab[ENT_TAB];
static void ent_init(void) {
    for (int c = 1; c < ENT_TAB; c++) ent_tab[c] = c * log2((double)c);
}

/* The sums of entropy_bits over c[0..n): count i adds c log2 c to sum i % 4 (four sums, so
 * that the adds do not wait on each other), and to the total, the used count and the OR that
 * shows a negative count. Runs of eight zero counts are skipped at once (adding zero changes no
 * sum, so which runs are skipped does not change the result); counts below the table (zero
 * among them: ent_tab[0] is 0) take no branch. The sums live in locals of each scan (in a
 * struct behind a pointer, which the counts might alias, every add went through memory). */
typedef struct {
    double s[4];
    int64_t used, bad;
    uint64_t total; /* unsigned: garbage counts wrap, never overflow */
} ent_sums;

#define ENT_ADD(acc, k)                                                                          \
    do {                                                                                         \
        const int64_t k_ = (k);                                                                  \
        bad |= k_;                                                                               \
        total += (uint64_t)k_;                                                                   \
        used += k_ != 0;                                                                         \
        acc += (uint64_t)k_ < ENT_TAB ? ent_tab[k_] : k_ > 0 ? (double)k_ * log2((double)k_) : 0;\
    } while (0)
#define ENT_ADD8(g)                                                                              \
    do {                                                                                         \
        ENT_ADD(s0, (g)[0]); ENT_ADD(s1, (g)[1]); ENT_ADD(s2, (g)[2]); ENT_ADD(s3, (g)[3]);      \
        ENT_ADD(s0, (g)[4]); ENT_ADD(s1, (g)[5]); ENT_ADD(s2, (g)[6]); ENT_ADD(s3, (g)[7]);      \
    } while (0)
#define ENT_SCAN(SKIP16)                                                                         \
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;                                              \
    int64_t used = 0, bad = 0, i = 0;                                                            \
    uint64_t total = 0;                                                                          \
    SKIP16                                                                                       \
    for (; i + 8 <= n; i += 8) {                                                                 \
        const int64_t *g = c + i;                                                                \
        if (!(g[0] | g[1] | g[2] | g[3] | g[4] | g[5] | g[6] | g[7])) continue;                  \
        ENT_ADD8(g);                                                                             \
    }                                                                                            \
    for (; i < n; i++) ENT_ADD(s0, c[i]); /* fewer than 8 left (i a multiple of 8) */            \
    *e = (ent_sums){{s0, s1, s2, s3}, used, bad, total};

static void ent_scan_plain(const int64_t *c, int64_t n, ent_sums *e) { ENT_SCAN() }

#if SC_X86
/* ent_scan_plain with the zero test on 16 counts at a time in two vector ORs: a 2**16-bin
 * table of 16-bit patterns (a planner's floors) is mostly zero runs, where the scalar test
 * took 12.7 us on an all-zero table. */
SC_TARGET("avx2") static void ent_scan_avx2(const int64_t *c, int64_t n, ent_sums *e) {
    ENT_SCAN(
    for (; i + 16 <= n; i += 16) {
        const __m256i a = _mm256_or_si256(_mm256_loadu_si256((const void *)(c + i)),
                                          _mm256_loadu_si256((const void *)(c + i + 4)));
        const __m256i b = _mm256_or_si256(_mm256_loadu_si256((const void *)(c + i + 8)),
                                          _mm256_loadu_si256((const void *)(c + i + 12)));
        if (!_mm256_testz_si256(a, a)) ENT_ADD8(c + i);
        if (!_mm256_testz_si256(b, b)) ENT_ADD8(c + i + 8);
    })
}
#endif
#undef ENT_SCAN
#undef ENT_ADD8
#undef ENT_ADD

/* The table ent_scan reads, built once whoever asks first. */
static void ent_ready(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, ent_init);
}

/* The order-0 entropy in bits of the counts an ent_scan summed: total log2 total - sum. */
static double ent_bits(const ent_sums *e) {
    const double sum = (e->s[0] + e->s[1]) + (e->s[2] + e->s[3]);
    return e->total > 0 ? (double)e->total * log2((double)e->total) - sum : 0.0;
}

/* The order-0 entropy (entropy_bits' answer) of the histogram of `len` counts whose used
 * bins are b: the same sums, each count added to the sum ent_scan_plain adds it to (bin i to
 * sum i % 4, bins past the last whole eight to sum 0), in the same order: the same bits. */
static double entropy_floor_bins(const huf_bins *b, int64_t len) {
    ent_ready();
    double s[4] = {0.0, 0.0, 0.0, 0.0};
    uint64_t total = 0;
    const int64_t eights = len & ~(int64_t)7;
    for (int64_t i = 0; i < b->used; i++) {
        const int64_t k = b->cnt[i];
        total += (uint64_t)k;
        s[b->idx[i] < eights ? (b->idx[i] & 3) : 0] +=
            (uint64_t)k < ENT_TAB ? ent_tab[k] : (double)k * log2((double)k);
    }
    const ent_sums e = {{s[0], s[1], s[2], s[3]}, b->used, 0, total};
    return ent_bits(&e);
}

static void ent_scan_table(const int64_t *c, int64_t n, const uint8_t *blocks, int fast,
                           ent_sums *e);

static PyObject *huf_entropy_bits(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "entropy_bits";
    if (sc_nargs(nargs, 1, fn) < 0) return NULL;
    ent_ready();
    sc_bufs bufs = {.n = 0};
    sc_arr counts;
    PyObject *res = NULL;
    if (sc_get(&bufs, args[0], 0, 8, "counts", &counts) < 0) goto done;
    if (!aligned8(&counts)) { bad_arg(fn, "counts must be aligned"); goto done; }
    ent_sums e = {{0.0, 0.0, 0.0, 0.0}, 0, 0, 0};
    const int fast = huf_fast();
    Py_BEGIN_ALLOW_THREADS
    ent_scan_table(counts.p, counts.n, NULL, fast, &e);
    Py_END_ALLOW_THREADS
    if (e.bad < 0) bad_arg(fn, "counts must not be negative");
    else res = Py_BuildValue("(dL)", ent_bits(&e), (long long)e.used);
done:
    sc_release(&bufs);
    return res;
}

/* ---- tables of 2**16 counts with their blocks in use -------------------------------------
 * A planner's table of 16-bit patterns is 512 KiB, while a tensor of a few thousand values
 * uses a few hundred of its 64-bin blocks: each pass over every bin (zeroing, the mode, the
 * floors, the field histograms) read the whole table, from L3 once another codec or layer
 * had run. These kernels take the table with a map of its blocks (one byte a block, 1 where a
 * value was counted) and visit only those, in the dense scans' order, to the same results. */
static int blocks_args(sc_bufs *bufs, PyObject *c, PyObject *b, int writable_blocks,
                       const char *fn, sc_arr *counts, sc_arr *blocks) {
    if (sc_get(bufs, c, 1, 8, "counts", counts) < 0 ||
        sc_get(bufs, b, writable_blocks, 1, "blocks", blocks) < 0)
        return -1;
    if (counts->n != 65536 || blocks->n != BLK_COUNT || !aligned8(counts)) {
        bad_arg(fn, "need 2**16 aligned counts and 1024 blocks");
        return -1;
    }
    return 0;
}

/* histogram_blocks16(values u16, counts i64[2**16], blocks u8[1024], dirty) -> marked:
 * counts = the values' histogram (huf_histogram's kernels; counts all zero before, or, dirty,
 * anything, and blocks all zero either way) and blocks the map of the blocks it uses (1 where a
 * block holds a count). Marked (1): each value's block marked as it is counted, so no block
 * outside the map was touched. Not (0): more than BLK_MAX_VALUES values, or more than
 * BLK_LIMIT blocks in use by the end of a chunk of BLK_CHUNK values; then the rest is counted
 * without marks and the map read off the counts afterwards. Past a
 * quarter of the table, the passes the map spares cost less than the stores that mark it (a
 * float16 tensor's 36,864 values mark ~480 blocks: 27 -> 32 us counted, where the passes
 * then read about half the table) and the misses of counts into a table out of cache. */
#define BLK_LIMIT 256
#define BLK_CHUNK 4096
/* Nor past as many values as the table has bins: marking costs ~0.25 ns a value, the passes it
 * spares ~30 us a table (147,456 bfloat16 values: counted 64 -> 95 us with the map; 16,384:
 * 15.0 -> 12.1, the table zeroed no more) */
#define BLK_MAX_VALUES 65536
HUF_TWINS(hist_blocks_k, (const uint16_t *v, int64_t n, int64_t *counts, uint8_t *blocks), {
    for (int64_t i = 0; i < n; i++) {
        counts[v[i]]++;
        blocks[v[i] >> BLK_SHIFT] = 1;
    }
    return 0;
})

static int64_t marked_blocks(const uint8_t *blocks) {
    int64_t k = 0;
    for (int i = 0; i < BLK_COUNT; i++) k += blocks[i] != 0;
    return k;
}

/* blocks[k] = whether block k of counts holds a count other than 0: the map read off a table
 * counted without one (one pass of ORs over a table just zeroed and counted, so in cache). */
HUF_TWINS(map_blocks_k, (const int64_t *c, uint8_t *blocks), {
    for (int64_t k = 0; k < BLK_COUNT; k++) {
        const int64_t *g = c + (k << BLK_SHIFT);
        int64_t any = 0;
        for (int j = 0; j < 1 << BLK_SHIFT; j++) any |= g[j];
        blocks[k] = any != 0;
    }
    return 0;
})

static int hist_blocks(const uint16_t *v, int64_t n, int64_t *counts, uint8_t *blocks,
                       int fast, int dirty) {
#if SC_X86
    if (fast) hist_pack_ready();
#endif
    if (dirty) memset(counts, 0, sizeof(int64_t) << 16);
    /* the first BLK_CHUNK / 4 values' blocks first, the table untouched: past the limit
     * already, the table is zeroed whole first (if it was not just now), as without a map: a
     * stream of stores the prefetcher runs ahead of, where counting into a table out of cache
     * missed bin by bin (float16 weights 4-8% slower an encode after another codec had run) */
    const int64_t head = n < BLK_CHUNK / 4 ? n : BLK_CHUNK / 4;
    for (int64_t i = 0; i < head; i++) blocks[v[i] >> BLK_SHIFT] = 1;
    int64_t i = 0;
    if (n > BLK_MAX_VALUES || marked_blocks(blocks) > BLK_LIMIT) {
        if (!dirty) memset(counts, 0, sizeof(int64_t) << 16);
    } else {
        for (; i < n; i += BLK_CHUNK) {
            const int64_t m = n - i < BLK_CHUNK ? n - i : BLK_CHUNK;
#if SC_X86
            if (fast && m >= HIST_BLOCK) histogram16_sparse_blocks(v + i, m, counts, blocks);
            else
#endif
            HUF_RUN(fast, hist_blocks_k, v + i, m, counts, blocks);
            if (marked_blocks(blocks) > BLK_LIMIT) break;
        }
        if (i >= n) return 1;
        i += BLK_CHUNK;
    }
    if (i < n) {
#if SC_X86
        if (fast && n - i >= HIST_BLOCK) histogram16_sparse(v + i, n - i, counts);
        else
#endif
        HUF_RUN(fast, histogram_k, v + i, n - i, 65536, counts, 2);
    }
    HUF_RUN(fast, map_blocks_k, counts, blocks);
    return 0;
}

static PyObject *huf_histogram_blocks16(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "histogram_blocks16";
    if (sc_nargs(nargs, 4, fn) < 0) return NULL;
    int64_t dirty;
    if (sc_i64(args[3], &dirty) < 0) return NULL;
    sc_bufs bufs = {.n = 0};
    sc_arr vals, counts, blocks;
    PyObject *res = NULL;
    if (sc_get(&bufs, args[0], 0, 2, "values", &vals) < 0 ||
        blocks_args(&bufs, args[1], args[2], 1, fn, &counts, &blocks) < 0)
        goto done;
    if ((uintptr_t)vals.p & 1) { /* the kernels read uint16_t where they lie */
        bad_arg(fn, "values must be 2-byte aligned");
        goto done;
    }
    const int fast = huf_fast();
    int marked;
    Py_BEGIN_ALLOW_THREADS
    marked = hist_blocks(vals.p, vals.n, counts.p, blocks.p, fast, dirty != 0);
    Py_END_ALLOW_THREADS
    res = PyBool_FromLong(marked);
done:
    sc_release(&bufs);
    return res;
}

/* clear_blocks(counts, blocks): every block in use zeroed, and its flag. */
static PyObject *huf_clear_blocks(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "clear_blocks";
    if (sc_nargs(nargs, 2, fn) < 0) return NULL;
    sc_bufs bufs = {.n = 0};
    sc_arr counts, blocks;
    PyObject *res = NULL;
    if (blocks_args(&bufs, args[0], args[1], 1, fn, &counts, &blocks) < 0) goto done;
    int64_t *c = counts.p;
    uint8_t *b = blocks.p;
    for (int64_t k = 0; k < BLK_COUNT; k++)
        if (b[k]) {
            memset(c + (k << BLK_SHIFT), 0, sizeof(int64_t) << BLK_SHIFT);
            b[k] = 0;
        }
    res = (Py_INCREF(Py_None), Py_None);
done:
    sc_release(&bufs);
    return res;
}

/* entropy_bits_blocks(counts, blocks) -> entropy_bits(counts), reading the blocks in use:
 * ent_scan_plain's sums over them (a block is eight of its groups of eight, bin i to sum
 * i % 4), the others all zero, which adds nothing. */
static void ent_scan_blocks(const int64_t *c, const uint8_t *blocks, ent_sums *e) {
    double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
    int64_t used = 0, bad = 0;
    uint64_t total = 0;
    for (int64_t k = 0; k < BLK_COUNT; k++) {
        if (!blocks[k]) continue;
        for (int64_t i = k << BLK_SHIFT; i < (k + 1) << BLK_SHIFT; i += 8) {
            const int64_t *g = c + i;
            if (!(g[0] | g[1] | g[2] | g[3] | g[4] | g[5] | g[6] | g[7])) continue;
#define ENT_ADD(acc, kk)                                                                         \
    do {                                                                                         \
        const int64_t k_ = (kk);                                                                 \
        bad |= k_;                                                                               \
        total += (uint64_t)k_;                                                                   \
        used += k_ != 0;                                                                         \
        acc += (uint64_t)k_ < ENT_TAB ? ent_tab[k_] : k_ > 0 ? (double)k_ * log2((double)k_) : 0;\
    } while (0)
            ENT_ADD(s0, g[0]); ENT_ADD(s1, g[1]); ENT_ADD(s2, g[2]); ENT_ADD(s3, g[3]);
            ENT_ADD(s0, g[4]); ENT_ADD(s1, g[5]); ENT_ADD(s2, g[6]); ENT_ADD(s3, g[7]);
#undef ENT_ADD
        }
    }
    *e = (ent_sums){{s0, s1, s2, s3}, used, bad, total};
}

/* entropy_bits' scan of a table of n counts, read by its blocks in use when given (then n is
 * 2**16), else whole, by the AVX2 build with `fast`. */
static void ent_scan_table(const int64_t *c, int64_t n, const uint8_t *blocks, int fast,
                           ent_sums *e) {
    if (blocks) ent_scan_blocks(c, blocks, e);
#if SC_X86
    else if (fast) ent_scan_avx2(c, n, e);
#endif
    else ent_scan_plain(c, n, e);
    (void)fast;
}

static PyObject *huf_entropy_bits_blocks(PyObject *self, PyObject *const *args,
                                         Py_ssize_t nargs) {
    const char *fn = "entropy_bits_blocks";
    if (sc_nargs(nargs, 2, fn) < 0) return NULL;
    ent_ready();
    sc_bufs bufs = {.n = 0};
    sc_arr counts, blocks;
    PyObject *res = NULL;
    if (blocks_args(&bufs, args[0], args[1], 0, fn, &counts, &blocks) < 0) goto done;
    ent_sums e;
    Py_BEGIN_ALLOW_THREADS
    ent_scan_blocks(counts.p, blocks.p, &e);
    Py_END_ALLOW_THREADS
    if (e.bad < 0) bad_arg(fn, "counts must not be negative");
    else res = Py_BuildValue("(dL)", ent_bits(&e), (long long)e.used);
done:
    sc_release(&bufs);
    return res;
}

/* argmax_blocks(counts, blocks) -> (bin, count): the first bin of the largest count (numpy's
 * argmax), read from the blocks in use; (0, 0) if none is. Each block's largest count first
 * (a reduction the compiler vectorises), then the first bin of the first block to hold the
 * largest. */
HUF_TWINS(argmax_blocks_k, (const int64_t *c, const uint8_t *blocks, int64_t *at), {
    int64_t most = 0, best = -1;
    for (int64_t k = 0; k < BLK_COUNT; k++) {
        if (!blocks[k]) continue;
        const int64_t *g = c + (k << BLK_SHIFT);
        int64_t m = g[0];
        for (int j = 1; j < 1 << BLK_SHIFT; j++) m = g[j] > m ? g[j] : m;
        if (m > most) most = m, best = k;
    }
    *at = 0; /* every count 0 (or none in use): bin 0, as numpy answers */
    if (best >= 0)
        for (int64_t i = best << BLK_SHIFT; i < (best + 1) << BLK_SHIFT; i++)
            if (c[i] == most) { *at = i; break; }
    return 0;
})

static PyObject *huf_argmax_blocks(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "argmax_blocks";
    if (sc_nargs(nargs, 2, fn) < 0) return NULL;
    sc_bufs bufs = {.n = 0};
    sc_arr counts, blocks;
    PyObject *res = NULL;
    if (blocks_args(&bufs, args[0], args[1], 0, fn, &counts, &blocks) < 0) goto done;
    int64_t at;
    const int fast = huf_fast();
    HUF_RUN(fast, argmax_blocks_k, counts.p, blocks.p, &at);
    res = Py_BuildValue("(LL)", (long long)at, (long long)((const int64_t *)counts.p)[at]);
done:
    sc_release(&bufs);
    return res;
}

/* used_bins(counts i64[2**16], blocks u8[1024], out i64) -> k: the bins of the blocks in use
 * that hold a count other than 0, ascending, in out[:k] (out has room for every bin of those
 * blocks). Groups of eight zero counts are passed at once. */
static PyObject *huf_used_bins(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "used_bins";
    if (sc_nargs(nargs, 3, fn) < 0) return NULL;
    sc_bufs bufs = {.n = 0};
    sc_arr counts, blocks, out;
    PyObject *res = NULL;
    if (blocks_args(&bufs, args[0], args[1], 0, fn, &counts, &blocks) < 0 ||
        sc_get(&bufs, args[2], 1, 8, "out", &out) < 0)
        goto done;
    const int64_t *c = counts.p;
    const uint8_t *b = blocks.p;
    int64_t room = 0, k = 0, *o = out.p;
    for (int64_t i = 0; i < BLK_COUNT; i++) room += b[i] != 0;
    if (out.n < room << BLK_SHIFT || !aligned8(&out)) {
        bad_arg(fn, "out must be aligned, with room for every bin of the blocks in use");
        goto done;
    }
    for (int64_t blk = 0; blk < BLK_COUNT; blk++) {
        if (!b[blk]) continue;
        for (int64_t i = blk << BLK_SHIFT; i < (blk + 1) << BLK_SHIFT; i += 8) {
            const int64_t *g = c + i;
            if (!(g[0] | g[1] | g[2] | g[3] | g[4] | g[5] | g[6] | g[7])) continue;
            for (int j = 0; j < 8; j++) {
                o[k] = i + j; /* written always, kept only if used: no branch */
                k += g[j] != 0;
            }
        }
    }
    res = PyLong_FromLongLong(k);
done:
    sc_release(&bufs);
    return res;
}

static PyObject *huf_histogram(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "histogram";
    if (sc_nargs(nargs, 2, fn) < 0) return NULL;
    sc_bufs bufs = {.n = 0};
    sc_arr sym, counts;
    PyObject *res = NULL;
    if (sc_get(&bufs, args[0], 0, 0, "symbols", &sym) < 0 ||
        sc_get(&bufs, args[1], 1, 8, "counts", &counts) < 0)
        goto done;
    if (!item_size_ok(sym.itemsize) || !aligned8(&counts)) { bad_arg(fn, "bad symbols or counts"); goto done; }
    int rc, fast = huf_fast();
#if SC_X86
    /* (it reads uint16_t where they lie: aligned symbols only; others take histogram_k's
     * loads, which read any address) */
    const int sparse16 = fast && sym.itemsize == 2 && sym.n >= HIST_BLOCK &&
                         !((uintptr_t)sym.p & 1);
    if (sparse16) hist_pack_ready();
#endif
    Py_BEGIN_ALLOW_THREADS
#if SC_X86
    if (sparse16) { /* the alphabet check alone (no symbols), then the blocks */
        rc = HUF_RUN(fast, histogram_k, sym.p, sym.n, counts.n, NULL, 2);
        if (!rc) histogram16_sparse(sym.p, sym.n, counts.p);
    } else
#endif
    rc = HUF_RUN(fast, histogram_k, sym.p, sym.n, counts.n, counts.p, (int)sym.itemsize);
    Py_END_ALLOW_THREADS
    if (rc) bad_arg(fn, "a symbol is outside the alphabet");
    else res = (Py_INCREF(Py_None), Py_None);
done:
    sc_release(&bufs);
    return res;
}

/* Common arguments of the value kernels: values (any of 1/2/4/8-byte items), rotate. */
typedef struct {
    const void *p;
    int64_t n;
    int isz;
    unsigned rot, width;
    uint64_t mask;
} huf_vals;

static int get_vals(sc_bufs *bufs, PyObject *o, PyObject *rot, unsigned width, const char *fn,
                    huf_vals *v) {
    sc_arr a;
    int64_t r;
    if (sc_get(bufs, o, 0, 0, "values", &a) < 0 || sc_i64(rot, &r) < 0) return -1;
    if (!item_size_ok(a.itemsize)) {
        bad_arg(fn, "values must have 1, 2, 4 or 8-byte items");
        return -1;
    }
    if (!width) width = 8 * (unsigned)a.itemsize;
    if (width < 1 || width > 64 || r < 0 || r >= width) {
        bad_arg(fn, "rotate must be below the value width (<= 64)");
        return -1;
    }
    v->p = a.p;
    v->n = a.n;
    v->isz = (int)a.itemsize;
    v->rot = (unsigned)r;
    v->width = width;
    v->mask = width_mask(width);
    return 0;
}

SC_INLINE uint64_t val(const huf_vals *v, int64_t i, int isz) {
    return rotl(ld(v->p, i, isz) & v->mask, v->rot, v->width, v->mask);
}

/* top_histogram(values, rotate, width, top, counts (w, 1 << top)). */
SC_INLINE void top_hist_body(const huf_vals *v0, unsigned top, int64_t *counts, int isz) {
    const huf_vals vv = *v0, *v = &vv; /* locals: the stores below cannot alias them */
    unsigned sh = v->width - top;
    uint64_t tm = width_mask(top);
    int64_t size = (int64_t)1 << top, i = 0;
    /* two values a step into two tables, so that equal neighbours (exponents repeat) do not
     * wait on each other's counter update; one table if the second cannot be had */
    int64_t *second = v->n > 4 * size ? calloc((size_t)size, sizeof(int64_t)) : NULL;
    if (second && v->width == 8u * (unsigned)isz && v->rot <= 1 && isz <= 4) {
        /* whole items rotated by 0 or 1 (every planner's case): the rotation and the shift
         * with constant widths, not val()'s general ones (a word embedding's float16 top
         * fields: 0.85 -> 0.62 ns a value, float32 ones 0.59) */
        const unsigned w = 8u * (unsigned)isz;
        const uint64_t wm = width_mask(w);
#define TOP_OF(x) (((v->rot ? (((x) << 1) | ((x) >> (w - 1))) & wm : (x)) >> sh) & tm)
        for (; i + 1 < v->n; i += 2) {
            const uint64_t a = ld(v->p, i, isz), b = ld(v->p, i + 1, isz);
            counts[TOP_OF(a)]++;
            second[TOP_OF(b)]++;
        }
#undef TOP_OF
    } else if (second) {
        for (; i + 1 < v->n; i += 2) {
            counts[(val(v, i, isz) >> sh) & tm]++;
            second[(val(v, i + 1, isz) >> sh) & tm]++;
        }
    }
    if (second) {
        for (int64_t t = 0; t < size; t++) counts[t] += second[t];
        free(second);
    }
    for (; i < v->n; i++) counts[(val(v, i, isz) >> sh) & tm]++;
}

#define CALL(k) top_hist_body(v, top, counts, k)
HUF_TWINS(top_hist_k, (const huf_vals *v, unsigned top, int64_t *counts, int isz),
          { SC_BY_SIZE(isz, CALL) return 0; })
#undef CALL

static PyObject *huf_top_histogram(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "top_histogram";
    if (sc_nargs(nargs, 5, fn) < 0) return NULL;
    int64_t width, top;
    if (sc_i64(args[2], &width) < 0 || sc_i64(args[3], &top) < 0) return NULL;
    if (width < 1 || width > 64 || top < 1 || top > width || top > 24)
        return bad_arg(fn, "need 1 <= top <= min(width, 24), width <= 64");
    sc_bufs bufs = {.n = 0};
    huf_vals v;
    sc_arr counts;
    PyObject *res = NULL;
    if (get_vals(&bufs, args[0], args[1], (unsigned)width, fn, &v) < 0 ||
        sc_get(&bufs, args[4], 1, 8, "counts", &counts) < 0)
        goto done;
    if (counts.n < ((int64_t)1 << top) || !aligned8(&counts)) { bad_arg(fn, "counts too small"); goto done; }
    int fast = huf_fast();
    Py_BEGIN_ALLOW_THREADS
    HUF_RUN(fast, top_hist_k, &v, (unsigned)top, counts.p, v.isz);
    Py_END_ALLOW_THREADS
    res = (Py_INCREF(Py_None), Py_None);
done:
    sc_release(&bufs);
    return res;
}

/* value_histograms(values, rotate, nplanes, top, planes (w, nplanes x 256), fine (w, 1 <<
 * top)): the byte planes' histograms and the top field's; top 0 for planes only. The top
 * plane is summed from the fine histogram when there is one. */
SC_INLINE void value_hist_body(const huf_vals *v0, unsigned nplanes, unsigned top,
                               int64_t *planes, int64_t *fine, int isz) {
    const huf_vals vv = *v0, *v = &vv; /* locals: the stores below cannot alias them */
    unsigned sh = v->width - top;
    uint64_t tm = width_mask(top);
    for (int64_t i = 0; i < v->n; i++) {
        uint64_t x = val(v, i, isz);
        if (top) fine[(x >> sh) & tm]++;
        for (unsigned p = top ? 1 : 0; p < nplanes; p++)
            planes[256 * p + ((x >> (8 * (nplanes - 1 - p))) & 0xFF)]++;
    }
    if (top)
        for (int64_t t = 0; t < ((int64_t)1 << top); t++) planes[t >> (top - 8)] += fine[t];
}

#define CALL(k) value_hist_body(v, nplanes, top, planes, fine, k)
HUF_TWINS(value_hist_k, (const huf_vals *v, unsigned nplanes, unsigned top, int64_t *planes,
                         int64_t *fine, int isz),
          { SC_BY_SIZE(isz, CALL) return 0; })
#undef CALL

/* value_hist_body for 32-bit values, four planes and a top field of 8..24 bits: two values a
 * step, each counted in its own set of tables (fine, planes 1-3), so that equal neighbours
 * (exponents repeat) do not wait on each other's counter updates; the sets are added at the
 * end and plane 0 summed from the top field. -1 if the second set cannot be had. */
SC_INLINE int value_hist32(const huf_vals *v0, unsigned top, int64_t *planes, int64_t *fine) {
    const huf_vals vv = *v0, *v = &vv;
    const int64_t size = (int64_t)1 << top;
    if (v->n < size) { /* fewer values than bins: as value_hist16, straight into the tables */
        const unsigned sh = 32 - top, r = v->rot;
        for (int64_t i = 0; i < v->n; i++) {
            uint32_t x = (uint32_t)ld(v->p, i, 4);
            x = r ? (x << r) | (x >> (32 - r)) : x;
            fine[x >> sh]++;
            planes[x >> 24]++;
            planes[256 + ((x >> 16) & 0xFF)]++;
            planes[512 + ((x >> 8) & 0xFF)]++;
            planes[768 + (x & 0xFF)]++;
        }
        return 0;
    }
    int64_t *b = calloc((size_t)size + 3 * 256, sizeof(int64_t));
    if (!b) return -1;
    int64_t *fb = b, *pb = b + size; /* the second set: fine, then planes 1..3 */
    const unsigned sh = 32 - top, r = v->rot;
    int64_t i = 0;
    for (; i + 1 < v->n; i += 2) {
        uint32_t x = (uint32_t)ld(v->p, i, 4), y = (uint32_t)ld(v->p, i + 1, 4);
        x = r ? (x << r) | (x >> (32 - r)) : x;
        y = r ? (y << r) | (y >> (32 - r)) : y;
        fine[x >> sh]++;
        fb[y >> sh]++;
        planes[256 + ((x >> 16) & 0xFF)]++;
        pb[(y >> 16) & 0xFF]++;
        planes[512 + ((x >> 8) & 0xFF)]++;
        pb[256 + ((y >> 8) & 0xFF)]++;
        planes[768 + (x & 0xFF)]++;
        pb[512 + (y & 0xFF)]++;
    }
    if (i < v->n) {
        uint32_t x = (uint32_t)ld(v->p, i, 4);
        x = r ? (x << r) | (x >> (32 - r)) : x;
        fine[x >> sh]++;
        planes[256 + ((x >> 16) & 0xFF)]++;
        planes[512 + ((x >> 8) & 0xFF)]++;
        planes[768 + (x & 0xFF)]++;
    }
    for (int64_t t = 0; t < size; t++) {
        fine[t] += fb[t];
        planes[t >> (top - 8)] += fine[t];
    }
    for (int k = 0; k < 3 * 256; k++) planes[256 + k] += pb[k];
    free(b);
    return 0;
}

HUF_TWINS(value_hist32_k, (const huf_vals *v, unsigned top, int64_t *planes, int64_t *fine),
          { return value_hist32(v, top, planes, fine); })

static PyObject *huf_value_histograms(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "value_histograms";
    if (sc_nargs(nargs, 6, fn) < 0) return NULL;
    int64_t nplanes, top;
    if (sc_i64(args[2], &nplanes) < 0 || sc_i64(args[3], &top) < 0) return NULL;
    if (nplanes < 1 || nplanes > 8 || (top && (top < 8 || top > 8 * nplanes || top > 24)))
        return bad_arg(fn, "need 1 <= nplanes <= 8 and top 0 or 8..min(8 * nplanes, 24)");
    sc_bufs bufs = {.n = 0};
    huf_vals v;
    sc_arr planes, fine;
    PyObject *res = NULL;
    if (get_vals(&bufs, args[0], args[1], 8 * (unsigned)nplanes, fn, &v) < 0 ||
        sc_get(&bufs, args[4], 1, 8, "planes", &planes) < 0 ||
        sc_get(&bufs, args[5], 1, 8, "fine", &fine) < 0)
        goto done;
    if (planes.n < 256 * nplanes || fine.n < ((int64_t)1 << top) - (top == 0) ||
        !aligned8(&planes) || !aligned8(&fine)) {
        bad_arg(fn, "planes or fine too small");
        goto done;
    }
    int rc = -1, fast = huf_fast();
    Py_BEGIN_ALLOW_THREADS
    if (v.isz == 4 && nplanes == 4 && top >= 8) /* the float32 planner's case */
        rc = HUF_RUN(fast, value_hist32_k, &v, (unsigned)top, planes.p, fine.p);
    if (rc)
        HUF_RUN(fast, value_hist_k, &v, (unsigned)nplanes, (unsigned)top, planes.p, fine.p, v.isz);
    Py_END_ALLOW_THREADS
    res = (Py_INCREF(Py_None), Py_None);
done:
    sc_release(&bufs);
    return res;
}

/* What value_hist16 counts, summed from the histogram of the values themselves (2**16
 * counts), in the order of the rotated patterns x: a top field and a top byte are runs of x,
 * summed in registers, and the low bytes' bins are 256 apart (no chain of adds through one
 * bin, and no test for empty counts to mispredict). Rotation by 1 (every float) reads the
 * counts as two contiguous halves instead: the even x of a top byte are values hi*128 + j,
 * the odd ones 32768 + hi*128 + j, j = 0..127, so the loops vectorise. */
SC_INLINE void value_hist16_from_counts(const int64_t *c, unsigned r, unsigned top,
                                        int64_t *planes, int64_t *fine,
                                        const uint8_t *blocks, int64_t *upper) {
    const uint32_t run = 1u << (16 - top); /* patterns per top field: 1..256 */
    int64_t *low = planes + 256;
    if (r == 1 && run >= 2) {
        /* the low bytes' counts in two runs of 128 (even and odd bytes: contiguous, so the
         * adds vectorise), interleaved once at the end */
        int64_t low_even[128] = {0}, low_odd[128] = {0};
        const uint32_t half = run / 2;
        for (uint32_t hi = 0; hi < 256; hi++) {
            const int64_t *restrict even = c + hi * 128, *restrict odd = c + 32768 + hi * 128;
            /* a top byte no value has (most: a tensor's floats span a few exponents) adds
             * nothing: one OR over its counts instead of its sums (16 -> 7.5 us a bfloat16 table) */
            if (blocks) { /* or, with the blocks in use known, without reading them */
                if (!(blocks[2 * hi] | blocks[2 * hi + 1] | blocks[512 + 2 * hi] |
                      blocks[512 + 2 * hi + 1]))
                    continue;
            } else {
                int64_t any = 0;
                for (uint32_t j = 0; j < 128; j++) any |= even[j] | odd[j];
                if (!any) continue;
            }
            int64_t hsum = 0, esum = 0;
            for (uint32_t j = 0; j < 128; j++) {
                low_even[j] += even[j];
                low_odd[j] += odd[j];
                esum += even[j];
            }
            for (uint32_t j0 = 0; j0 < 128; j0 += half) { /* x = hi*256 + 2*j0 .. + run - 1 */
                int64_t fsum = 0;
                for (uint32_t j = j0; j < j0 + half; j++) fsum += even[j] + odd[j];
                fine[(hi << 8 | 2 * j0) >> (16 - top)] += fsum;
                hsum += fsum;
            }
            planes[hi] += hsum;
            if (upper) { /* the unrotated top byte: values hi*128 + j and 32768 + hi*128 + j */
                upper[hi >> 1] += esum;
                upper[128 + (hi >> 1)] += hsum - esum;
            }
        }
        for (uint32_t j = 0; j < 128; j++) {
            low[2 * j] += low_even[j];
            low[2 * j + 1] += low_odd[j];
        }
        return;
    }
    for (uint32_t hi = 0; hi < 256; hi++) {
        if (blocks && !r && !(blocks[4 * hi] | blocks[4 * hi + 1] | blocks[4 * hi + 2] |
                              blocks[4 * hi + 3]))
            continue; /* unrotated: x is v, and a top byte four blocks */
        int64_t hsum = 0;
        for (uint32_t f0 = 0; f0 < 256; f0 += run) {
            int64_t fsum = 0;
            for (uint32_t lo = f0; lo < f0 + run; lo++) {
                uint32_t x = hi << 8 | lo;
                uint32_t v = r ? ((x >> r) | (x << (16 - r))) & 0xFFFF : x;
                int64_t k = c[v];
                fsum += k;
                low[lo] += k;
                if (upper) upper[v >> 8] += k;
            }
            fine[(hi << 8 | f0) >> (16 - top)] += fsum;
            hsum += fsum;
        }
        planes[hi] += hsum;
    }
}

/* upper (or NULL; rotation 1 only): the histogram of the values' unrotated top bytes, added */
HUF_TWINS(value_hist16_counts_k, (const int64_t *c, unsigned r, unsigned top, int64_t *planes,
                                  int64_t *fine, const uint8_t *blocks, int64_t *upper),
          { value_hist16_from_counts(c, r, top, planes, fine, blocks, upper); return 0; })

/* value_histograms16(values u16, rotate, top, planes (w, 2 x 256), fine (w, 1 << top)): two
 * values per step, each counted in its own pair of tables, so that equal neighbours do not
 * wait on each other's counter update. */
SC_INLINE int value_hist16(const void *vals, int64_t n, unsigned r, unsigned top,
                        int64_t *planes, int64_t *fine) {
    int64_t size = (int64_t)1 << top;
    if (n < size) { /* fewer values than bins: each counted straight into the three tables,
                     * where the pair of tables and the pass summing 2**top bins cost more
                     * than the values (384 of them: 6.2 us as below) */
        for (int64_t i = 0; i < n; i++) {
            uint32_t v = (uint32_t)ld(vals, i, 2);
            v = r ? ((v << r) | (v >> (16 - r))) & 0xFFFF : v;
            fine[v >> (16 - top)]++;
            planes[v >> 8]++;
            planes[256 + (v & 0xFF)]++;
        }
        return 0;
    }
    int64_t *fine_b = calloc((size_t)size + 512, sizeof(int64_t));
    if (!fine_b) return -1;
    int64_t *low_a = fine_b + size, *low_b = low_a + 256;
    unsigned sh = 16 - top;
    for (int64_t i = 0; i + 1 < n; i += 2) {
        uint32_t v = (uint32_t)ld(vals, i, 2), u = (uint32_t)ld(vals, i + 1, 2);
        v = r ? ((v << r) | (v >> (16 - r))) & 0xFFFF : v;
        u = r ? ((u << r) | (u >> (16 - r))) & 0xFFFF : u;
        fine[v >> sh]++;
        fine_b[u >> sh]++;
        low_a[v & 0xFF]++;
        low_b[u & 0xFF]++;
    }
    if (n % 2) {
        uint32_t v = (uint32_t)ld(vals, n - 1, 2);
        v = r ? ((v << r) | (v >> (16 - r))) & 0xFFFF : v;
        fine[v >> sh]++;
        low_a[v & 0xFF]++;
    }
    for (int64_t t = 0; t < size; t++) {
        fine[t] += fine_b[t];
        planes[t >> (top - 8)] += fine[t];
    }
    for (int b = 0; b < 256; b++) planes[256 + b] += low_a[b] + low_b[b];
    free(fine_b);
    return 0;
}

HUF_TWINS(value_hist16_k, (const void *vals, int64_t n, unsigned r, unsigned top, int64_t *planes,
                           int64_t *fine),
          { return value_hist16(vals, n, r, top, planes, fine); })

static PyObject *huf_value_histograms16(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "value_histograms16";
    if (sc_nargs(nargs, 6, fn) < 0) return NULL;
    int64_t rot, top, counted;
    if (sc_i64(args[1], &rot) < 0 || sc_i64(args[2], &top) < 0 || sc_i64(args[5], &counted) < 0)
        return NULL;
    if (rot < 0 || rot > 15 || top < 8 || top > 16) return bad_arg(fn, "need rotate 0..15, top 8..16");
    sc_bufs bufs = {.n = 0};
    sc_arr vals, planes, fine;
    PyObject *res = NULL;
    if (sc_get(&bufs, args[0], 0, counted ? 8 : 2, counted ? "counts" : "values", &vals) < 0 ||
        sc_get(&bufs, args[3], 1, 8, "planes", &planes) < 0 ||
        sc_get(&bufs, args[4], 1, 8, "fine", &fine) < 0)
        goto done;
    if (planes.n < 512 || fine.n < ((int64_t)1 << top) || !aligned8(&planes) ||
        !aligned8(&fine) || (counted && (vals.n != 1 << 16 || !aligned8(&vals)))) {
        /* values may sit anywhere: they are read with unaligned loads */
        bad_arg(fn, "counts not 2**16 aligned items, or planes or fine too small or unaligned");
        goto done;
    }
    int rc = 0, fast = huf_fast();
    Py_BEGIN_ALLOW_THREADS
    if (counted)
        HUF_RUN(fast, value_hist16_counts_k, vals.p, (unsigned)rot, (unsigned)top, planes.p,
                fine.p, NULL, NULL);
    else
        rc = HUF_RUN(fast, value_hist16_k, vals.p, vals.n, (unsigned)rot, (unsigned)top,
                     planes.p, fine.p);
    Py_END_ALLOW_THREADS
    if (rc) PyErr_NoMemory();
    else res = (Py_INCREF(Py_None), Py_None);
done:
    sc_release(&bufs);
    return res;
}

/* value_histograms16_blocks(counts, blocks, rotate, top, planes (2 x 256), fine (1 << top)):
 * value_histograms16's counted answer, the top bytes no marked block holds skipped unread. */
static PyObject *huf_value_histograms16_blocks(PyObject *self, PyObject *const *args,
                                               Py_ssize_t nargs) {
    const char *fn = "value_histograms16_blocks";
    if (sc_nargs(nargs, 6, fn) < 0) return NULL;
    int64_t rot, top;
    if (sc_i64(args[2], &rot) < 0 || sc_i64(args[3], &top) < 0) return NULL;
    if (rot < 0 || rot > 15 || top < 8 || top > 16) return bad_arg(fn, "need rotate 0..15, top 8..16");
    sc_bufs bufs = {.n = 0};
    sc_arr counts, blocks, planes, fine;
    PyObject *res = NULL;
    if (blocks_args(&bufs, args[0], args[1], 0, fn, &counts, &blocks) < 0 ||
        sc_get(&bufs, args[4], 1, 8, "planes", &planes) < 0 ||
        sc_get(&bufs, args[5], 1, 8, "fine", &fine) < 0)
        goto done;
    if (planes.n < 512 || fine.n < ((int64_t)1 << top) || !aligned8(&planes) || !aligned8(&fine)) {
        bad_arg(fn, "planes or fine too small or unaligned");
        goto done;
    }
    const int fast = huf_fast();
    Py_BEGIN_ALLOW_THREADS
    HUF_RUN(fast, value_hist16_counts_k, counts.p, (unsigned)rot, (unsigned)top, planes.p,
            fine.p, blocks.p, NULL);
    Py_END_ALLOW_THREADS
    res = (Py_INCREF(Py_None), Py_None);
done:
    sc_release(&bufs);
    return res;
}

/* A 2**16-bin table (aligned int64) and, unless b is None, the map of its blocks in use. */
static int table_args(sc_bufs *bufs, PyObject *c, PyObject *b, const char *fn, sc_arr *counts,
                      sc_arr *blocks) {
    if (b != Py_None) return blocks_args(bufs, c, b, 0, fn, counts, blocks);
    if (sc_get(bufs, c, 0, 8, "counts", counts) < 0) return -1;
    if (counts->n != 65536 || !aligned8(counts)) {
        bad_arg(fn, "need 2**16 aligned counts");
        return -1;
    }
    return 0;
}

/* plan16(counts i64[2**16], blocks u8[1024] or None, rotate, top, limit, count, idle,
 *        planes (w, 2 x 256), fine (w, 1 << top), sizes (w, 2 + top - 8), entropy,
 *        upper (w, 256))
 *   -> (sign_constant, top_idle, entropy bits, used, upper's coded bytes):
 * what a planner of `count` 16-bit values asks of their histogram `counts` (with `blocks`, the
 * map of its blocks in use: see "tables of 2**16 counts"), in one call where it took six and
 * the Python between them: the byte planes' and the `top`-bit fields' histograms of the values
 * rotated left by `rotate` (value_histograms16_counts: planes and fine are zeroed here); the
 * coded bytes of each plane (huffman_sizes of the planes) into sizes[0..2); of the top fields
 * of top, top - 1, .. 9 bits, each with its raw low bits (`extra`: 8 bytes a 64-bit word of
 * `count` fields of 16 - t bits) as level_sizes costs them, into sizes[2..); whether the sign
 * (bit 0 of the low plane, rotated) is the same in every value (all its counts at even bins,
 * or all at odd ones); whether one top byte holds at least idle * count of them; and, with
 * `entropy`, the values' order-0 entropy and the patterns in use (entropy_bits, read by the
 * blocks when given), else -1.0 and -1; with `rotate` 1 (a float's), the histogram of the
 * values' top bytes unrotated into `upper` (summed in the same pass: a 128-count run of the
 * table is one unrotated top byte) and its coded bytes (huffman_sizes), else zeros and -1.
 * The same numbers as those calls, by the same code. */
static PyObject *huf_plan16(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "plan16";
    if (sc_nargs(nargs, 12, fn) < 0) return NULL;
    int64_t rot, top, limit, count, want_ent;
    if (sc_i64(args[2], &rot) < 0 || sc_i64(args[3], &top) < 0 || sc_i64(args[4], &limit) < 0 ||
        sc_i64(args[5], &count) < 0 || sc_i64(args[10], &want_ent) < 0)
        return NULL;
    const double idle = PyFloat_AsDouble(args[6]);
    if (idle == -1.0 && PyErr_Occurred()) return NULL;
    if (rot < 0 || rot > 15 || top < 9 || top > 16 || limit < 1 || limit > 32 || count < 0 ||
        count > ((int64_t)1 << 56))
        return bad_arg(fn, "need rotate 0..15, top 9..16, limit 1..32, 0 <= count < 2**56");
    const int64_t levels = top - 8;
    sc_bufs bufs = {.n = 0};
    sc_arr counts, blocks = {0}, planes, fine, sizes, upper;
    PyObject *res = NULL;
    if (table_args(&bufs, args[0], args[1], fn, &counts, &blocks) < 0) goto done;
    if (sc_get(&bufs, args[7], 1, 8, "planes", &planes) < 0 ||
        sc_get(&bufs, args[8], 1, 8, "fine", &fine) < 0 ||
        sc_get(&bufs, args[9], 1, 8, "sizes", &sizes) < 0 ||
        sc_get(&bufs, args[11], 1, 8, "upper", &upper) < 0)
        goto done;
    if (planes.n != 512 || fine.n != ((int64_t)1 << top) || sizes.n != 2 + levels ||
        upper.n != 256 || !aligned8(&planes) || !aligned8(&fine) || !aligned8(&sizes) ||
        !aligned8(&upper)) {
        bad_arg(fn, "need planes of 2 x 256, fine of 2**top, sizes of 2 + top - 8 and upper of "
                    "256, aligned");
        goto done;
    }
    const int fast = huf_fast();
    if (want_ent) ent_ready();
    int64_t *pl = planes.p, *fi = fine.p, *sz = sizes.p, *up = upper.p;
    const int64_t *c = counts.p;
    const uint8_t *bl = blocks.p;
    int rc = 0, sign = 0, busy = 0;
    ent_sums e = {{0.0, 0.0, 0.0, 0.0}, -1, 0, 0};
    int64_t upper_size = -1;
    Py_BEGIN_ALLOW_THREADS
    memset(pl, 0, 512 * sizeof(int64_t));
    memset(fi, 0, ((size_t)1 << top) * sizeof(int64_t));
    memset(up, 0, 256 * sizeof(int64_t));
    HUF_RUN(fast, value_hist16_counts_k, c, (unsigned)rot, (unsigned)top, pl, fi, bl,
            rot == 1 ? up : NULL);
    int64_t even = 0, odd = 0;
    for (int i = 256; i < 512; i += 2) even |= pl[i], odd |= pl[i + 1];
    sign = !even || !odd;
    for (int i = 0; count > 0 && i < 256; i++) busy |= (double)pl[i] >= idle * (double)count;
    for (int row = 0; rc == 0 && row < 2; row++) {
        int64_t r[5];
        rc = huffman_cost_impl(pl + 256 * row, 256, limit, r);
        if (rc == 0) sz[row] = coded_bytes(r);
    }
    if (rc == 0 && rot == 1) {
        int64_t r[5];
        rc = huffman_cost_impl(up, 256, limit, r);
        if (rc == 0) upper_size = coded_bytes(r);
    }
    int64_t extra[16], out[16 * 5];
    for (int64_t lv = 0; lv < levels; lv++)
        extra[lv] = 8 * ((count * (16 - (top - lv)) + 63) / 64);
    if (rc == 0) rc = level_sizes(fi, (int64_t)1 << top, levels, limit, extra, out, sz + 2);
    if (rc == 0 && want_ent) ent_scan_table(c, 65536, bl, fast, &e);
    Py_END_ALLOW_THREADS
    if (rc == -2) PyErr_NoMemory();
    else if (rc < 0 || e.bad < 0) bad_arg(fn, "counts must not be negative");
    else
        res = Py_BuildValue("(iidLL)", sign, busy, want_ent ? ent_bits(&e) : -1.0,
                            (long long)e.used, (long long)upper_size);
done:
    sc_release(&bufs);
    return res;
}

/* ent_scan_table, kept out of line: inlined with the lengths below as constants, GCC warned of
 * the scalar scan's tail loop (a loop that never runs for them) overrunning its bounds. */
__attribute__((noinline)) static void ent_scan_len(const int64_t *c, int64_t n,
                                                   const uint8_t *blocks, int fast, ent_sums *e) {
    ent_scan_table(c, n, blocks, fast, e);
}

/* stages_floor16(counts i64[2**16], blocks u8[1024] or None, rotate, top, count) -> (bits,
 * whole_bits, used): what _stages.stages_floor asks of 16-bit values' histogram, in one call
 * (seven entropy_bits calls and the Python between them, ~20 us of a small tensor's encode):
 * bits = the least of the rotated planes' entropies summed and, for t = top .. 9, the entropy
 * of the t-bit top fields plus count * (16 - t) raw low bits; whole_bits and used =
 * entropy_bits(counts). The same doubles as those calls: each entropy by the same scan (the
 * planes' and fields' histograms summed as value_histograms16_counts sums them, coarser fields
 * by adding neighbours), added and compared in the same order. */
static PyObject *huf_stages_floor16(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "stages_floor16";
    if (sc_nargs(nargs, 5, fn) < 0) return NULL;
    int64_t rot, top, count;
    if (sc_i64(args[2], &rot) < 0 || sc_i64(args[3], &top) < 0 || sc_i64(args[4], &count) < 0)
        return NULL;
    if (rot < 0 || rot > 15 || top < 9 || top > 16 || count < 0 || count > ((int64_t)1 << 46))
        return bad_arg(fn, "need rotate 0..15, top 9..16, 0 <= count <= 2**46");
    sc_bufs bufs = {.n = 0};
    sc_arr counts, blocks = {0};
    PyObject *res = NULL;
    if (table_args(&bufs, args[0], args[1], fn, &counts, &blocks) < 0) goto done;
    int64_t *buf = calloc(512 + ((size_t)1 << top), sizeof(int64_t));
    if (!buf) {
        PyErr_NoMemory();
        goto done;
    }
    ent_ready();
    const int fast = huf_fast();
    int64_t *planes = buf, *fine = buf + 512;
    const int64_t *c = counts.p;
    const uint8_t *bl = blocks.p;
    double bits = 0.0, whole = 0.0;
    int64_t bad = 0, used = 0;
    Py_BEGIN_ALLOW_THREADS
    HUF_RUN(fast, value_hist16_counts_k, c, (unsigned)rot, (unsigned)top, planes, fine, bl, NULL);
    ent_sums e = {{0.0, 0.0, 0.0, 0.0}, 0, 0, 0};
    for (int p = 0; p < 2; p++) { /* sum(entropy_bits(plane)[0] for plane in planes) */
        ent_scan_len(planes + 256 * p, 256, NULL, fast, &e);
        bad |= e.bad;
        bits += ent_bits(&e);
    }
    for (int64_t t = top; t >= 9; t--) {
        const int64_t n = (int64_t)1 << t;
        if (t < top) /* top[0::2] + top[1::2] */
            for (int64_t i = 0; i < n; i++) fine[i] = fine[2 * i] + fine[2 * i + 1];
        ent_scan_len(fine, n, NULL, fast, &e);
        bad |= e.bad;
        const double field = ent_bits(&e) + (double)(count * (16 - t));
        bits = field < bits ? field : bits; /* min(bits, field) */
    }
    ent_scan_len(c, 65536, bl, fast, &e);
    bad |= e.bad;
    whole = ent_bits(&e);
    used = e.used;
    Py_END_ALLOW_THREADS
    free(buf);
    if (bad < 0) bad_arg(fn, "counts must not be negative");
    else res = Py_BuildValue("(ddL)", bits, whole, (long long)used);
done:
    sc_release(&bufs);
    return res;
}

/* ---- byte planes ---------------------------------------------------------------------- */

/* split_planes(values, rotate, planes (w, nplanes rows of `stride` bytes), nplanes, stride):
 * plane p holds byte nplanes - 1 - p (most significant first) of each rotated value. Two and
 * four planes of 16- and 32-bit values have fixed-width bodies the compiler vectorizes (the
 * mirror of join_planes_body's); the general one serves the rest. */
SC_INLINE void split_planes_body(const huf_vals *v0, uint8_t *planes, unsigned nplanes,
                                 int64_t stride, int isz) {
    const huf_vals vv = *v0, *v = &vv; /* locals: the stores below cannot alias them */
    const unsigned rot = v->rot;
    if (nplanes == 2 && isz == 2) {
        uint8_t *p0 = planes, *p1 = planes + stride;
        for (int64_t i = 0; i < v->n; i++) {
            uint32_t x = (uint32_t)ld(v->p, i, 2);
            x = (x << rot) | (x >> (16 - rot)); /* rot < 16: bits above 15 are dropped below */
            p0[i] = (uint8_t)(x >> 8);
            p1[i] = (uint8_t)x;
        }
        return;
    }
    if (nplanes == 4 && isz == 4) {
        uint8_t *p0 = planes, *p1 = planes + stride, *p2 = planes + 2 * stride,
                *p3 = planes + 3 * stride;
        unsigned rr = (32 - rot) & 31;
        for (int64_t i = 0; i < v->n; i++) {
            uint32_t x = (uint32_t)ld(v->p, i, 4);
            x = rot ? (x << rot) | (x >> rr) : x;
            p0[i] = (uint8_t)(x >> 24);
            p1[i] = (uint8_t)(x >> 16);
            p2[i] = (uint8_t)(x >> 8);
            p3[i] = (uint8_t)x;
        }
        return;
    }
    for (int64_t i = 0; i < v->n; i++) {
        uint64_t x = val(v, i, isz);
        for (unsigned p = 0; p < nplanes; p++)
            planes[p * stride + i] = (uint8_t)(x >> (8 * (nplanes - 1 - p)));
    }
}

/* Values [a, b) from their planes (plane p: byte nplanes - 1 - p of each rotated value). Two
 * and four planes into 16- and 32-bit values have fixed-width bodies the compiler vectorizes
 * in the AVX2 build; the general one serves the rest (and float64's eight planes). */
SC_INLINE void join_planes_body(const uint8_t *const *pl, unsigned nplanes, unsigned rot,
                                void *out, int64_t a, int64_t b, int isz) {
    if (nplanes == 2 && isz == 2) {
        const uint8_t *p0 = pl[0], *p1 = pl[1];
        uint16_t *o = out;
        const unsigned left = (16 - rot) & 15; /* rot 0: x | x */
        /* in 16-bit arithmetic, so that the AVX2 build takes 16 values a vector (with the
         * rotation in 32 bits GCC widened every value: 8.1 us for 61,440 values) */
        for (int64_t i = a; i < b; i++) {
            uint16_t x = (uint16_t)((p0[i] << 8) | p1[i]);
            o[i] = (uint16_t)((uint16_t)(x >> rot) | (uint16_t)(x << left));
        }
        return;
    }
    if (nplanes == 4 && isz == 4) {
        const uint8_t *p0 = pl[0], *p1 = pl[1], *p2 = pl[2], *p3 = pl[3];
        uint32_t *o = out;
        unsigned rl = (32 - rot) & 31;
        for (int64_t i = a; i < b; i++) {
            uint32_t x = ((uint32_t)p0[i] << 24) | ((uint32_t)p1[i] << 16) |
                         ((uint32_t)p2[i] << 8) | p3[i];
            o[i] = rot ? (x >> rot) | (x << rl) : x;
        }
        return;
    }
    unsigned width = 8 * nplanes;
    uint64_t mask = width_mask(width);
    for (int64_t i = a; i < b; i++) {
        uint64_t x = 0;
        for (unsigned p = 0; p < nplanes; p++) x = (x << 8) | pl[p][i];
        st(out, i, isz, rotr(x, rot, width, mask));
    }
}

#define CALL(k) split_planes_body(v, planes, nplanes, stride, k)
HUF_TWINS(split_planes_k, (const huf_vals *v, uint8_t *planes, unsigned nplanes, int64_t stride,
                           int isz),
          { SC_BY_SIZE(isz, CALL) return 0; })
#undef CALL
#define CALL(k) join_planes_body(pl, nplanes, rot, out, a, b, k)
HUF_TWINS(join_planes_k, (const uint8_t *const *pl, unsigned nplanes, unsigned rot, void *out,
                          int64_t a, int64_t b, int isz),
          { SC_BY_SIZE(isz, CALL) return 0; })
#undef CALL

static PyObject *huf_split_planes(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "split_planes";
    if (sc_nargs(nargs, 5, fn) < 0) return NULL;
    int64_t nplanes, stride;
    if (sc_i64(args[3], &nplanes) < 0 || sc_i64(args[4], &stride) < 0) return NULL;
    if (nplanes < 1 || nplanes > 8) return bad_arg(fn, "nplanes must be 1..8");
    sc_bufs bufs = {.n = 0};
    huf_vals v;
    sc_arr planes;
    PyObject *res = NULL;
    if (get_vals(&bufs, args[0], args[1], 8 * (unsigned)nplanes, fn, &v) < 0 ||
        sc_get(&bufs, args[2], 1, 1, "planes", &planes) < 0)
        goto done;
    if (stride < v.n || planes.n < nplanes * stride) { bad_arg(fn, "planes too small"); goto done; }
    int fast = huf_fast();
    Py_BEGIN_ALLOW_THREADS
    HUF_RUN(fast, split_planes_k, &v, planes.p, (unsigned)nplanes, stride, v.isz);
    Py_END_ALLOW_THREADS
    res = (Py_INCREF(Py_None), Py_None);
done:
    sc_release(&bufs);
    return res;
}

typedef struct {
    const uint8_t *pl[8];
    unsigned nplanes, rot;
    void *out;
    int64_t n;
    int isz, fast, parts;
} planes_split;

static void join_planes_part(void *ctx, int i) {
    planes_split *t = ctx;
    int64_t per = t->n / t->parts, a = i * per, b = i == t->parts - 1 ? t->n : a + per;
    HUF_RUN(t->fast, join_planes_k, t->pl, t->nplanes, t->rot, t->out, a, b, t->isz);
}

/* join_planes(rotate, out (w), threads, plane0, plane1, ...): out[i] is the bytes plane0[i],
 * plane1[i], ... (most significant first), rotated right by `rotate`; 1..8 planes of at least
 * len(out) bytes each, out's item size the number of planes. With threads > 1 and 1M values
 * or more, in ranges side by side. */
static PyObject *huf_join_planes(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "join_planes";
    int64_t rot, threads;
    if (nargs < 4 || nargs > 11) return bad_arg(fn, "takes rotate, out, threads and 1..8 planes");
    if (sc_i64(args[0], &rot) < 0 || sc_i64(args[2], &threads) < 0) return NULL;
    unsigned nplanes = (unsigned)(nargs - 3);
    if (rot < 0 || rot >= 8 * (int64_t)nplanes || threads < 1)
        return bad_arg(fn, "rotate must be below 8 * nplanes, threads >= 1");
    if (threads > SC_MAX_THREADS) threads = SC_MAX_THREADS;
    sc_bufs bufs = {.n = 0};
    sc_arr out, plane;
    PyObject *res = NULL;
    planes_split t = {.nplanes = nplanes, .rot = (unsigned)rot};
    if (sc_get(&bufs, args[1], 1, 0, "out", &out) < 0) goto done;
    if (out.itemsize != (Py_ssize_t)nplanes) {
        bad_arg(fn, "out's item size must be the number of planes");
        goto done;
    }
    for (unsigned p = 0; p < nplanes; p++) {
        if (sc_get(&bufs, args[3 + p], 0, 1, "plane", &plane) < 0) goto done;
        if (plane.n < out.n) {
            bad_arg(fn, "a plane is shorter than out");
            goto done;
        }
        t.pl[p] = plane.p;
    }
    t.out = out.p;
    t.n = out.n;
    t.isz = (int)out.itemsize;
    t.fast = huf_fast();
    t.parts = out.n >= (1 << 20) ? (int)threads : 1;
    Py_BEGIN_ALLOW_THREADS
    sc_parallel(t.parts, join_planes_part, &t);
    Py_END_ALLOW_THREADS
    res = (Py_INCREF(Py_None), Py_None);
done:
    sc_release(&bufs);
    return res;
}

/* ---- top fields and packed low bits --------------------------------------------------- */

/* split_fields(values, rotate, width, top, syms u16 (w), low u8 (w)): the top `top` bits of
 * each rotated value to syms, the other lb = width - top bits MSB-first into the bytes `low`,
 * zero-padded to whole 64-bit words (the bytes the frame holds). Blocks of k values go
 * between flushes of the bit writer (k * lb <= 56); fields wider than 28 bits go in halves. */
/* Values i .. n-1 one at a time into syms and the writer (fields wider than 28 bits in
 * halves), flushing after each: the tail every split_fields build ends with. */
SC_INLINE void split_fields_tail(const huf_vals *v, unsigned top, uint16_t *syms, huf_bitw *w,
                                 int64_t i, int isz) {
    const unsigned lb = v->width - top, half = lb / 2;
    const uint64_t lmask = width_mask(lb);
    for (; i < v->n; i++) {
        uint64_t x = val(v, i, isz);
        syms[i] = (uint16_t)(lb < 64 ? x >> lb : 0);
        uint64_t c = x & lmask;
        if (lb > 28) {
            bw_put(w, c >> half, lb - half);
            (void)bw_flush(w);
            bw_put(w, c & width_mask(half), half);
        } else {
            bw_put(w, c, lb);
        }
        (void)bw_flush(w); /* the caller sized low: every flush fits */
    }
}

SC_INLINE void split_fields_body(const huf_vals *v0, unsigned top, uint16_t *syms,
                                 uint8_t *low, int64_t nlow, int isz) {
    const huf_vals vv = *v0, *v = &vv; /* locals: the stores below cannot alias them */
    unsigned lb = v->width - top;
    uint64_t lmask = width_mask(lb);
    huf_bitw w = {low, low + nlow, 0, 0};
    int64_t i = 0;
    if (lb <= 28) {
        int64_t k = 56 / lb;
        for (; i + k <= v->n; i += k) {
            for (int64_t t = 0; t < k; t++) {
                uint64_t x = val(v, i + t, isz);
                syms[i + t] = (uint16_t)(x >> lb);
                bw_put(&w, x & lmask, lb);
            }
            (void)bw_flush(&w);
        }
    }
    split_fields_tail(v, top, syms, &w, i, isz);
    (void)bw_close(&w, low);
}

#if SC_X86
/* split_fields of 16-bit values with at most 7 low bits (top 9..15), sixteen values a step in
 * AVX2 lanes. The rotated values' top fields are stored as they are; the low fields are joined
 * MSB-first by halving: pairs by one multiply-add (f0 << lb | f1 in 32 bits), pairs of pairs and
 * then eights by shifts (8 * lb <= 56 bits in the low qword of each 128-bit lane), whose bytes
 * one shuffle reverses into stream order. Eight values fill exactly lb bytes, so each eight is
 * one 8-byte store at a byte boundary (the next store overwrites the bytes past lb); the scalar
 * tail takes the last values, or those whose store would pass the end of `low`. */
SC_TARGET("avx2") static void split16_avx2(const huf_vals *v, unsigned top, uint16_t *syms,
                                           uint8_t *low, int64_t nlow) {
    const uint16_t *vals = v->p;
    const unsigned lb = 16 - top, r = v->rot;
    const __m128i rl = _mm_cvtsi32_si128((int)r), rr = _mm_cvtsi32_si128((int)(16 - r)),
                  sl = _mm_cvtsi32_si128((int)lb), s2 = _mm_cvtsi32_si128((int)(2 * lb)),
                  s4 = _mm_cvtsi32_si128((int)(4 * lb));
    const __m256i lowm = _mm256_set1_epi16((short)((1 << lb) - 1)),
                  lo32 = _mm256_set1_epi64x(0xFFFFFFFF);
    /* multiply-add weights: the first value of each pair by 1 << lb, the second by 1 */
    const __m256i mul = _mm256_set1_epi32((int)((1u << 16) | (1u << lb)));
    /* byte t < lb of the stream takes byte lb - 1 - t of the lane's low qword */
    uint8_t idx[16];
    for (unsigned t = 0; t < 16; t++) idx[t] = t < lb ? (uint8_t)(lb - 1 - t) : 0x80;
    const __m256i rev = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)idx));
    int64_t i = 0;
    uint8_t *out = low;
    for (; i + 16 <= v->n && (out - low) + (int64_t)lb + 8 <= nlow; i += 16, out += 2 * lb) {
        __m256i x = _mm256_loadu_si256((const __m256i *)(vals + i));
        x = _mm256_or_si256(_mm256_sll_epi16(x, rl), _mm256_srl_epi16(x, rr));
        _mm256_storeu_si256((__m256i *)(syms + i), _mm256_srl_epi16(x, sl));
        __m256i p = _mm256_madd_epi16(_mm256_and_si256(x, lowm), mul);
        p = _mm256_or_si256(_mm256_sll_epi64(_mm256_and_si256(p, lo32), s2),
                            _mm256_srli_epi64(p, 32));
        p = _mm256_or_si256(_mm256_sll_epi64(p, s4), _mm256_srli_si256(p, 8));
        p = _mm256_shuffle_epi8(p, rev);
        _mm_storel_epi64((__m128i *)out, _mm256_castsi256_si128(p));
        _mm_storel_epi64((__m128i *)(out + lb), _mm256_extracti128_si256(p, 1));
    }
    huf_bitw w = {out, low + nlow, 0, 0};
    split_fields_tail(v, top, syms, &w, i, 2);
    (void)bw_close(&w, low);
}

/* The first part of a 32-bit split step (split32_avx2, split32n_avx2): eight values of vw
 * bits at p (bits above masked by wm) rotated left by rl within vw (rr = vw - rl), their top
 * fields (value >> sl, below 2**16) packed to 16 bits at syms, and their low fields (lowm)
 * joined in pairs, P = f0 << lb | f1, one a 64-bit lane: returned. */
SC_TARGET("avx2") SC_INLINE __m256i split32_pairs(const uint32_t *p, uint16_t *syms, __m256i wm,
                                                  __m128i rl, __m128i rr, __m128i sl,
                                                  __m256i lowm) {
    __m256i x = _mm256_and_si256(_mm256_loadu_si256((const __m256i *)p), wm);
    x = _mm256_and_si256(_mm256_or_si256(_mm256_sll_epi32(x, rl), _mm256_srl_epi32(x, rr)), wm);
    __m256i t = _mm256_srl_epi32(x, sl);
    t = _mm256_permute4x64_epi64(_mm256_packus_epi32(t, t), 0x08);
    _mm_storeu_si128((__m128i *)syms, _mm256_castsi256_si128(t));
    const __m256i f = _mm256_and_si256(x, lowm);
    return _mm256_or_si256(_mm256_sll_epi64(_mm256_and_si256(f, _mm256_set1_epi64x(0xFFFFFFFF)), sl),
                           _mm256_srli_epi64(f, 32));
}

/* split_fields of values of w <= 32 bits in 32-bit items with top 9..16 and low fields of lb =
 * w - top = 16..23 bits, eight values a step in AVX2 lanes. The rotated values' top fields
 * are packed to 16 bits. Their low fields
 * are joined in pairs (P = f0 << lb | f1, 2 * lb bits in each 64-bit lane), and the step's 8 *
 * lb bits written as two halves of 4 * lb bits, each half two 64-bit words (hi, lo) of a
 * left-aligned 128-bit value built by shifts of the pairs, per lane: hi = P0 << (64 - 2lb) |
 * P1 >> (4lb - 64), lo = P1 << (128 - 4lb) (a shift by 64 or more gives 0). The second half
 * goes at byte 4lb / 8 and, when lb is odd, starts 4 bits into it: its shifts are 4 less
 * (right: more), and the first half's last 4 bits (P1's) are put in its top. Each word's bytes
 * reversed (MSB-first), the halves are stored: eight values fill exactly lb bytes, so each
 * step starts at a byte boundary, and what its stores write past lb the next step's
 * overwrite; the scalar tail takes the last values, or those whose stores would pass the end
 * of `low`. (A pair a put and a flush of the bit writer took ~2.2 ns a value.) */
SC_TARGET("avx2") static void split32_avx2(const huf_vals *v, unsigned top, uint16_t *syms,
                                           uint8_t *low, int64_t nlow) {
    const uint32_t *vals = v->p;
    const unsigned vw = v->width, lb = vw - top, r = v->rot, at = lb / 2, odd = 4 * (lb & 1);
    const long long c1 = 64 - 2 * lb, c2 = 4 * lb - 64, c3 = 128 - 4 * lb;
    const __m128i rl = _mm_cvtsi32_si128((int)r), rr = _mm_cvtsi32_si128((int)(vw - r)),
                  sl = _mm_cvtsi32_si128((int)lb);
    const __m256i lowm = _mm256_set1_epi32((int)((1u << lb) - 1)),
                  wm = _mm256_set1_epi32((int)(uint32_t)v->mask),
                  odds = _mm256_set1_epi64x((1LL << odd) - 1),
                  /* lanes: first half (hi, lo), second half (hi, lo) */
                  ce = _mm256_setr_epi64x(c1, 64, c1 - odd, 64),
                  cor = _mm256_setr_epi64x(c2, 64, c2 + odd, 64),
                  col = _mm256_setr_epi64x(64, c3, 64, c3 - odd),
                  ct = _mm256_setr_epi64x(64, 64, 64 - odd, 64),
                  rev = _mm256_setr_epi8(7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8,
                                         7, 6, 5, 4, 3, 2, 1, 0, 15, 14, 13, 12, 11, 10, 9, 8);
    int64_t i = 0;
    uint8_t *out = low;
    for (; i + 8 <= v->n && (out - low) + (int64_t)at + 16 <= nlow; i += 8, out += lb) {
        const __m256i f = split32_pairs(vals + i, syms + i, wm, rl, rr, sl, lowm); /* P0..P3 */
        const __m256i e = _mm256_permute4x64_epi64(f, 0xA0),  /* P0 P0 P2 P2 */
                      o = _mm256_permute4x64_epi64(f, 0xF5),  /* P1 P1 P3 P3 */
                      p1 = _mm256_permute4x64_epi64(f, 0x55); /* P1 in every lane */
        __m256i h = _mm256_or_si256(_mm256_sllv_epi64(e, ce), _mm256_srlv_epi64(o, cor));
        h = _mm256_or_si256(h, _mm256_sllv_epi64(o, col));
        h = _mm256_or_si256(h, _mm256_sllv_epi64(_mm256_and_si256(p1, odds), ct));
        h = _mm256_shuffle_epi8(h, rev);
        _mm_storeu_si128((__m128i *)out, _mm256_castsi256_si128(h));
        _mm_storeu_si128((__m128i *)(out + at), _mm256_extracti128_si256(h, 1));
    }
    huf_bitw w = {out, low + nlow, 0, 0};
    split_fields_tail(v, top, syms, &w, i, 4);
    (void)bw_close(&w, low);
}

/* split_fields of values of w <= 32 bits in 32-bit items with top 1..16 and low fields of
 * lb = 1..15 bits (values shifted right past the zeros they end in: float32 at float16
 * precision, w 19), eight values a step: rotated, top fields packed to 16 bits as above, low
 * fields joined in pairs (2 * lb <= 30 bits) in AVX2 lanes and the pairs in halves (4 * lb <=
 * 60 bits), then the step's 8 * lb bits as one 128-bit integer stored big-endian: lb bytes,
 * the rest overwritten by the next step. The scalar tail as above. */
SC_TARGET("avx2") static void split32n_avx2(const huf_vals *v, unsigned top, uint16_t *syms,
                                            uint8_t *low, int64_t nlow) {
    const uint32_t *vals = v->p;
    const unsigned w = v->width, lb = w - top, r = v->rot;
    const __m128i rl = _mm_cvtsi32_si128((int)r), rr = _mm_cvtsi32_si128((int)(w - r)),
                  sl = _mm_cvtsi32_si128((int)lb), s2 = _mm_cvtsi32_si128((int)(2 * lb));
    const __m256i lowm = _mm256_set1_epi32((int)((1u << lb) - 1)),
                  wm = _mm256_set1_epi32((int)(uint32_t)v->mask);
    int64_t i = 0;
    uint8_t *out = low;
    for (; i + 8 <= v->n && (out - low) + 16 <= nlow; i += 8, out += lb) {
        const __m256i f = split32_pairs(vals + i, syms + i, wm, rl, rr, sl, lowm); /* P0..P3 */
        const __m256i e = _mm256_permute4x64_epi64(f, 0x08), /* P0 P2 */
                      o = _mm256_permute4x64_epi64(f, 0x0D); /* P1 P3 */
        const __m256i h = _mm256_or_si256(_mm256_sll_epi64(e, s2), o); /* halves */
        const unsigned __int128 g =
            ((unsigned __int128)(uint64_t)_mm256_extract_epi64(h, 0) << (4 * lb)) |
            (uint64_t)_mm256_extract_epi64(h, 1);
        const unsigned __int128 a = g << (128 - 8 * lb);
        uint64_t hi = __builtin_bswap64((uint64_t)(a >> 64)), lo = __builtin_bswap64((uint64_t)a);
        memcpy(out, &hi, 8);
        memcpy(out + 8, &lo, 8);
    }
    huf_bitw bw = {out, low + nlow, 0, 0};
    split_fields_tail(v, top, syms, &bw, i, 4);
    (void)bw_close(&bw, low);
}
#endif

#define CALL(k) split_fields_body(v, top, syms, low, nlow, k)
HUF_TWINS(split_fields_k, (const huf_vals *v, unsigned top, uint16_t *syms, uint8_t *low,
                           int64_t nlow, int isz),
          { SC_BY_SIZE(isz, CALL) return 0; })
#undef CALL

static PyObject *huf_split_fields(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "split_fields";
    if (sc_nargs(nargs, 6, fn) < 0) return NULL;
    int64_t width, top;
    if (sc_i64(args[2], &width) < 0 || sc_i64(args[3], &top) < 0) return NULL;
    if (width < 2 || width > 64 || top < 1 || top > 16 || top >= width)
        return bad_arg(fn, "need 1 <= top <= 16, top < width <= 64");
    sc_bufs bufs = {.n = 0};
    huf_vals v;
    sc_arr syms, low;
    PyObject *res = NULL;
    if (get_vals(&bufs, args[0], args[1], (unsigned)width, fn, &v) < 0 ||
        sc_get(&bufs, args[4], 1, 2, "syms", &syms) < 0 ||
        sc_get(&bufs, args[5], 1, 1, "low", &low) < 0)
        goto done;
    if (syms.n < v.n || low.n < (v.n * (width - top) + 63) / 64 * 8 || ((uintptr_t)syms.p & 1)) {
        bad_arg(fn, "syms or low too small, or unaligned");
        goto done;
    }
    int fast = huf_fast();
    Py_BEGIN_ALLOW_THREADS
#if SC_X86
    if (fast && v.isz == 2 && v.width == 16 && top >= 9 && HUF_LE)
        split16_avx2(&v, (unsigned)top, syms.p, low.p, low.n);
    else if (fast && v.isz == 4 && v.width <= 32 && top >= 9 && v.width - top >= 16 &&
             v.width - top <= 23 && HUF_LE)
        split32_avx2(&v, (unsigned)top, syms.p, low.p, low.n);
    else if (fast && v.isz == 4 && v.width <= 32 && v.width - top <= 15 && HUF_LE)
        split32n_avx2(&v, (unsigned)top, syms.p, low.p, low.n);
    else
#endif
        HUF_RUN(fast, split_fields_k, &v, (unsigned)top, syms.p, low.p, low.n, v.isz);
    Py_END_ALLOW_THREADS
    res = (Py_INCREF(Py_None), Py_None);
done:
    sc_release(&bufs);
    return res;
}

/* join_fields(syms u16, low u64, rotate, width, top, out (w)): inverse of split_fields. */
SC_INLINE void join_fields_body(const uint16_t *syms, const uint64_t *low, unsigned rot,
                                unsigned width, unsigned top, void *out, int64_t n, int isz) {
    unsigned lb = width - top;
    uint64_t lmask = width_mask(lb), mask = width_mask(width), acc = 0;
    unsigned nacc = 0;
    int64_t q = 0;
    for (int64_t i = 0; i < n; i++) {
        uint64_t fld;
        if (nacc >= lb) {
            nacc -= lb;
            fld = nacc < 64 ? (acc >> nacc) & lmask : 0;
        } else {
            uint64_t nxt = low[q++];
            unsigned need = lb - nacc;
            fld = ((acc << need) | (nxt >> (64 - need))) & lmask;
            acc = nxt;
            nacc = 64 - need;
        }
        uint64_t x = (((uint64_t)syms[i] << lb) | fld) & mask;
        st(out, i, isz, rotr(x, rot, width, mask));
    }
}

#define CALL(k) join_fields_body(syms, low, rot, width, top, out, n, k)
HUF_TWINS(join_fields_k, (const uint16_t *syms, const uint64_t *low, unsigned rot, unsigned width,
                          unsigned top, void *out, int64_t n, int isz),
          { SC_BY_SIZE(isz, CALL) return 0; })
#undef CALL

static PyObject *huf_join_fields(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *fn = "join_fields";
    if (sc_nargs(nargs, 6, fn) < 0) return NULL;
    int64_t rot, width, top;
    if (sc_i64(args[2], &rot) < 0 || sc_i64(args[3], &width) < 0 || sc_i64(args[4], &top) < 0)
        return NULL;
    if (width < 2 || width > 64 || top < 1 || top > 16 || top >= width || rot < 0 || rot >= width)
        return bad_arg(fn, "need 1 <= top <= 16, top < width <= 64, rotate < width");
    sc_bufs bufs = {.n = 0};
    sc_arr syms, low, out;
    PyObject *res = NULL;
    if (sc_get(&bufs, args[0], 0, 2, "syms", &syms) < 0 ||
        sc_get(&bufs, args[1], 0, 8, "low", &low) < 0 ||
        sc_get(&bufs, args[5], 1, 0, "out", &out) < 0)
        goto done;
    if (!item_size_ok(out.itemsize) || syms.n < out.n ||
        low.n < (out.n * (width - top) + 63) / 64 || !aligned8(&low) || ((uintptr_t)syms.p & 1)) {
        bad_arg(fn, "syms or low too small for out, or unaligned");
        goto done;
    }
    int fast = huf_fast();
    Py_BEGIN_ALLOW_THREADS
    HUF_RUN(fast, join_fields_k, syms.p, low.p, (unsigned)rot, (unsigned)width, (unsigned)top,
            out.p, out.n, (int)out.itemsize);
    Py_END_ALLOW_THREADS
    res = (Py_INCREF(Py_None), Py_None);
done:
    sc_release(&bufs);
    return res;
}

/* join_fields16: 16-bit values whose low field has lb = 16 - top <= 8 bits; `low` is the raw
 * bytes of the packed fields (MSB-first), `out` may be `syms`. Eight values' fields take lb
 * whole bytes, so each block of 8 is one vector step with no bit reader carried from value
 * to value: a 16-byte load at byte 8j*lb/8, a byte shuffle putting each field's two bytes in
 * its 16-bit lane, a multiply (a per-lane left shift) and a right shift cutting the field
 * out, the join with the top fields and the rotation. The scalar twin reads byte pairs. */

/* Values [from, n) one at a time. */
static void join16_scalar(const uint16_t *syms, const uint8_t *low, int64_t nlow, unsigned rot,
                          unsigned lb, uint16_t *out, int64_t from, int64_t n) {
    uint32_t lmask = (1u << lb) - 1;
    for (int64_t i = from; i < n; i++) {
        int64_t pos = i * lb, at = pos >> 3;
        uint32_t pair = (uint32_t)low[at] << 8;
        if (at + 1 < nlow) pair |= low[at + 1];
        uint32_t fld = (pair >> (16 - lb - (pos & 7))) & lmask;
        uint32_t v = ((uint32_t)syms[i] << lb) | fld;
        out[i] = (uint16_t)(((v >> rot) | (v << (16 - rot))) & 0xFFFF);
    }
}

#if SC_X86
/* The shuffle (pairs of bytes, high byte of each field first) and the per-lane multipliers. */
static void join16_consts(unsigned lb, uint8_t pick[16], uint16_t mul[8]) {
    for (unsigned k = 0; k < 8; k++) {
        pick[2 * k] = (uint8_t)(k * lb / 8 + 1);
        pick[2 * k + 1] = (uint8_t)(k * lb / 8);
        mul[k] = (uint16_t)(1u << (k * lb % 8));
    }
}

SC_TARGET("ssse3") SC_INLINE __m128i join8(__m128i raw, __m128i top, __m128i pick, __m128i mul,
                                           __m128i cut, __m128i lbv, __m128i rr, __m128i rl) {
    __m128i fld = _mm_srl_epi16(_mm_mullo_epi16(_mm_shuffle_epi8(raw, pick), mul), cut);
    __m128i v = _mm_or_si128(_mm_sll_epi16(top, lbv), fld);
    return _mm_or_si128(_mm_srl_epi16(v, rr), _mm_sll_epi16(v, rl));
}

/* Blocks of 8 values from block `from`; returns the values done. */
SC_TARGET("ssse3") static int64_t join16_ssse3(const uint16_t *syms, const uint8_t *low,
                                               int64_t nlow, unsigned rot, unsigned lb,
                                               uint16_t *out, int64_t n, int64_t from) {
    int64_t nblocks = nlow >= 16 ? (nlow - 16) / lb + 1 : 0;
    if (nblocks > n / 8) nblocks = n / 8;
    uint8_t pick_b[16];
    uint16_t mul_b[8];
    join16_consts(lb, pick_b, mul_b);
    __m128i pick = _mm_loadu_si128((const __m128i *)pick_b);
    __m128i mul = _mm_loadu_si128((const __m128i *)mul_b);
    __m128i cut = _mm_cvtsi32_si128(16 - (int)lb), lbv = _mm_cvtsi32_si128((int)lb);
    __m128i rr = _mm_cvtsi32_si128((int)rot), rl = _mm_cvtsi32_si128(16 - (int)rot);
    for (int64_t j = from / 8; j < nblocks; j++) {
        __m128i raw = _mm_loadu_si128((const __m128i *)(low + j * lb));
        __m128i top = _mm_loadu_si128((const __m128i *)(syms + 8 * j));
        _mm_storeu_si128((__m128i *)(out + 8 * j), join8(raw, top, pick, mul, cut, lbv, rr, rl));
    }
    return nblocks > from / 8 ? 8 * nblocks : from;
}

/* Blocks of 16 values (two blocks of 8, one per 128-bit lane), then the SSSE3 step. */
SC_TARGET("avx2") static int64_t join16_avx2(const uint16_t *syms, const uint8_t *low,
                                             int64_t nlow, unsigned rot, unsigned lb,
                                             uint16_t *out, int64_t n) {
    int64_t nb = nlow >= 16 + (int64_t)lb ? (nlow - 16 - lb) / (2 * lb) + 1 : 0;
    if (nb > n / 16) nb = n / 16;
    uint8_t pick_b[16];
    uint16_t mul_b[8];
    join16_consts(lb, pick_b, mul_b);
    __m256i pick = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)pick_b));
    __m256i mul = _mm256_broadcastsi128_si256(_mm_loadu_si128((const __m128i *)mul_b));
    __m128i cut = _mm_cvtsi32_si128(16 - (int)lb), lbv = _mm_cvtsi32_si128((int)lb);
    __m128i rr = _mm_cvtsi32_si128((int)rot), rl = _mm_cvtsi32_si128(16 - (int)rot);
    for (int64_t j = 0; j < nb; j++) {
        const uint8_t *b = low + 2 * j * lb;
        __m256i raw = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)b)),
            _mm_loadu_si128((const __m128i *)(b + lb)), 1);
        __m256i top = _mm256_loadu_si256((const __m256i *)(syms + 16 * j));
        __m256i fld = _mm256_srl_epi16(_mm256_mullo_epi16(_mm256_shuffle_epi8(raw, pick), mul), cut);
        __m256i v = _mm256_or_si256(_mm256_sll_epi16(top, lbv), fld);
        v = _mm256_or_si256(_mm256_srl_epi16(v, rr), _mm256_sll_epi16(v, rl));
        _mm256_storeu_si256((__m256i *)(out + 16 * j), v);
    }
    return join16_ssse3(syms, low, nlow, rot, lb, out, n, 16 * nb);
}
#endif

/* join_fields32: values of vw <= 32 bits in 32-bit items whose low field has lb = vw - top
 * bits, 1 <= lb <= 24 (the float32 fields split, top 8..16, vw 32; or a run of them shifted
 * right past the zeros its values end in, vw below 32, each value rotated within vw bits and
 * shifted back left by 32 - vw); `low` is the raw bytes of the packed fields (MSB-first).
 * Eight values' fields take lb whole bytes; the AVX2 step reads a block's first four fields
 * from a 16-byte load at its start and the last four from one at byte 4*lb/8, puts each
 * field's four bytes big-endian in its 32-bit lane by a byte shuffle, shifts each lane left
 * by its bit offset and right by 32 - lb, joins the top fields and rotates. The scalar twin
 * reads four bytes per value (fewer at the end of the section). */

/* v (below 2**w) rotated right by r within w bits, then shifted left by 32 - w: a value of a
 * run whose low fields were shifted right past the 32 - w zero bits it ends in. (The bits the
 * rotation puts above w leave the 32 bits at the shift.) */
SC_INLINE uint32_t rotr32(uint32_t v, unsigned r, unsigned w) {
    return (r ? (v >> r) | (v << (w - r)) : v) << (32 - w);
}

/* Values [from, n) one at a time. */
static void join32_scalar(const uint16_t *syms, const uint8_t *low, int64_t nlow, unsigned rot,
                          unsigned lb, unsigned vw, uint32_t *out, int64_t from, int64_t n) {
    uint32_t lmask = (1u << lb) - 1;
    for (int64_t i = from; i < n; i++) {
        int64_t pos = i * lb, at = pos >> 3;
        uint32_t quad = 0;
        if (SC_LIKELY(at + 4 <= nlow)) {
            quad = ((uint32_t)low[at] << 24) | ((uint32_t)low[at + 1] << 16) |
                   ((uint32_t)low[at + 2] << 8) | low[at + 3];
        } else {
            for (int k = 0; k < 4; k++) quad |= at + k < nlow ? (uint32_t)low[at + k] << (24 - 8 * k) : 0;
        }
        uint32_t fld = (quad >> (32 - lb - (unsigned)(pos & 7))) & lmask;
        out[i] = rotr32(((uint32_t)syms[i] << lb) | fld, rot, vw);
    }
}

#if SC_X86
/* Returns the values done (whole blocks of 8 from the start). */
SC_TARGET("avx2") static int64_t join32_avx2(const uint16_t *syms, const uint8_t *low,
                                             int64_t nlow, unsigned rot, unsigned lb,
                                             unsigned vw, uint32_t *out, int64_t n) {
    int64_t half = 4 * lb / 8; /* the byte where the second load starts */
    int64_t nb = nlow >= half + 16 ? (nlow - half - 16) / lb + 1 : 0;
    if (nb > n / 8) nb = n / 8;
    uint8_t pick_b[32];
    uint32_t sh_b[8];
    for (unsigned k = 0; k < 8; k++) {
        unsigned bit = k * lb, rel = bit / 8 - (k >= 4 ? (unsigned)half : 0);
        for (unsigned b = 0; b < 4; b++) pick_b[4 * k + b] = (uint8_t)(rel + 3 - b);
        sh_b[k] = bit % 8;
    }
    __m256i pick = _mm256_loadu_si256((const __m256i *)pick_b);
    __m256i sh = _mm256_loadu_si256((const __m256i *)sh_b);
    __m128i cut = _mm_cvtsi32_si128(32 - (int)lb), lbv = _mm_cvtsi32_si128((int)lb);
    __m128i rr = _mm_cvtsi32_si128((int)rot), rl = _mm_cvtsi32_si128(rot ? (int)(vw - rot) : 32),
            z = _mm_cvtsi32_si128(32 - (int)vw); /* as rotr32: the shift drops what is above vw */
    for (int64_t j = 0; j < nb; j++) {
        const uint8_t *b = low + j * lb;
        __m256i raw = _mm256_inserti128_si256(
            _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)b)),
            _mm_loadu_si128((const __m128i *)(b + half)), 1);
        __m256i fld = _mm256_srl_epi32(_mm256_sllv_epi32(_mm256_shuffle_epi8(raw, pick), sh), cut);
        __m256i top = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(syms + 8 * j)));
        __m256i v = _mm256_or_si256(_mm256_sll_epi32(top, lbv), fld);
        v = _mm256_or_si256(_mm256_srl_epi32(v, rr), _mm256_sll_epi32(v, rl));
        _mm256_storeu_si256((__m256i *)(out + 8 * j), _mm256_sll_epi32(v, z));
    }
    return 8 * nb;
}
#endif

/* Join `n` values of `width` bits (16 or 32): the SIMD steps, then the scalar twin's tail. */
static void join_values(unsigned width, const uint16_t *syms, const uint8_t *low, int64_t nlow,
                        unsigned rot, unsigned lb, unsigned vw, void *out, int64_t n,
                        int level) {
    int64_t done = 0;
#if SC_X86 && HUF_LE
    if (width == 16 && level >= SC_SIMD_AVX2) done = join16_avx2(syms, low, nlow, rot, lb, out, n);
    else if (width == 16 && level >= SC_SIMD_SSSE3)
        done = join16_ssse3(syms, low, nlow, rot, lb, out, n, 0);
    else if (width == 32 && level >= SC_SIMD_AVX2)
        done = join32_avx2(syms, low, nlow, rot, lb, vw, out, n);
#else
    (void)level;
#endif
    if (width == 16) join16_scalar(syms, low, nlow, rot, lb, out, done, n);
    else join32_scalar(syms, low, nlow, rot, lb, vw, out, done, n);
}

/* A join over `parts` threads: part i joins the values of a run of whole blocks of 8 (eight
 * values' low fields are exactly lb bytes, so a block boundary is a byte boundary). */
typedef struct {
    unsigned width;
    const uint16_t *syms;
    const uint8_t *low;
    int64_t nlow, n, per, isz;
    unsigned rot, lb, vw;
    char *out;
    int level, parts;
} join_split;

static void join_part(void *ctx, int i) {
    join_split *t = ctx;
    int64_t a = i * t->per, b = i == t->parts - 1 ? t->n : a + t->per;
    int64_t at = a / 8 * t->lb;
    join_values(t->width, t->syms + a, t->low + at, t->nlow - at, t->rot, t->lb, t->vw,
                t->out + a * t->isz, b - a, t->level);
}

/* join_fields16 / join_fields32 (syms u16, low u8, rotate, top, out (w)[, threads[, value
 * width]]): values of `width` bits (16: top 8..15, out u16, may be syms; 32: top 8..16, out
 * u32, and a value width vw of top + 1 .. 32 bits, lb = vw - top <= 24: the values rotated
 * within vw bits and shifted left by 32 - vw). With threads > 1 and enough values (16: 512K,
 * 32: 256K), in parts side by side (the same bits). */
static PyObject *join_fields_call(const char *fn, unsigned width, PyObject *const *args,
                                  Py_ssize_t nargs) {
    int64_t threads = 1, vw = width;
    if (width == 32 && nargs == 7) {
        if (sc_i64(args[6], &vw) < 0) return NULL;
        nargs = 6;
    }
    if (nargs == 6) {
        if (sc_i64(args[5], &threads) < 0) return NULL;
        if (threads < 1) return bad_arg(fn, "threads must be >= 1");
        if (threads > SC_MAX_THREADS) threads = SC_MAX_THREADS;
        nargs = 5;
    }
    if (sc_nargs(nargs, 5, fn) < 0) return NULL;
    int64_t rot, top, top_max = width == 16 ? 15 : 16;
    if (sc_i64(args[2], &rot) < 0 || sc_i64(args[3], &top) < 0) return NULL;
    if (top < 8 || top > top_max || rot < 0 || rot >= vw || vw <= top || vw > (int64_t)width ||
        vw - top > 24)
        return bad_arg(fn, width == 16 ? "need top 8..15 and rotate 0..15"
                                       : "need top 8..16, a value width of top + 1 .. 32 and "
                                         "at most 24 more than top, rotate below it");
    int64_t isz = width / 8;
    sc_bufs bufs = {.n = 0};
    sc_arr syms, low, out;
    PyObject *res = NULL;
    if (sc_get(&bufs, args[0], 0, 2, "syms", &syms) < 0 ||
        sc_get(&bufs, args[1], 0, 1, "low", &low) < 0 ||
        sc_get(&bufs, args[4], 1, isz, "out", &out) < 0)
        goto done;
    unsigned lb = (unsigned)(vw - top);
    if (syms.n < out.n || 8 * low.n < out.n * (int64_t)lb || ((uintptr_t)syms.p & 1) ||
        ((uintptr_t)out.p & (isz - 1))) {
        bad_arg(fn, "syms or low too small for out, or unaligned");
        goto done;
    }
    int level = sc_simd;
    int parts = out.n >= (width == 16 ? 1 << 19 : 1 << 18) ? (int)threads : 1;
    Py_BEGIN_ALLOW_THREADS
    if (parts > 1) {
        join_split t = {width, syms.p, low.p, low.n, out.n, out.n / parts / 8 * 8, isz,
                        (unsigned)rot, lb, (unsigned)vw, out.p, level, parts};
        sc_parallel(parts, join_part, &t);
    } else {
        join_values(width, syms.p, low.p, low.n, (unsigned)rot, lb, (unsigned)vw, out.p,
                    out.n, level);
    }
    Py_END_ALLOW_THREADS
    res = (Py_INCREF(Py_None), Py_None);
done:
    sc_release(&bufs);
    return res;
}

static PyObject *huf_join_fields16(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    return join_fields_call("join_fields16", 16, args, nargs);
}

static PyObject *huf_join_fields32(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    return join_fields_call("join_fields32", 32, args, nargs);
}

#define HUF_FN(name) {#name, (PyCFunction)(void (*)(void))name, METH_FASTCALL, NULL}

PyMethodDef sc_huffman_methods[] = {
    HUF_FN(huf_encode_streams),
    HUF_FN(huf_canonical_codes),
    HUF_FN(huf_code_lengths),
    HUF_FN(huf_huffman_costs),
    HUF_FN(huf_encode_coded),
    HUF_FN(huf_decode_coded_width),
    HUF_FN(huf_build_decoder),
    HUF_FN(huf_decode_streams),
    HUF_FN(huf_decode_coded),
    HUF_FN(huf_histogram),
    HUF_FN(huf_entropy_bits),
    HUF_FN(huf_entropy_bits_blocks),
    HUF_FN(huf_histogram_blocks16),
    HUF_FN(huf_clear_blocks),
    HUF_FN(huf_argmax_blocks),
    HUF_FN(huf_used_bins),
    HUF_FN(huf_value_histograms16_blocks),
    HUF_FN(huf_plan16),
    HUF_FN(huf_stages_floor16),
    HUF_FN(huf_top_histogram),
    HUF_FN(huf_value_histograms),
    HUF_FN(huf_value_histograms16),
    HUF_FN(huf_split_planes),
    HUF_FN(huf_join_planes),
    HUF_FN(huf_split_fields),
    HUF_FN(huf_join_fields),
    HUF_FN(huf_join_fields16),
    HUF_FN(huf_join_fields32),
    {NULL, NULL, 0, NULL},
};
