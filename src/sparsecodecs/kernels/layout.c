/* Kernels of the layout room: the bitmask, N:M and CSR/CSC scatters and splits, their non-zero
 * fill variants, and the row modes the fill planner uses. Python side: codecs/_kernels.py.
 *
 * Every function here checks the sizes of the buffers it is given against each other (a
 * mismatch is a bug of the caller: ValueError) and checks whatever it reads that a frame could
 * have set (pattern codes, CSR pointers, how many values a mask asks for): such a problem
 * returns a negative code that the Python layer turns into FrameLayoutError. One exception,
 * said where it is: csr_scatter trusts the CSR indices to decode_parts' check unless asked
 * to check them. Tables
 * made by the library itself (nm_tables' positions, code_of, shifts) are checked once per call
 * against the sizes they index, so even a wrong table cannot make a kernel leave its buffers.
 *
 * Item sizes are 1, 2, 4 or 8 bytes (values are unsigned bit patterns; index arrays may be
 * signed: they are read as unsigned, so a negative index fails the range check). The generic
 * bodies below are `SC_INLINE` functions taking item sizes as parameters; the dispatchers call
 * them with constant sizes for the combinations callers use, so the compiler emits one
 * specialised loop per combination (what numba did per dtype signature).
 *
 * SIMD: bitmask scatter/split of 1-, 2- (SSSE3 pshufb per mask byte) and 4-byte items (AVX2
 * vpermd); the 2:4 compose of 16-bit values (SSSE3 pshufb); byte indices into tables of up to
 * 16 entries (SSSE3 pshufb); popcount (POPCNT) and the row modes' zero count compiled for
 * AVX2; the window layout's 2-byte kept values (AVX2). Each has the scalar twin that
 * `use_simd("scalar")` selects; sc_simd is read once per call, before the GIL is released.
 *
 * Helpers that would belong in native.h (ld/st by item size, the error helper) sit here, at
 * the top of this file, to keep native.h mergeable.
 */
#include "native.h"
#include "window.h"

#include <stdarg.h>
#include <stdlib.h>
#ifdef __linux__
#include <sys/mman.h>
#include <unistd.h>
#endif

/* -- helpers ---------------------------------------------------------------------------- */

/* Item i of an array of `size`-byte items, by memcpy: data arrays may sit at any address
 * (a frame's sections are views at any byte offset), and a typed load of a misaligned item is
 * undefined behaviour. Compiles to one plain (unaligned) load or store. */
SC_INLINE uint64_t ld(const void *p, Py_ssize_t size, Py_ssize_t i) {
    const char *q = (const char *)p + i * size;
    switch (size) {
    case 1: return *(const uint8_t *)q;
    case 2: { uint16_t x; memcpy(&x, q, 2); return x; }
    case 4: { uint32_t x; memcpy(&x, q, 4); return x; }
    default: { uint64_t x; memcpy(&x, q, 8); return x; }
    }
}

SC_INLINE void st(void *p, Py_ssize_t size, Py_ssize_t i, uint64_t v) {
    char *q = (char *)p + i * size;
    switch (size) {
    case 1: *(uint8_t *)q = (uint8_t)v; break;
    case 2: { uint16_t x = (uint16_t)v; memcpy(q, &x, 2); break; }
    case 4: { uint32_t x = (uint32_t)v; memcpy(q, &x, 4); break; }
    default: memcpy(q, &v, 8); break;
    }
}

/* Set ValueError (a caller's bug: sizes that do not fit) and return -1. */
static int fail(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    PyErr_FormatV(PyExc_ValueError, fmt, ap);
    va_end(ap);
    return -1;
}

/* sc_get, with numpy's ValueError for a strided (or read-only, where written) array turned
 * into BufferError, the contract's error (kernels/__init__.py). A candidate for native.h. */
static int get(sc_bufs *s, PyObject *o, int writable, Py_ssize_t itemsize, const char *what,
               sc_arr *a) {
    if (sc_get(s, o, writable, itemsize, what, a) == 0) {
        /* An argument of a fixed item size (a table, codes, counts) is read through typed
         * pointers: it must be aligned. Data arrays (itemsize 0: any) go through ld/st. */
        if (itemsize > 1 && (uintptr_t)a->p % (uintptr_t)itemsize) {
            PyErr_Format(PyExc_BufferError, "%s: a %zd-byte array must be aligned", what,
                         itemsize);
            return -1;
        }
        return 0;
    }
    if (PyErr_ExceptionMatches(PyExc_ValueError)) {
#if PY_VERSION_HEX >= 0x030C0000
        PyObject *exc = PyErr_GetRaisedException();
        PyErr_Format(PyExc_BufferError, "%s: %S (kernels take C-contiguous%s arrays)", what,
                     exc, writable ? ", writable" : "");
        Py_XDECREF(exc);
#else
        PyObject *t, *v, *tb;
        PyErr_Fetch(&t, &v, &tb);
        PyErr_Format(PyExc_BufferError, "%s: %S (kernels take C-contiguous%s arrays)", what,
                     v ? v : Py_None, writable ? ", writable" : "");
        Py_XDECREF(t);
        Py_XDECREF(v);
        Py_XDECREF(tb);
#endif
    }
    return -1;
}

static int item_ok(const sc_arr *a, const char *fn, const char *what) {
    Py_ssize_t s = a->itemsize;
    if (s == 1 || s == 2 || s == 4 || s == 8) return 0;
    return fail("%s: %s must have items of 1, 2, 4 or 8 bytes, got %zd", fn, what, s);
}

/* The arguments of a kernel taking three arrays, two read and the last written. */
static int get_two_one(sc_bufs *s, PyObject *const *args, Py_ssize_t nargs, const char *fn,
                       const char *n0, sc_arr *a0, const char *n1, sc_arr *a1, const char *n2,
                       sc_arr *a2) {
    if (sc_nargs(nargs, 3, fn) < 0 || get(s, args[0], 0, 0, n0, a0) < 0 ||
        get(s, args[1], 0, 0, n1, a1) < 0 || get(s, args[2], 1, 0, n2, a2) < 0)
        return -1;
    return 0;
}

#define FASTCALL(name) \
    static PyObject *py_##name(PyObject *self, PyObject *const *args, Py_ssize_t nargs)

/* Byte tables, built once under the GIL (init_tables is called before any GIL release). */
static uint8_t bit_pos[256][8];
static uint8_t bit_cnt[256];
static uint8_t expand16[256][16] __attribute__((aligned(16)));
static uint8_t compress16[256][16] __attribute__((aligned(16)));
static uint8_t expand8[256][16] __attribute__((aligned(16)));
static uint8_t compress8[256][16] __attribute__((aligned(16)));
static int32_t expand32[256][8] __attribute__((aligned(32)));
static int32_t compress32[256][8] __attribute__((aligned(32)));
static int tables_ready = 0;

static void init_tables(void) {
    if (tables_ready) return;
    for (int b = 0; b < 256; b++) {
        int c = 0;
        for (int k = 0; k < 8; k++)
            if ((b >> k) & 1) bit_pos[b][c++] = (uint8_t)k;
        bit_cnt[b] = (uint8_t)c;
        memset(expand16[b], 0x80, 16);
        memset(compress16[b], 0x80, 16);
        memset(expand8[b], 0x80, 16);
        memset(compress8[b], 0x80, 16);
        memset(expand32[b], 0, sizeof expand32[b]);
        memset(compress32[b], 0, sizeof compress32[b]);
        for (int r = 0; r < c; r++) {
            int slot = bit_pos[b][r];
            expand16[b][2 * slot] = (uint8_t)(2 * r);
            expand16[b][2 * slot + 1] = (uint8_t)(2 * r + 1);
            compress16[b][2 * r] = (uint8_t)(2 * slot);
            compress16[b][2 * r + 1] = (uint8_t)(2 * slot + 1);
            expand8[b][slot] = (uint8_t)r;
            compress8[b][r] = (uint8_t)slot;
            expand32[b][slot] = r;
            compress32[b][r] = slot;
        }
    }
    tables_ready = 1;
}

/* -- popcount --------------------------------------------------------------------------- */

SC_INLINE int64_t popcount_body(const uint8_t *p, Py_ssize_t n) {
    int64_t total = 0;
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        total += __builtin_popcountll(w);
    }
    for (; i < n; i++) total += __builtin_popcount(p[i]);
    return total;
}

static int64_t popcount_scalar(const uint8_t *p, Py_ssize_t n) { return popcount_body(p, n); }
#if SC_X86
SC_TARGET("popcnt") static int64_t popcount_hw(const uint8_t *p, Py_ssize_t n) {
    return popcount_body(p, n);
}
#endif

/* mask_popcount(mask) -> set bits of the byte array. */
FASTCALL(mask_popcount) {
    sc_bufs s = {.n = 0};
    sc_arr mask = {0};
    PyObject *res = NULL;
    if (sc_nargs(nargs, 1, "mask_popcount") < 0) return NULL;
    if (get(&s, args[0], 0, 1, "mask", &mask) < 0) goto done;
    int level = sc_simd;
    int64_t total;
    Py_BEGIN_ALLOW_THREADS
#if SC_X86
    /* every CPU with AVX2 has POPCNT */
    total = level >= SC_SIMD_AVX2 ? popcount_hw(mask.p, mask.n) : popcount_scalar(mask.p, mask.n);
#else
    (void)level;
    total = popcount_scalar(mask.p, mask.n);
#endif
    Py_END_ALLOW_THREADS
    res = PyLong_FromLongLong(total);
done:
    sc_release(&s);
    return res;
}

/* -- fill ------------------------------------------------------------------------------- */

/* out (rows x cols) = fill[0], or fill[r] on row r when nfill > 1 (then rows == nfill). */
SC_INLINE void fill_body(void *restrict out, Py_ssize_t n, const void *restrict fill, Py_ssize_t nfill,
                         Py_ssize_t cols, Py_ssize_t size) {
    if (nfill == 1) {
        uint64_t f = ld(fill, size, 0);
        if (f == 0) {
            memset(out, 0, (size_t)(n * size));
            return;
        }
        for (Py_ssize_t i = 0; i < n; i++) st(out, size, i, f);
        return;
    }
    for (Py_ssize_t r = 0; r < nfill; r++) {
        uint64_t f = ld(fill, size, r);
        for (Py_ssize_t j = 0; j < cols; j++) st(out, size, r * cols + j, f);
    }
}

static void fill_rows_any(void *restrict out, Py_ssize_t n, const void *restrict fill, Py_ssize_t nfill,
                          Py_ssize_t cols, Py_ssize_t size) {
    switch (size) {
    case 1: fill_body(out, n, fill, nfill, cols, 1); break;
    case 2: fill_body(out, n, fill, nfill, cols, 2); break;
    case 4: fill_body(out, n, fill, nfill, cols, 4); break;
    default: fill_body(out, n, fill, nfill, cols, 8); break;
    }
}

/* The fill buffer of `n` items laid out as rows of `cols`: 1 item, or one per row. */
static int check_fill(const sc_arr *fill, const sc_arr *like, Py_ssize_t rows, const char *fn) {
    if (fill->itemsize != like->itemsize)
        return fail("%s: fill has %zd-byte items, the data %zd", fn, fill->itemsize,
                    like->itemsize);
    if (fill->n != 1 && fill->n != rows)
        return fail("%s: fill has %zd items, expected 1 or rows=%zd", fn, fill->n, rows);
    return 0;
}

/* The arguments (data, fill, cols) of fill_rows and count_fill, checked: the data in rows of
 * cols, the fill 1 item or one per row, of the data's item size. */
static int get_fill_args(sc_bufs *s, PyObject *const *args, Py_ssize_t nargs, const char *fn,
                         int writable, sc_arr *data, sc_arr *fill, int64_t *cols) {
    if (sc_nargs(nargs, 3, fn) < 0 || get(s, args[0], writable, 0, "data", data) < 0 ||
        item_ok(data, fn, "data") < 0 || get(s, args[1], 0, 0, "fill", fill) < 0 ||
        sc_i64(args[2], cols) < 0)
        return -1;
    if (fill->n == 0 || (fill->n > 1 && (*cols < 0 || data->n != fill->n * *cols)))
        return fail("%s: %zd fill items do not fit %zd items in rows of %lld", fn, fill->n,
                    data->n, (long long)*cols);
    return check_fill(fill, data, fill->n, fn);
}

/* touch_pages(buf[, cursor]): a zero byte written every 4096 bytes of a writable buffer, and at
 * its last byte (its pages faulted in, the kernel zeroing them) with the GIL released: a fresh
 * output's first touch, done on one thread while another decodes (codecs/hybrid.py). With `cursor` (one
 * int64, 0 at first), the buffer is touched in runs of TOUCH_RUN bytes, each claimed by an
 * atomic add to the cursor: calls on several threads with the same cursor share the pages
 * still untouched, each returning once no run is left to claim (a run another call claimed
 * may still be under way). */
#define TOUCH_RUN ((uint64_t)1 << 21)
FASTCALL(touch_pages) {
    sc_bufs s = {.n = 0};
    sc_arr buf = {0}, cur = {0};
    PyObject *res = NULL;
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "touch_pages takes buf and an optional cursor");
        return NULL;
    }
    if (get(&s, args[0], 1, 0, "buf", &buf) < 0 ||
        (nargs == 2 && get(&s, args[1], 1, 8, "cursor", &cur) < 0))
        goto done;
    if (nargs == 2 && cur.n < 1) {
        fail("touch_pages: cursor must hold one int64");
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    volatile uint8_t *p = (volatile uint8_t *)buf.p;
    const uint64_t n = (uint64_t)buf.n * (uint64_t)buf.itemsize;
    uint64_t alone = 0, *c = nargs == 2 ? (uint64_t *)cur.p : &alone; /* no cursor: our own */
    for (;;) { /* unsigned: a cursor past n (or "negative") claims nothing */
        const uint64_t i = __atomic_fetch_add(c, TOUCH_RUN, __ATOMIC_RELAXED);
        if (i >= n) break;
        const uint64_t end = n - i < TOUCH_RUN ? n : i + TOUCH_RUN;
        for (uint64_t j = i; j < end; j += 4096) p[j] = 0;
        if (end == n) p[n - 1] = 0; /* the last page, where the buffer does not start on one */
    }
    Py_END_ALLOW_THREADS
    res = (Py_INCREF(Py_None), Py_None);
done:
    sc_release(&s);
    return res;
}
#undef TOUCH_RUN

/* pages_resident(buf) -> whether a buffer's pages are in memory already: mincore() on
 * RESIDENT_PROBES pages spread over it, the first and the last among them (3.4-4.3 us a call
 * here; 16 probes took 10.8). A reused allocation's pages are; a fresh mapping's are not until
 * first touched. False where mincore is not available (not Linux) or fails, and for an empty
 * buffer. */
#define RESIDENT_PROBES 8
FASTCALL(pages_resident) {
    sc_bufs s = {.n = 0};
    sc_arr buf = {0};
    PyObject *res = NULL;
    if (sc_nargs(nargs, 1, "pages_resident") < 0) return NULL;
    if (get(&s, args[0], 0, 0, "buf", &buf) < 0) goto done;
    int all = 0;
#ifdef __linux__
    const uint64_t n = (uint64_t)buf.n * (uint64_t)buf.itemsize;
    const long ps = sysconf(_SC_PAGESIZE);
    if (n > 0 && ps > 0) {
        const uintptr_t page = (uintptr_t)ps, lo = (uintptr_t)buf.p & ~(page - 1);
        const uintptr_t last = ((uintptr_t)buf.p + (uintptr_t)(n - 1)) & ~(page - 1);
        const uint64_t pages = (last - lo) / page + 1;
        all = 1;
        for (int k = 0; all && k < RESIDENT_PROBES; k++) {
            unsigned char v = 0;
            const uintptr_t at = lo + (uintptr_t)((pages - 1) * (uint64_t)k /
                                                  (RESIDENT_PROBES - 1)) * page;
            all = mincore((void *)at, (size_t)page, &v) == 0 && (v & 1);
        }
    }
#endif
    res = PyBool_FromLong(all);
done:
    sc_release(&s);
    return res;
}
#undef RESIDENT_PROBES

/* fill_rows(out, fill, cols) */
FASTCALL(fill_rows) {
    sc_bufs s = {.n = 0};
    sc_arr out = {0}, fill = {0};
    int64_t cols;
    PyObject *res = NULL;
    if (get_fill_args(&s, args, nargs, "fill_rows", 1, &out, &fill, &cols) < 0) goto done;
    Py_BEGIN_ALLOW_THREADS
    fill_rows_any(out.p, out.n, fill.p, fill.n, cols, out.itemsize);
    Py_END_ALLOW_THREADS
    res = Py_NewRef(Py_None);
done:
    sc_release(&s);
    return res;
}

/* How many of the n items of x (rows of cols) equal their row's fill item (fill: 1 item, or
 * one per row): what a fill spares, counted in one pass without a temporary; with one fill
 * item a row, each row's count also goes to per_row when it is not NULL. */
SC_INLINE int64_t count_fill_body(const void *restrict x, Py_ssize_t n,
                                  const void *restrict fill, Py_ssize_t nf, Py_ssize_t cols,
                                  int64_t *restrict per_row, Py_ssize_t size) {
    int64_t count = 0;
    if (nf == 1) {
        const uint64_t f = ld(fill, size, 0);
        for (Py_ssize_t i = 0; i < n; i++) count += ld(x, size, i) == f;
        return count;
    }
    for (Py_ssize_t r = 0; r < nf; r++) {
        const uint64_t f = ld(fill, size, r);
        const char *row = (const char *)x + r * cols * size;
        int64_t in_row = 0;
        for (Py_ssize_t c = 0; c < cols; c++) in_row += ld(row, size, c) == f;
        if (per_row) per_row[r] = in_row;
        count += in_row;
    }
    return count;
}

#if SC_X86
/* The items of x[0..n) equal to f, 128 bytes of items a step in four compares; an equal lane
 * sets `size` bits of the compares' byte masks, so the bits counted are size times the items.
 * The rest one at a time. */
SC_TARGET("avx2,popcnt")
SC_INLINE int64_t count_eq_avx2(const void *restrict x, Py_ssize_t n, uint64_t f,
                                Py_ssize_t size) {
    const char *p = x;
    const __m256i v = size == 1   ? _mm256_set1_epi8((char)f)
                      : size == 2 ? _mm256_set1_epi16((short)f)
                      : size == 4 ? _mm256_set1_epi32((int)f)
                                  : _mm256_set1_epi64x((long long)f);
#define CF_EQ(o)                                                                               \
    ((uint64_t)(uint32_t)_mm256_movemask_epi8(                                                 \
        size == 1   ? _mm256_cmpeq_epi8(_mm256_loadu_si256((const void *)(p + (o))), v)       \
        : size == 2 ? _mm256_cmpeq_epi16(_mm256_loadu_si256((const void *)(p + (o))), v)      \
        : size == 4 ? _mm256_cmpeq_epi32(_mm256_loadu_si256((const void *)(p + (o))), v)      \
                    : _mm256_cmpeq_epi64(_mm256_loadu_si256((const void *)(p + (o))), v)))
    const Py_ssize_t bytes = n * size;
    int64_t bits = 0;
    Py_ssize_t b = 0;
    for (; b + 128 <= bytes; b += 128)
        bits += __builtin_popcountll(CF_EQ(b) | CF_EQ(b + 32) << 32) +
                __builtin_popcountll(CF_EQ(b + 64) | CF_EQ(b + 96) << 32);
    for (; b + 32 <= bytes; b += 32) bits += __builtin_popcountll(CF_EQ(b));
#undef CF_EQ
    int64_t count = bits / size;
    for (Py_ssize_t i = b / size; i < n; i++) count += ld(x, size, i) == f;
    return count;
}

/* count_fill_body with each row (or the whole of x, for one fill item) counted by
 * count_eq_avx2: 1536x384 float16 against one item a row, 71.5 -> 21.2 us (the scalar
 * loop, widening each compare to 64 bits, ran at 0.12 ns an item). */
SC_TARGET("avx2,popcnt")
static int64_t count_fill_avx2(const void *restrict x, Py_ssize_t n, const void *restrict fill,
                               Py_ssize_t nf, Py_ssize_t cols, int64_t *restrict per_row,
                               Py_ssize_t size) {
#define CF_ROWS(S)                                                                             \
    do {                                                                                       \
        if (nf == 1) return count_eq_avx2(x, n, ld(fill, S, 0), S);                           \
        int64_t count = 0;                                                                     \
        for (Py_ssize_t r = 0; r < nf; r++) {                                                  \
            const int64_t in_row =                                                             \
                count_eq_avx2((const char *)x + r * cols * S, cols, ld(fill, S, r), S);        \
            if (per_row) per_row[r] = in_row;                                                  \
            count += in_row;                                                                   \
        }                                                                                      \
        return count;                                                                          \
    } while (0)
    switch (size) {
    case 1: CF_ROWS(1);
    case 2: CF_ROWS(2);
    case 4: CF_ROWS(4);
    default: CF_ROWS(8);
    }
#undef CF_ROWS
}
#endif

static int64_t count_fill_any(const void *restrict x, Py_ssize_t n, const void *restrict fill,
                              Py_ssize_t nf, Py_ssize_t cols, int64_t *restrict per_row,
                              Py_ssize_t size, int level) {
#if SC_X86
    if (level >= SC_SIMD_AVX2) return count_fill_avx2(x, n, fill, nf, cols, per_row, size);
#else
    (void)level;
#endif
    int64_t count;
#define CF(S) count = count_fill_body(x, n, fill, nf, cols, per_row, S)
    SC_BY_SIZE(size, CF)
#undef CF
    return count;
}

/* count_fill(x, fill, cols[, per_row]) -> the items of x equal to their row's fill item;
 * per_row (int64, one item a fill item, fill one item a row) takes each row's count */
FASTCALL(count_fill) {
    sc_bufs s = {.n = 0};
    sc_arr x = {0}, fill = {0}, rows = {0};
    int64_t cols, count = 0;
    PyObject *res = NULL;
    const int with_rows = nargs == 4;
    if (get_fill_args(&s, args, nargs - with_rows, "count_fill", 0, &x, &fill, &cols) < 0)
        goto done;
    if (with_rows) {
        if (get(&s, args[3], 1, 8, "per_row", &rows) < 0) goto done;
        if (fill.n < 2 || rows.n != fill.n) {
            fail("count_fill: per_row takes one count a row's fill item: %zd slots, %zd fill "
                 "items", rows.n, fill.n);
            goto done;
        }
    }
    const int level = sc_simd;
    Py_BEGIN_ALLOW_THREADS
    count = count_fill_any(x.p, x.n, fill.p, fill.n, cols, with_rows ? (int64_t *)rows.p : NULL,
                           x.itemsize, level);
    Py_END_ALLOW_THREADS
    res = PyLong_FromLongLong(count);
done:
    sc_release(&s);
    return res;
}

/* A bound on what per-row mode fills spare over zero fills, for rows of at most PAIRED_MAX
 * entries: the sum over the rows of max(0, p - z), p the row's pairs of equal non-zero
 * entries and z its zeros. A row's mode is zero (occurring z times) or a non-zero pattern
 * occurring k times, which makes at least k - 1 such pairs; the mode fill spares its count
 * less the row's zeros less its own stored item: at most max(-1, p - z). */
#define PAIRED_MAX 8
SC_INLINE int64_t paired_spare_body(const void *restrict x, Py_ssize_t rows, Py_ssize_t cols,
                                    Py_ssize_t size) {
    int64_t bound = 0;
    for (Py_ssize_t r = 0; r < rows; r++) {
        uint64_t e[PAIRED_MAX];
        int64_t pairs = 0, zeros = 0;
        for (Py_ssize_t i = 0; i < cols; i++) {
            e[i] = ld(x, size, r * cols + i);
            zeros += e[i] == 0;
        }
        for (Py_ssize_t i = 0; i < cols; i++)
            for (Py_ssize_t j = i + 1; j < cols; j++) pairs += e[i] == e[j] && e[i] != 0;
        bound += pairs > zeros ? pairs - zeros : 0;
    }
    return bound;
}

/* Rows of 2, 3 and 4 entries (a convolution's taps) written out: one row's pairs less its
 * zeros in one expression of fixed loads, which the compiler vectorises across rows
 * (interleaved loads), summed 4,096 rows at a time in 32 bits. 16,512 rows of three float16
 * entries: 45-48 -> 11-14 us a call in the AVX2 build (docs/benchmarks.md, issue 13's
 * thirtieth pass). The loads are memcpy's: x may sit at any address (a buffer handed over),
 * where a typed load is undefined (UBSan); of the item's own type, not ld()'s uint64, so that
 * the compares vectorise at the item's width. */
#define PS_EQ(a, b) ((int32_t)(((a) == (b)) & ((a) != 0)))
#define PS_Z(a) ((int32_t)((a) == 0))
#define PS_LOAD(T)                                                                             \
    SC_INLINE T ps_ld_##T(const char *p, Py_ssize_t i) {                                       \
        T v;                                                                                   \
        memcpy(&v, p + i * (Py_ssize_t)sizeof(T), sizeof(T));                                  \
        return v;                                                                              \
    }
PS_LOAD(uint8_t)
PS_LOAD(uint16_t)
PS_LOAD(uint32_t)
PS_LOAD(uint64_t)
#undef PS_LOAD
#define PS_ROWS(T, C, ...)                                                                     \
    do {                                                                                       \
        const char *restrict e = x;                                                            \
        for (Py_ssize_t r0 = 0; r0 < rows; r0 += 4096) {                                       \
            const Py_ssize_t r1 = rows - r0 < 4096 ? rows : r0 + 4096;                         \
            int32_t s = 0;                                                                     \
            for (Py_ssize_t r = r0; r < r1; r++) {                                             \
                const T a = ps_ld_##T(e, C * r), b = ps_ld_##T(e, C * r + 1);                  \
                const int32_t d = __VA_ARGS__;                                                 \
                s += d > 0 ? d : 0;                                                            \
            }                                                                                  \
            bound += s;                                                                        \
        }                                                                                      \
    } while (0)
#define PS_FIXED(T)                                                                            \
    switch (cols) {                                                                            \
    case 2: PS_ROWS(T, 2, PS_EQ(a, b) - PS_Z(a) - PS_Z(b)); return bound;                      \
    case 3: {                                                                                  \
        PS_ROWS(T, 3, PS_EQ(a, b) + PS_EQ(a, ps_ld_##T(e, 3 * r + 2)) +                        \
                          PS_EQ(b, ps_ld_##T(e, 3 * r + 2)) - PS_Z(a) - PS_Z(b) -              \
                          PS_Z(ps_ld_##T(e, 3 * r + 2)));                                      \
        return bound;                                                                          \
    }                                                                                          \
    case 4: {                                                                                  \
        PS_ROWS(T, 4, PS_EQ(a, b) + PS_EQ(a, ps_ld_##T(e, 4 * r + 2)) +                        \
                          PS_EQ(a, ps_ld_##T(e, 4 * r + 3)) + PS_EQ(b, ps_ld_##T(e, 4 * r + 2)) + \
                          PS_EQ(b, ps_ld_##T(e, 4 * r + 3)) +                                  \
                          PS_EQ(ps_ld_##T(e, 4 * r + 2), ps_ld_##T(e, 4 * r + 3)) - PS_Z(a) -  \
                          PS_Z(b) - PS_Z(ps_ld_##T(e, 4 * r + 2)) -                            \
                          PS_Z(ps_ld_##T(e, 4 * r + 3)));                                      \
        return bound;                                                                          \
    }                                                                                          \
    default: return paired_spare_body(x, rows, cols, sizeof(T));                               \
    }
SC_INLINE int64_t paired_spare_fixed(const void *restrict x, Py_ssize_t rows, Py_ssize_t cols,
                                     Py_ssize_t size) {
    int64_t bound = 0;
    switch (size) {
    case 1: PS_FIXED(uint8_t)
    case 2: PS_FIXED(uint16_t)
    case 4: PS_FIXED(uint32_t)
    default: PS_FIXED(uint64_t)
    }
}
#undef PS_FIXED
#undef PS_ROWS
#undef PS_Z
#undef PS_EQ

static int64_t paired_spare_plain(const void *restrict x, Py_ssize_t rows, Py_ssize_t cols,
                                  Py_ssize_t size) {
    return paired_spare_fixed(x, rows, cols, size);
}

#if SC_X86
SC_TARGET("avx2") static int64_t paired_spare_avx2(const void *restrict x, Py_ssize_t rows,
                                                  Py_ssize_t cols, Py_ssize_t size) {
    return paired_spare_fixed(x, rows, cols, size);
}
#endif

/* paired_spare(x, cols) -> int: paired_spare_body's bound for the flat x (1/2/4/8-byte items)
 * in rows of `cols` <= PAIRED_MAX entries. */
FASTCALL(paired_spare) {
    sc_bufs s = {.n = 0};
    sc_arr x = {0};
    int64_t cols, bound = 0;
    PyObject *res = NULL;
    const char *fn = "paired_spare";
    if (sc_nargs(nargs, 2, fn) < 0) return NULL;
    if (get(&s, args[0], 0, 0, "x", &x) < 0 || item_ok(&x, fn, "x") < 0 ||
        sc_i64(args[1], &cols) < 0)
        goto done;
    if (cols < 1 || cols > PAIRED_MAX || x.n % cols) {
        fail("%s: rows of %lld entries (1 to %d) do not tile %zd items", fn, (long long)cols,
             PAIRED_MAX, x.n);
        goto done;
    }
    Py_ssize_t rows = x.n / (Py_ssize_t)cols;
    const int level = sc_simd;
    Py_BEGIN_ALLOW_THREADS
#if SC_X86
    if (level >= SC_SIMD_AVX2) bound = paired_spare_avx2(x.p, rows, (Py_ssize_t)cols, x.itemsize);
    else
#else
    (void)level;
#endif
    bound = paired_spare_plain(x.p, rows, (Py_ssize_t)cols, x.itemsize);
    Py_END_ALLOW_THREADS
    res = PyLong_FromLongLong(bound);
done:
    sc_release(&s);
    return res;
}

/* -- bitmask scatter (decode) ------------------------------------------------------------- */

/* From mask byte b on, with j values used: out[i] = next value if bit i is set, else 0 (or
 * left as it is with `keep`: the fill variant fills first). Returns the values used, or -1
 * if the mask asks for more than nv values (a mask that was not checked against nnz). */
SC_INLINE Py_ssize_t scatter_from(const uint8_t *restrict mask, const void *restrict v, Py_ssize_t nv, void *restrict out,
                                  Py_ssize_t n, Py_ssize_t b, Py_ssize_t j, Py_ssize_t size,
                                  int keep) {
    Py_ssize_t nb = n / 8;
    for (; b < nb; b++) {
        unsigned byte = mask[b];
        unsigned c = bit_cnt[byte];
        if (SC_UNLIKELY(j + (Py_ssize_t)c > nv)) return -1;
        if (!keep)
            for (int k = 0; k < 8; k++) st(out, size, 8 * b + k, 0);
        for (unsigned t = 0; t < c; t++) st(out, size, 8 * b + bit_pos[byte][t], ld(v, size, j + t));
        j += c;
    }
    for (Py_ssize_t i = 8 * nb; i < n; i++) {
        if ((mask[i >> 3] >> (i & 7)) & 1) {
            if (SC_UNLIKELY(j >= nv)) return -1;
            st(out, size, i, ld(v, size, j));
            j++;
        } else if (!keep) {
            st(out, size, i, 0);
        }
    }
    return j;
}

static Py_ssize_t scatter_scalar(const uint8_t *restrict mask, const void *restrict v, Py_ssize_t nv, void *restrict out,
                                 Py_ssize_t n, Py_ssize_t b, Py_ssize_t j, Py_ssize_t size) {
    switch (size) {
    case 1: return scatter_from(mask, v, nv, out, n, b, j, 1, 0);
    case 2: return scatter_from(mask, v, nv, out, n, b, j, 2, 0);
    case 4: return scatter_from(mask, v, nv, out, n, b, j, 4, 0);
    default: return scatter_from(mask, v, nv, out, n, b, j, 8, 0);
    }
}

#if SC_X86
/* 16-bit items: each mask byte places its values with one pshufb (expand16[byte] moves value
 * r to the r-th set bit, zeroes the rest). Needs 8 values readable at j; the last bytes go to
 * the scalar twin. */
SC_TARGET("ssse3") static Py_ssize_t scatter16_ssse3(const uint8_t *restrict mask, const uint16_t *restrict v,
                                                     Py_ssize_t nv, uint16_t *restrict out, Py_ssize_t n) {
    Py_ssize_t nb = n / 8, b = 0, j = 0;
    for (; b < nb && j + 8 <= nv; b++) {
        unsigned byte = mask[b];
        __m128i src = _mm_loadu_si128((const __m128i *)(v + j));
        __m128i ctl = _mm_load_si128((const __m128i *)expand16[byte]);
        _mm_storeu_si128((__m128i *)(out + 8 * b), _mm_shuffle_epi8(src, ctl));
        j += bit_cnt[byte];
    }
    return scatter_from(mask, v, nv, out, n, b, j, 2, 0);
}

/* 8-bit items: the same with 8-byte loads and stores. */
SC_TARGET("ssse3") static Py_ssize_t scatter8_ssse3(const uint8_t *restrict mask, const uint8_t *restrict v,
                                                    Py_ssize_t nv, uint8_t *restrict out, Py_ssize_t n) {
    Py_ssize_t nb = n / 8, b = 0, j = 0;
    for (; b < nb && j + 8 <= nv; b++) {
        unsigned byte = mask[b];
        __m128i src = _mm_loadl_epi64((const __m128i *)(v + j));
        __m128i ctl = _mm_load_si128((const __m128i *)expand8[byte]);
        _mm_storel_epi64((__m128i *)(out + 8 * b), _mm_shuffle_epi8(src, ctl));
        j += bit_cnt[byte];
    }
    return scatter_from(mask, v, nv, out, n, b, j, 1, 0);
}

/* 32-bit items: one vpermd per mask byte, the unset lanes zeroed by a compare of the byte
 * with each lane's bit. */
SC_TARGET("avx2") static Py_ssize_t scatter32_avx2(const uint8_t *restrict mask, const uint32_t *restrict v,
                                                   Py_ssize_t nv, uint32_t *restrict out, Py_ssize_t n) {
    Py_ssize_t nb = n / 8, b = 0, j = 0;
    const __m256i lane_bit = _mm256_setr_epi32(1, 2, 4, 8, 16, 32, 64, 128);
    for (; b < nb && j + 8 <= nv; b++) {
        unsigned byte = mask[b];
        __m256i src = _mm256_loadu_si256((const __m256i *)(v + j));
        __m256i idx = _mm256_load_si256((const __m256i *)expand32[byte]);
        __m256i keep = _mm256_cmpeq_epi32(
            _mm256_and_si256(_mm256_set1_epi32((int)byte), lane_bit), lane_bit);
        __m256i r = _mm256_and_si256(_mm256_permutevar8x32_epi32(src, idx), keep);
        _mm256_storeu_si256((__m256i *)(out + 8 * b), r);
        j += bit_cnt[byte];
    }
    return scatter_from(mask, v, nv, out, n, b, j, 4, 0);
}
#endif

static Py_ssize_t scatter_dispatch(int level, const uint8_t *restrict mask, const void *restrict v, Py_ssize_t nv,
                                   void *restrict out, Py_ssize_t n, Py_ssize_t size) {
#if SC_X86
    if (size == 2 && level >= SC_SIMD_SSSE3) return scatter16_ssse3(mask, v, nv, out, n);
    if (size == 1 && level >= SC_SIMD_SSSE3) return scatter8_ssse3(mask, v, nv, out, n);
    if (size == 4 && level >= SC_SIMD_AVX2) return scatter32_avx2(mask, v, nv, out, n);
#endif
    return scatter_scalar(mask, v, nv, out, n, 0, 0, size);
}

/* scatter_dispatch over `parts` threads: part i takes a run of whole mask bytes, its first
 * value found by counting the set bits before it; the parts write disjoint items of out and
 * only read the values. A part whose values run out returns -1, and so does the whole. */
typedef struct {
    const uint8_t *mask;
    const char *v;
    Py_ssize_t nv, n, size, per;
    char *out;
    int level, parts;
    Py_ssize_t used[SC_MAX_THREADS];
} scatter_split;

static void scatter_part(void *ctx, int i) {
    scatter_split *t = ctx;
    Py_ssize_t b0 = i * t->per, b1 = i == t->parts - 1 ? (t->n + 7) / 8 : b0 + t->per;
    Py_ssize_t j0 = popcount_body(t->mask, b0);
    Py_ssize_t n = (i == t->parts - 1 ? t->n : 8 * b1) - 8 * b0;
    if (j0 > t->nv) {
        t->used[i] = -1;
        return;
    }
    Py_ssize_t used = scatter_dispatch(t->level, t->mask + b0, t->v + j0 * t->size, t->nv - j0,
                                       t->out + 8 * b0 * t->size, n, t->size);
    t->used[i] = used < 0 ? -1 : j0 + used;
}

static Py_ssize_t scatter_threads(int level, const uint8_t *mask, const void *v, Py_ssize_t nv,
                                  void *out, Py_ssize_t n, Py_ssize_t size, int parts) {
    if (parts <= 1 || n < (1 << 19)) return scatter_dispatch(level, mask, v, nv, out, n, size);
    scatter_split t = {mask, v, nv, n, size, n / 8 / parts, out, level, parts, {0}};
    sc_parallel(parts, scatter_part, &t);
    for (int i = 0; i < parts; i++)
        if (t.used[i] < 0) return -1;
    return t.used[parts - 1];
}

/* cut_rows_body for rows of `stride` <= 32 bytes, inlined where stride and width are
 * constants (the row copied through registers, its padding OR-ed in a few instructions). */
SC_INLINE uint64_t cut_rows_fixed(const uint8_t *restrict src, Py_ssize_t rows,
                                   const Py_ssize_t stride, const Py_ssize_t width,
                                   uint8_t *restrict out) {
    uint64_t pad = 0;
    for (Py_ssize_t r = 0; r < rows; r++) {
        uint8_t row[32];
        memcpy(row, src + r * stride, (size_t)stride);
        memcpy(out + r * width, row, (size_t)width);
        for (Py_ssize_t i = width; i < stride; i++) pad |= row[i];
    }
    return pad;
}

/* Rows of `width` bytes cut out of rows of `stride` bytes: out row r = src row r's first `width`
 * bytes, and the rest of each src row OR-ed into the result (nonzero: a padding byte that is
 * not zero). Rows of 3-16 bytes (N:M groups padded past a short last axis: a 3x3 kernel's
 * rows of 3 entries in groups of 4) go as two overlapping loads and stores, which stay inside
 * the row; numpy's strided copy took ~4.7 ns a row. */
static uint64_t cut_rows_body(const uint8_t *restrict src, Py_ssize_t rows, Py_ssize_t stride,
                              Py_ssize_t width, uint8_t *restrict out) {
    /* rows of k = 3, 5 or 7 entries of 2 or 4 bytes, in groups of four: the sizes constants */
#define CUT(S, W) if (stride == S && width == W) return cut_rows_fixed(src, rows, S, W, out)
    CUT(8, 6); CUT(16, 12); CUT(16, 10); CUT(32, 20); CUT(16, 14); CUT(32, 28);
#undef CUT
    uint64_t pad = 0;
    const Py_ssize_t rest = stride - width;
    for (Py_ssize_t r = 0; r < rows; r++) {
        const uint8_t *row = src + r * stride;
        uint8_t *o = out + r * width;
        if (width >= 8 && width <= 16) {
            uint64_t a, b;
            memcpy(&a, row, 8);
            memcpy(&b, row + width - 8, 8);
            memcpy(o, &a, 8);
            memcpy(o + width - 8, &b, 8);
        } else if (width >= 4 && width < 8) {
            uint32_t a, b;
            memcpy(&a, row, 4);
            memcpy(&b, row + width - 4, 4);
            memcpy(o, &a, 4);
            memcpy(o + width - 4, &b, 4);
        } else {
            memcpy(o, row, (size_t)width);
        }
        for (Py_ssize_t i = 0; i < rest; i++) pad |= row[width + i];
    }
    return pad;
}

/* cut_rows(src u8, rows, stride, width, out u8 (w)) -> 0, or 1 if a byte past `width` of a
 * row is not zero. */
FASTCALL(cut_rows) {
    sc_bufs s = {.n = 0};
    sc_arr src = {0}, out = {0};
    int64_t rows, stride, width;
    PyObject *res = NULL;
    if (sc_nargs(nargs, 5, "cut_rows") < 0) return NULL;
    if (sc_i64(args[1], &rows) < 0 || sc_i64(args[2], &stride) < 0 ||
        sc_i64(args[3], &width) < 0)
        return NULL;
    if (get(&s, args[0], 0, 1, "src", &src) < 0 || get(&s, args[4], 1, 1, "out", &out) < 0)
        goto done;
    if (rows < 0 || width < 0 || stride < width || (rows && stride > src.n / rows) ||
        rows * stride > src.n || (rows && width > out.n / rows) || rows * width > out.n) {
        fail("cut_rows: %lld rows of %lld bytes do not fit src (%zd bytes, rows of %lld) or "
             "out (%zd bytes)", (long long)rows, (long long)width, src.n, (long long)stride,
             out.n);
        goto done;
    }
    uint64_t pad;
    Py_BEGIN_ALLOW_THREADS
    pad = cut_rows_body(src.p, rows, stride, width, out.p);
    Py_END_ALLOW_THREADS
    res = PyLong_FromLong(pad != 0);
done:
    sc_release(&s);
    return res;
}

/* bitmask_scatter(mask, values, out[, threads]) -> values used, or -1 if the mask asks for
 * more values than there are. */
FASTCALL(bitmask_scatter) {
    sc_bufs s = {.n = 0};
    sc_arr mask = {0}, vals = {0}, out = {0};
    PyObject *res = NULL;
    int64_t threads = 1;
    if (nargs == 4) {
        if (sc_i64(args[3], &threads) < 0) return NULL;
        if (threads < 1 || threads > SC_MAX_THREADS) threads = threads < 1 ? 1 : SC_MAX_THREADS;
        nargs = 3;
    }
    if (sc_nargs(nargs, 3, "bitmask_scatter") < 0) return NULL;
    if (get(&s, args[0], 0, 1, "mask", &mask) < 0 ||
        get(&s, args[1], 0, 0, "values", &vals) < 0 ||
        get(&s, args[2], 1, 0, "out", &out) < 0 ||
        item_ok(&out, "bitmask_scatter", "out") < 0)
        goto done;
    if (vals.itemsize != out.itemsize || mask.n < (out.n + 7) / 8) {
        fail("bitmask_scatter: values (%zd-byte items), mask (%zd bytes) do not fit out "
             "(%zd items of %zd bytes)", vals.itemsize, mask.n, out.n, out.itemsize);
        goto done;
    }
    init_tables();
    int level = sc_simd;
    Py_ssize_t used;
    Py_BEGIN_ALLOW_THREADS
    used = scatter_threads(level, mask.p, vals.p, vals.n, out.p, out.n, out.itemsize,
                           (int)threads);
    Py_END_ALLOW_THREADS
    res = PyLong_FromSsize_t(used);
done:
    sc_release(&s);
    return res;
}

/* bitmask_scatter_fill(mask, values, out, fill, cols) -> as bitmask_scatter, onto the fill. */
FASTCALL(bitmask_scatter_fill) {
    sc_bufs s = {.n = 0};
    sc_arr mask = {0}, vals = {0}, out = {0}, fill = {0};
    int64_t cols;
    PyObject *res = NULL;
    if (sc_nargs(nargs, 5, "bitmask_scatter_fill") < 0) return NULL;
    if (get(&s, args[0], 0, 1, "mask", &mask) < 0 ||
        get(&s, args[1], 0, 0, "values", &vals) < 0 ||
        get(&s, args[2], 1, 0, "out", &out) < 0 ||
        item_ok(&out, "bitmask_scatter_fill", "out") < 0 ||
        get(&s, args[3], 0, 0, "fill", &fill) < 0 || sc_i64(args[4], &cols) < 0)
        goto done;
    if (vals.itemsize != out.itemsize || mask.n < (out.n + 7) / 8) {
        fail("bitmask_scatter_fill: values (%zd-byte items), mask (%zd bytes) do not fit out "
             "(%zd items of %zd bytes)", vals.itemsize, mask.n, out.n, out.itemsize);
        goto done;
    }
    if (fill.n == 0 || (fill.n > 1 && (cols < 0 || out.n != fill.n * cols))) {
        fail("bitmask_scatter_fill: %zd fill items do not fit %zd items in rows of %lld",
             fill.n, out.n, (long long)cols);
        goto done;
    }
    if (check_fill(&fill, &out, fill.n, "bitmask_scatter_fill") < 0) goto done;
    init_tables();
    Py_ssize_t used, size = out.itemsize;
    Py_BEGIN_ALLOW_THREADS
    fill_rows_any(out.p, out.n, fill.p, fill.n, cols, size);
    switch (size) {
    case 1: used = scatter_from(mask.p, vals.p, vals.n, out.p, out.n, 0, 0, 1, 1); break;
    case 2: used = scatter_from(mask.p, vals.p, vals.n, out.p, out.n, 0, 0, 2, 1); break;
    case 4: used = scatter_from(mask.p, vals.p, vals.n, out.p, out.n, 0, 0, 4, 1); break;
    default: used = scatter_from(mask.p, vals.p, vals.n, out.p, out.n, 0, 0, 8, 1); break;
    }
    Py_END_ALLOW_THREADS
    res = PyLong_FromSsize_t(used);
done:
    sc_release(&s);
    return res;
}

/* -- bitmask split (encode) --------------------------------------------------------------- */

/* From mask byte b on, with j values kept: the mask of the items of x other than `f` (LSB
 * first; `f` 0 for the non-zero mask) and those items. A block of 8 writes ahead (every item,
 * the index moving on kept ones) when 8 slots are free; else it writes only the kept items,
 * checked. Returns the count kept, or -1 if `values` is too small for them. */
SC_INLINE Py_ssize_t split_from(const void *restrict x, Py_ssize_t n, uint8_t *restrict mask, void *restrict v,
                                Py_ssize_t nv, Py_ssize_t b, Py_ssize_t j, Py_ssize_t size, uint64_t f) {
    Py_ssize_t nbytes = (n + 7) / 8;
    for (; b < nbytes; b++) {
        Py_ssize_t len = n - 8 * b < 8 ? n - 8 * b : 8;
        unsigned byte = 0;
        if (SC_LIKELY(j + 8 <= nv)) {
            for (Py_ssize_t k = 0; k < len; k++) {
                uint64_t e = ld(x, size, 8 * b + k);
                unsigned nz = e != f;
                byte |= nz << k;
                st(v, size, j, e);
                j += nz;
            }
        } else {
            for (Py_ssize_t k = 0; k < len; k++) {
                uint64_t e = ld(x, size, 8 * b + k);
                if (e != f) {
                    if (j >= nv) return -1;
                    byte |= 1u << k;
                    st(v, size, j, e);
                    j++;
                }
            }
        }
        mask[b] = (uint8_t)byte;
    }
    return j;
}

static Py_ssize_t split_scalar(const void *restrict x, Py_ssize_t n, uint8_t *restrict mask, void *restrict v,
                               Py_ssize_t nv, Py_ssize_t size, uint64_t f) {
    switch (size) {
    case 1: return split_from(x, n, mask, v, nv, 0, 0, 1, f);
    case 2: return split_from(x, n, mask, v, nv, 0, 0, 2, f);
    case 4: return split_from(x, n, mask, v, nv, 0, 0, 4, f);
    default: return split_from(x, n, mask, v, nv, 0, 0, 8, f);
    }
}

#if SC_X86
/* 16-bit items: per 8 items one compare with the fill `f`, one pshufb (compress16[byte] packs
 * the kept items to the front) and one 16-byte store at values + j (needs 8 free slots). */
SC_TARGET("ssse3") static Py_ssize_t split16_ssse3(const uint16_t *restrict x, Py_ssize_t n,
                                                   uint8_t *restrict mask, uint16_t *restrict v, Py_ssize_t nv,
                                                   uint64_t f) {
    Py_ssize_t nb = n / 8, b = 0, j = 0;
    const __m128i fv = _mm_set1_epi16((short)(uint16_t)f);
    for (; b < nb && j + 8 <= nv; b++) {
        __m128i items = _mm_loadu_si128((const __m128i *)(x + 8 * b));
        __m128i z = _mm_cmpeq_epi16(items, fv);
        unsigned byte = ~(unsigned)_mm_movemask_epi8(_mm_packs_epi16(z, z)) & 0xffu;
        __m128i ctl = _mm_load_si128((const __m128i *)compress16[byte]);
        _mm_storeu_si128((__m128i *)(v + j), _mm_shuffle_epi8(items, ctl));
        mask[b] = (uint8_t)byte;
        j += bit_cnt[byte];
    }
    return split_from(x, n, mask, v, nv, b, j, 2, f);
}

SC_TARGET("ssse3") static Py_ssize_t split8_ssse3(const uint8_t *restrict x, Py_ssize_t n,
                                                  uint8_t *restrict mask, uint8_t *restrict v, Py_ssize_t nv,
                                                  uint64_t f) {
    Py_ssize_t nb = n / 8, b = 0, j = 0;
    const __m128i fv = _mm_set1_epi8((char)(uint8_t)f);
    for (; b < nb && j + 8 <= nv; b++) {
        __m128i items = _mm_loadl_epi64((const __m128i *)(x + 8 * b));
        unsigned byte = ~(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(items, fv)) & 0xffu;
        __m128i ctl = _mm_load_si128((const __m128i *)compress8[byte]);
        _mm_storel_epi64((__m128i *)(v + j), _mm_shuffle_epi8(items, ctl));
        mask[b] = (uint8_t)byte;
        j += bit_cnt[byte];
    }
    return split_from(x, n, mask, v, nv, b, j, 1, f);
}

SC_TARGET("avx2") static Py_ssize_t split32_avx2(const uint32_t *restrict x, Py_ssize_t n,
                                                 uint8_t *restrict mask, uint32_t *restrict v, Py_ssize_t nv,
                                                 uint64_t f) {
    Py_ssize_t nb = n / 8, b = 0, j = 0;
    const __m256i fv = _mm256_set1_epi32((int)(uint32_t)f);
    for (; b < nb && j + 8 <= nv; b++) {
        __m256i items = _mm256_loadu_si256((const __m256i *)(x + 8 * b));
        __m256i z = _mm256_cmpeq_epi32(items, fv);
        unsigned byte = ~(unsigned)_mm256_movemask_ps(_mm256_castsi256_ps(z)) & 0xffu;
        __m256i idx = _mm256_load_si256((const __m256i *)compress32[byte]);
        _mm256_storeu_si256((__m256i *)(v + j), _mm256_permutevar8x32_epi32(items, idx));
        mask[b] = (uint8_t)byte;
        j += bit_cnt[byte];
    }
    return split_from(x, n, mask, v, nv, b, j, 4, f);
}
#endif

/* The mask of x's items other than `f` and those items, at SIMD `level` (read with the GIL
 * held; SSSE3: 1- and 2-byte items, AVX2: 4-byte ones; 8-byte ones scalar): split_from's
 * result. */
static Py_ssize_t split_items(const sc_arr *x, uint8_t *mask, void *v, Py_ssize_t nv, uint64_t f,
                              int level) {
#if SC_X86
    if (x->itemsize == 2 && level >= SC_SIMD_SSSE3) return split16_ssse3(x->p, x->n, mask, v, nv, f);
    if (x->itemsize == 1 && level >= SC_SIMD_SSSE3) return split8_ssse3(x->p, x->n, mask, v, nv, f);
    if (x->itemsize == 4 && level >= SC_SIMD_AVX2) return split32_avx2(x->p, x->n, mask, v, nv, f);
#else
    (void)level;
#endif
    return split_scalar(x->p, x->n, mask, v, nv, x->itemsize, f);
}

/* bitmask_split(x, mask, values) -> non-zeros kept, or -1 if `values` is too small. `values`
 * needs spare slots to go fast (the kernels write ahead): 8 for the vector paths. */
FASTCALL(bitmask_split) {
    sc_bufs s = {.n = 0};
    sc_arr x = {0}, mask = {0}, vals = {0};
    PyObject *res = NULL;
    if (sc_nargs(nargs, 3, "bitmask_split") < 0) return NULL;
    if (get(&s, args[0], 0, 0, "x", &x) < 0 || item_ok(&x, "bitmask_split", "x") < 0 ||
        get(&s, args[1], 1, 1, "mask", &mask) < 0 ||
        get(&s, args[2], 1, 0, "values", &vals) < 0)
        goto done;
    if (vals.itemsize != x.itemsize || mask.n < (x.n + 7) / 8) {
        fail("bitmask_split: values (%zd-byte items), mask (%zd bytes) do not fit x (%zd "
             "items of %zd bytes)", vals.itemsize, mask.n, x.n, x.itemsize);
        goto done;
    }
    init_tables();
    int level = sc_simd;
    Py_ssize_t kept;
    Py_BEGIN_ALLOW_THREADS
    kept = split_items(&x, mask.p, vals.p, vals.n, 0, level);
    Py_END_ALLOW_THREADS
    res = PyLong_FromSsize_t(kept);
done:
    sc_release(&s);
    return res;
}

/* "Non-zero" read as "not the fill of its row" (fill: 1 item or one per row of `cols`). */
SC_INLINE Py_ssize_t split_fill_body(const void *restrict x, Py_ssize_t n, uint8_t *restrict mask, void *restrict v,
                                     Py_ssize_t nv, const void *restrict fill, Py_ssize_t nfill,
                                     Py_ssize_t cols, Py_ssize_t size) {
    Py_ssize_t j = 0, r = 0, c = 0;
    uint64_t f = ld(fill, size, 0);
    for (Py_ssize_t b = 0; b < (n + 7) / 8; b++) {
        Py_ssize_t len = n - 8 * b < 8 ? n - 8 * b : 8;
        unsigned byte = 0;
        for (Py_ssize_t k = 0; k < len; k++) {
            if (nfill > 1) f = ld(fill, size, r);
            uint64_t e = ld(x, size, 8 * b + k);
            if (e != f) {
                if (j >= nv) return -1;
                byte |= 1u << k;
                st(v, size, j, e);
                j++;
            }
            if (++c == cols) {
                c = 0;
                r++;
            }
        }
        mask[b] = (uint8_t)byte;
    }
    return j;
}

/* bitmask_split_fill(x, mask, values, fill, cols) -> entries kept, or -1 (values too small). */
FASTCALL(bitmask_split_fill) {
    sc_bufs s = {.n = 0};
    sc_arr x = {0}, mask = {0}, vals = {0}, fill = {0};
    int64_t cols;
    PyObject *res = NULL;
    if (sc_nargs(nargs, 5, "bitmask_split_fill") < 0) return NULL;
    if (get(&s, args[0], 0, 0, "x", &x) < 0 || item_ok(&x, "bitmask_split_fill", "x") < 0 ||
        get(&s, args[1], 1, 1, "mask", &mask) < 0 ||
        get(&s, args[2], 1, 0, "values", &vals) < 0 ||
        get(&s, args[3], 0, 0, "fill", &fill) < 0 || sc_i64(args[4], &cols) < 0)
        goto done;
    if (vals.itemsize != x.itemsize || mask.n < (x.n + 7) / 8) {
        fail("bitmask_split_fill: values (%zd-byte items), mask (%zd bytes) do not fit x "
             "(%zd items of %zd bytes)", vals.itemsize, mask.n, x.n, x.itemsize);
        goto done;
    }
    if (fill.n == 0 || (fill.n > 1 && (cols < 0 || x.n != fill.n * cols))) {
        fail("bitmask_split_fill: %zd fill items do not fit %zd items in rows of %lld",
             fill.n, x.n, (long long)cols);
        goto done;
    }
    if (check_fill(&fill, &x, fill.n, "bitmask_split_fill") < 0) goto done;
    Py_ssize_t kept, size = x.itemsize;
    if (fill.n == 1) {  /* one fill item: the zero split's kernels, comparing with it */
        uint64_t f = ld(fill.p, size, 0);
        int level = sc_simd;
        init_tables();
        Py_BEGIN_ALLOW_THREADS
        kept = split_items(&x, mask.p, vals.p, vals.n, f, level);
        Py_END_ALLOW_THREADS
        res = PyLong_FromSsize_t(kept);
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    switch (size) {
    case 1: kept = split_fill_body(x.p, x.n, mask.p, vals.p, vals.n, fill.p, fill.n, cols, 1); break;
    case 2: kept = split_fill_body(x.p, x.n, mask.p, vals.p, vals.n, fill.p, fill.n, cols, 2); break;
    case 4: kept = split_fill_body(x.p, x.n, mask.p, vals.p, vals.n, fill.p, fill.n, cols, 4); break;
    default: kept = split_fill_body(x.p, x.n, mask.p, vals.p, vals.n, fill.p, fill.n, cols, 8); break;
    }
    Py_END_ALLOW_THREADS
    res = PyLong_FromSsize_t(kept);
done:
    sc_release(&s);
    return res;
}

/* -- N:M ------------------------------------------------------------------------------------ */

/* Codes are read as lut[packed[g / k], g % k] (lut: rows x k uint16). */
typedef struct {
    const void *restrict packed;
    Py_ssize_t psize, npacked;
    const uint16_t *restrict lut;
    Py_ssize_t k, lut_rows;
    Py_ssize_t ncodes;
} code_src;

/* The sizes of a (packed, lut) pair against `ngroups` groups; -1 with ValueError if wrong. */
static int check_codes(code_src *cs, const sc_arr *packed, const sc_arr *lut, int64_t k,
                       Py_ssize_t ngroups, Py_ssize_t ncodes, const char *fn) {
    if (item_ok(packed, fn, "packed") < 0) return -1;
    if (lut->itemsize != 2 || k <= 0 || lut->n % k)
        return fail("%s: lut must be uint16 rows of k=%lld codes, got %zd items of %zd bytes",
                    fn, (long long)k, lut->n, lut->itemsize);
    if (packed->n < (ngroups + k - 1) / k)
        return fail("%s: %zd packed words hold fewer than %zd groups", fn, packed->n, ngroups);
    cs->packed = packed->p;
    cs->psize = packed->itemsize;
    cs->npacked = packed->n;
    cs->lut = lut->p;
    cs->k = k;
    cs->lut_rows = lut->n / k;
    cs->ncodes = ncodes;
    return 0;
}

/* Call `body(g, c)` for each of the ngroups codes; a packed word past the lut or a code past
 * ncodes (frame data: code_reader / packed_code_reader checked them; checked again here)
 * returns -2 from the enclosing function. */
#define FOR_CODES(cs, ngroups, PSIZE, ...)                                             \
    do {                                                                                \
        Py_ssize_t g_ = 0;                                                              \
        for (Py_ssize_t w_ = 0; g_ < (ngroups); w_++) {                                 \
            uint64_t word_ = ld((cs)->packed, PSIZE, w_);                               \
            if (SC_UNLIKELY(word_ >= (uint64_t)(cs)->lut_rows)) return -2;              \
            const uint16_t *row_ = (cs)->lut + word_ * (cs)->k;                         \
            for (Py_ssize_t j_ = 0; j_ < (cs)->k && g_ < (ngroups); j_++, g_++) {        \
                Py_ssize_t c = row_[j_];                                                \
                if (SC_UNLIKELY(c >= (cs)->ncodes)) return -2;                          \
                Py_ssize_t g = g_;                                                      \
                __VA_ARGS__                                                             \
            }                                                                           \
        }                                                                               \
    } while (0)

/* nm_scatter(_fill) body: -1 if a padded slot holds anything but the fill, -2 a bad code. */
SC_INLINE int nm_scatter_body(const code_src cs, const uint8_t *restrict pos, int n,
                              const void *restrict v, void *restrict out, Py_ssize_t rows,
                              Py_ssize_t cols, int m, const void *restrict fill,
                              Py_ssize_t nfill, Py_ssize_t size, Py_ssize_t psize) {
    Py_ssize_t gpr = (cols + m - 1) / m, full = cols / m;
    Py_ssize_t ngroups = rows * gpr;
    Py_ssize_t r = 0, q = 0, base = 0; /* row and group in row of group g; base its first item */
    uint64_t f = fill ? ld(fill, size, 0) : 0;
    if (fill) fill_rows_any(out, rows * cols, fill, nfill, cols, size);
    FOR_CODES(&cs, ngroups, psize, {
        const uint8_t *p = pos + c * n;
        const Py_ssize_t vb = g * n;
        if (q < full) {
            if (!fill)
                for (int i = 0; i < m; i++) st(out, size, base + i, 0);
            for (int t = 0; t < n; t++) st(out, size, base + p[t], ld(v, size, vb + t));
        } else {
            if (nfill > 1) f = ld(fill, size, r);
            if (!fill)
                for (Py_ssize_t i = 0; i < cols - full * m; i++) st(out, size, base + i, 0);
            for (int t = 0; t < n; t++) {
                uint64_t e = ld(v, size, vb + t);
                if (q * m + p[t] < cols) st(out, size, base + p[t], e);
                else if (e != f) return -1;
            }
        }
        if (++q == gpr) {
            q = 0;
            r++;
            base = r * cols;
        } else {
            base += m;
        }
    });
    return 0;
}

/* positions (ncodes x n, each < m): a table of the library (nm_tables); checked anyway. */
static int check_positions(const sc_arr *pos, int64_t n, int64_t m, const char *fn) {
    if (pos->itemsize != 1 || n <= 0 || pos->n % n)
        return fail("%s: positions must be uint8 rows of n=%lld", fn, (long long)n);
    const uint8_t *p = pos->p;
    for (Py_ssize_t i = 0; i < pos->n; i++)
        if (p[i] >= m) return fail("%s: positions hold %d >= m=%lld", fn, p[i], (long long)m);
    return 0;
}

/* nm_scatter(packed, lut, k, positions, n, values, out, rows, cols, m, fill_or_None)
 * -> 0, -1 (a padded slot holds a value other than the fill), -2 (a code out of range). */
FASTCALL(nm_scatter) {
    sc_bufs s = {.n = 0};
    sc_arr packed = {0}, lut = {0}, pos = {0}, vals = {0}, out = {0}, fill = {0};
    int64_t k, n, rows, cols, m;
    code_src cs;
    PyObject *res = NULL;
    const char *fn = "nm_scatter";
    if (sc_nargs(nargs, 11, fn) < 0) return NULL;
    if (get(&s, args[0], 0, 0, "packed", &packed) < 0 ||
        get(&s, args[1], 0, 2, "lut", &lut) < 0 || sc_i64(args[2], &k) < 0 ||
        get(&s, args[3], 0, 1, "positions", &pos) < 0 || sc_i64(args[4], &n) < 0 ||
        get(&s, args[5], 0, 0, "values", &vals) < 0 ||
        get(&s, args[6], 1, 0, "out", &out) < 0 || item_ok(&out, fn, "out") < 0 ||
        sc_i64(args[7], &rows) < 0 || sc_i64(args[8], &cols) < 0 || sc_i64(args[9], &m) < 0)
        goto done;
    if (args[10] != Py_None && get(&s, args[10], 0, 0, "fill", &fill) < 0) goto done;
    if (m <= 0 || m > 64 || rows < 0 || cols < 0 || n > m ||
        check_positions(&pos, n, m, fn) < 0)
        goto bad_args;
    Py_ssize_t ngroups = rows * ((cols + m - 1) / m);
    if (out.n != rows * cols || vals.itemsize != out.itemsize || vals.n < ngroups * n)
        goto bad_args;
    if (fill.p && (fill.n == 0 || check_fill(&fill, &out, rows, fn) < 0)) goto bad_args;
    if (check_codes(&cs, &packed, &lut, k, ngroups, pos.n / n, fn) < 0) goto done;
    int rc;
    Py_ssize_t size = out.itemsize;
    const void *fp = fill.p;
    Py_BEGIN_ALLOW_THREADS
#define NMS(S, P, N, M) \
    nm_scatter_body(cs, pos.p, N, vals.p, out.p, rows, cols, M, fp, fill.n, S, P)
#define NMS_S(P, N, M)                     \
    switch (size) {                        \
    case 1: rc = NMS(1, P, N, M); break;   \
    case 2: rc = NMS(2, P, N, M); break;   \
    case 4: rc = NMS(4, P, N, M); break;   \
    default: rc = NMS(8, P, N, M); break;  \
    }
    if (n == 2 && m == 4 && cs.psize == 1) { NMS_S(1, 2, 4) }
    else if (n == 2 && m == 4 && cs.psize == 2) { NMS_S(2, 2, 4) }
    else if (cs.psize == 1) { NMS_S(1, (int)n, (int)m) }
    else if (cs.psize == 2) { NMS_S(2, (int)n, (int)m) }
    else rc = NMS(size, cs.psize, (int)n, (int)m);
#undef NMS_S
#undef NMS
    Py_END_ALLOW_THREADS
    res = PyLong_FromLong(rc);
    goto done;
bad_args:
    if (!PyErr_Occurred())
        fail("%s: sizes do not fit (out %zd items, values %zd, rows=%lld cols=%lld m=%lld "
             "n=%lld)", fn, out.n, vals.n, (long long)rows, (long long)cols, (long long)m,
             (long long)n);
done:
    sc_release(&s);
    return res;
}

/* The shifts (and word_of) tables of the compose kernels: shifts < 64, word_of < wpg. */
static int check_shifts(const sc_arr *shifts, const sc_arr *word_of, Py_ssize_t wpg,
                        const char *fn) {
    if (shifts->itemsize != 8) return fail("%s: shifts must be 8-byte integers", fn);
    const uint64_t *sh = shifts->p;
    for (Py_ssize_t i = 0; i < shifts->n; i++)
        if (sh[i] >= 64) return fail("%s: shifts hold %llu >= 64", fn, (unsigned long long)sh[i]);
    if (word_of) {
        if (word_of->itemsize != 8 || word_of->n != shifts->n)
            return fail("%s: word_of must be 8-byte integers shaped as shifts", fn);
        const uint64_t *wo = word_of->p;
        for (Py_ssize_t i = 0; i < word_of->n; i++)
            if (wo[i] >= (uint64_t)wpg)
                return fail("%s: word_of holds %lld >= %zd words per group", fn,
                            (long long)wo[i], wpg);
    }
    return 0;
}

SC_INLINE int nm_compose_body(const code_src cs, Py_ssize_t ngroups, const uint64_t *restrict word_of,
                              const uint64_t *restrict shifts, int n, const void *restrict v, void *restrict out,
                              Py_ssize_t wpg, Py_ssize_t size, Py_ssize_t wsize,
                              Py_ssize_t psize) {
    FOR_CODES(&cs, ngroups, psize, {
        const uint64_t *sh = shifts + c * n;
        if (wpg == 1) {
            uint64_t acc = 0;
            for (int t = 0; t < n; t++) acc |= ld(v, size, g * n + t) << sh[t];
            st(out, wsize, g, acc);
        } else {
            uint64_t *o = (uint64_t *)out + g * wpg;
            for (Py_ssize_t i = 0; i < wpg; i++) o[i] = 0;
            for (int t = 0; t < n; t++) o[word_of[c * n + t]] |= ld(v, size, g * n + t) << sh[t];
        }
    });
    return 0;
}

/* nm_compose_body for two kept values and two words a group (2:4 of 32-bit values, 2:8 of
 * 16-bit ones): both words made in registers and stored once, where the general loop zeroed
 * the group's words in memory and or-ed each value into its word there (the 37,249 groups of
 * a 97x1531 float32 tensor at 2:4: 292 us, 48 now; docs/benchmarks.md, nineteenth pass). */
#define NM_COMPOSE2X2(g, c)                                                                 \
    do {                                                                                    \
        const uint64_t a = ld(v, size, 2 * (g)) << shifts[2 * (c)];                         \
        const uint64_t b = ld(v, size, 2 * (g) + 1) << shifts[2 * (c) + 1];                 \
        const int wa = word_of[2 * (c)] != 0, wb = word_of[2 * (c) + 1] != 0;               \
        out[2 * (g)] = (wa ? 0 : a) | (wb ? 0 : b);                                         \
        out[2 * (g) + 1] = (wa ? a : 0) | (wb ? b : 0);                                     \
    } while (0)
SC_INLINE int nm_compose2x2_body(const code_src cs, Py_ssize_t ngroups,
                                 const uint64_t *restrict word_of, const uint64_t *restrict shifts,
                                 const void *restrict v, uint64_t *restrict out, Py_ssize_t size,
                                 Py_ssize_t psize) {
    int identity = cs.k == 1 && cs.lut_rows >= cs.ncodes; /* one code per item, as it is */
    for (Py_ssize_t i = 0; identity && i < cs.ncodes; i++) identity = cs.lut[i] == i;
    if (identity) { /* Huffman-coded codes: no look-up */
        for (Py_ssize_t g = 0; g < ngroups; g++) {
            const uint64_t c = ld(cs.packed, psize, g);
            if (SC_UNLIKELY(c >= (uint64_t)cs.ncodes)) return -2;
            NM_COMPOSE2X2(g, c);
        }
        return 0;
    }
    FOR_CODES(&cs, ngroups, psize, { NM_COMPOSE2X2(g, c); });
    return 0;
}
#undef NM_COMPOSE2X2

/* nm_compose(packed, lut, k, ngroups, word_of, shifts, n, values, out) -> 0, -2 (bad code).
 * Group g fills words g*wpg .. of `out` (wpg = out items / ngroups; 8-byte words if > 1). */
FASTCALL(nm_compose) {
    sc_bufs s = {.n = 0};
    sc_arr packed = {0}, lut = {0}, word_of = {0}, shifts = {0}, vals = {0}, out = {0};
    int64_t k, ngroups, n;
    code_src cs;
    PyObject *res = NULL;
    const char *fn = "nm_compose";
    if (sc_nargs(nargs, 9, fn) < 0) return NULL;
    if (get(&s, args[0], 0, 0, "packed", &packed) < 0 ||
        get(&s, args[1], 0, 2, "lut", &lut) < 0 || sc_i64(args[2], &k) < 0 ||
        sc_i64(args[3], &ngroups) < 0 || get(&s, args[4], 0, 8, "word_of", &word_of) < 0 ||
        get(&s, args[5], 0, 8, "shifts", &shifts) < 0 || sc_i64(args[6], &n) < 0 ||
        get(&s, args[7], 0, 0, "values", &vals) < 0 || item_ok(&vals, fn, "values") < 0 ||
        get(&s, args[8], 1, 0, "out", &out) < 0 || item_ok(&out, fn, "out") < 0)
        goto done;
    if (ngroups == 0) {
        res = PyLong_FromLong(0);
        goto done;
    }
    if (ngroups < 0 || n <= 0 || shifts.n % n || vals.n < ngroups * n || out.n % ngroups ||
        (out.n / ngroups > 1 && out.itemsize != 8)) {
        fail("%s: sizes do not fit (ngroups=%lld n=%lld, values %zd, out %zd items of %zd "
             "bytes)", fn, (long long)ngroups, (long long)n, vals.n, out.n, out.itemsize);
        goto done;
    }
    Py_ssize_t wpg = out.n / ngroups;
    if (check_shifts(&shifts, &word_of, wpg, fn) < 0 ||
        check_codes(&cs, &packed, &lut, k, ngroups, shifts.n / n, fn) < 0)
        goto done;
    int rc;
    Py_BEGIN_ALLOW_THREADS
#define NMC(V, W, P)                                                                        \
    (n == 2 ? nm_compose_body(cs, ngroups, word_of.p, shifts.p, 2, vals.p, out.p, wpg, V, W, P) \
            : nm_compose_body(cs, ngroups, word_of.p, shifts.p, (int)n, vals.p, out.p, wpg, V, W, P))
#define NMC_V(W, P)                      \
    switch (vals.itemsize) {             \
    case 1: rc = NMC(1, W, P); break;    \
    case 2: rc = NMC(2, W, P); break;    \
    case 4: rc = NMC(4, W, P); break;    \
    default: rc = NMC(8, W, P); break;   \
    }
#define NMC2(V, P) nm_compose2x2_body(cs, ngroups, word_of.p, shifts.p, vals.p, out.p, V, P)
    if (wpg == 2 && n == 2 && cs.psize == 1) {
        switch (vals.itemsize) {
        case 1: rc = NMC2(1, 1); break;
        case 2: rc = NMC2(2, 1); break;
        case 4: rc = NMC2(4, 1); break;
        default: rc = NMC2(8, 1); break;
        }
    } else if (wpg == 2 && n == 2) rc = NMC2(vals.itemsize, cs.psize);
    else if (wpg > 1 && cs.psize == 1) { NMC_V(8, 1) }
    else if (wpg > 1 && cs.psize == 2) { NMC_V(8, 2) }
    else if (cs.psize == 1) { NMC_V(out.itemsize, 1) }
    else if (cs.psize == 2) { NMC_V(out.itemsize, 2) }
    else rc = NMC(vals.itemsize, out.itemsize, cs.psize);
#undef NMC2
#undef NMC_V
#undef NMC
    Py_END_ALLOW_THREADS
    res = PyLong_FromLong(rc);
done:
    sc_release(&s);
    return res;
}

/* 2:4, three codes per byte (lut 256 x 3, codes < 6 checked once), one word per group, from
 * packed byte w0 on. */
SC_INLINE void nm24_body(const uint8_t *restrict packed, const uint16_t *restrict lut,
                         Py_ssize_t ngroups, const uint64_t *restrict sh, const void *restrict v,
                         void *restrict out, Py_ssize_t size, Py_ssize_t wsize, Py_ssize_t w0) {
    Py_ssize_t nfull = ngroups / 3;
#define NM24_GROUP(g, c) \
    st(out, wsize, g, (ld(v, size, 2 * (g)) << sh[2 * (c)]) | (ld(v, size, 2 * (g) + 1) << sh[2 * (c) + 1]))
    for (Py_ssize_t w = w0; w < nfull; w++) {
        const uint16_t *row = lut + 3 * packed[w];
        unsigned c0 = row[0], c1 = row[1], c2 = row[2];
        Py_ssize_t g = 3 * w;
        NM24_GROUP(g, c0);
        NM24_GROUP(g + 1, c1);
        NM24_GROUP(g + 2, c2);
    }
    for (Py_ssize_t g = 3 * nfull; g < ngroups; g++) {
        unsigned c = lut[3 * packed[nfull] + (g - 3 * nfull)];
        NM24_GROUP(g, c);
    }
#undef NM24_GROUP
}

/* Byte-shuffle controls of the 16-bit 2:4 compose kernels. They are built once (under the
 * GIL) for the library's own tables: lexicographic 2:4 codes (positions (0,1), (0,2), (0,3),
 * (1,2), (1,3), (2,3)), shifts of 16 bits per position, three base-6 digits per byte. Called
 * with other tables, the kernels take their scalar path; tables never change once built, so
 * threads running the kernels without the GIL never see them move. */
static const uint64_t c24_canon_sh[12] = {0, 16, 0, 32, 0, 48, 16, 32, 16, 48, 32, 48};
static uint8_t c24_lo[256][16] __attribute__((aligned(16)));
static uint8_t c24_hi[256][16] __attribute__((aligned(16)));
static uint8_t c2_ctl[36][16] __attribute__((aligned(16)));
static uint16_t c24_canon_lut[256 * 3];
static int c24_built = 0;

static void c24_build(void) {
    if (c24_built) return;
    const uint64_t *sh = c24_canon_sh;
    for (int b = 0; b < 256; b++) {
        uint8_t ctl[32];
        memset(ctl, 0x80, sizeof ctl);
        int digits = b;
        for (int j = 0; j < 3; j++, digits /= 6) {
            unsigned c = (unsigned)(digits % 6);
            c24_canon_lut[3 * b + j] = (uint16_t)c;
            for (int t = 0; t < 2; t++) {
                int o = 8 * j + (int)(sh[2 * c + t] / 8);
                ctl[o] = (uint8_t)(2 * (2 * j + t));
                ctl[o + 1] = (uint8_t)(2 * (2 * j + t) + 1);
            }
        }
        memcpy(c24_lo[b], ctl, 16);
        memcpy(c24_hi[b], ctl + 16, 16);
    }
    for (int c0 = 0; c0 < 6; c0++)
        for (int c1 = 0; c1 < 6; c1++) {
            uint8_t *ctl = c2_ctl[c0 * 6 + c1];
            memset(ctl, 0x80, 16);
            for (int h = 0; h < 2; h++)
                for (int t = 0; t < 2; t++) {
                    int o = 8 * h + (int)(sh[2 * (h ? c1 : c0) + t] / 8);
                    ctl[o] = (uint8_t)(2 * (2 * h + t));
                    ctl[o + 1] = (uint8_t)(2 * (2 * h + t) + 1);
                }
        }
    c24_built = 1;
}

/* Whether (lut, shifts) are the library's 2:4 tables the shuffle controls were built for. */
static int c24_tables(const uint16_t *lut, const uint64_t *sh) {
    c24_build();
    return !memcmp(sh, c24_canon_sh, sizeof c24_canon_sh) &&
           !memcmp(lut, c24_canon_lut, sizeof c24_canon_lut);
}

static int c2_tables(const uint64_t *sh, Py_ssize_t ncodes) {
    c24_build();
    return ncodes == 6 && !memcmp(sh, c24_canon_sh, sizeof c24_canon_sh);
}

#if SC_X86
/* 2:4 of 16-bit values, three groups (one packed byte, 12 value bytes) by two pshufb: groups
 * 3w, 3w+1 in one 16-byte store, 3w+2 in an 8-byte one. Loads 16 value bytes, so stops where
 * fewer are left; returns the packed byte the scalar twin goes on from. */
SC_TARGET("ssse3") static Py_ssize_t nm24_ssse3(const uint8_t *restrict packed,
                                                Py_ssize_t ngroups, const uint16_t *restrict v,
                                                Py_ssize_t nv, uint64_t *restrict out) {
    Py_ssize_t nfull = ngroups / 3, w = 0;
    for (; w < nfull && 6 * w + 8 <= nv; w++) {
        unsigned b = packed[w];
        __m128i src = _mm_loadu_si128((const __m128i *)(v + 6 * w));
        __m128i lo = _mm_shuffle_epi8(src, _mm_load_si128((const __m128i *)c24_lo[b]));
        __m128i hi = _mm_shuffle_epi8(src, _mm_load_si128((const __m128i *)c24_hi[b]));
        _mm_storeu_si128((__m128i *)(out + 3 * w), lo);
        _mm_storel_epi64((__m128i *)(out + 3 * w + 2), hi);
    }
    return w;
}

/* 2:m of 16-bit values, one code per group: two groups (8 value bytes) by one pshufb and one
 * 16-byte store. Returns the group the scalar twin goes on from, or -2 on a bad code. */
SC_TARGET("ssse3") static Py_ssize_t nm2_ssse3(const void *restrict codes, Py_ssize_t csize,
                                               Py_ssize_t ngroups, Py_ssize_t ncodes,
                                               const uint16_t *restrict v,
                                               uint64_t *restrict out) {
    Py_ssize_t g = 0;
    for (; g + 2 <= ngroups; g += 2) {
        uint64_t c0 = ld(codes, csize, g), c1 = ld(codes, csize, g + 1);
        if (SC_UNLIKELY(c0 >= (uint64_t)ncodes || c1 >= (uint64_t)ncodes)) return -2;
        __m128i src = _mm_loadl_epi64((const __m128i *)(v + 2 * g));
        __m128i ctl = _mm_load_si128((const __m128i *)c2_ctl[c0 * ncodes + c1]);
        _mm_storeu_si128((__m128i *)(out + g), _mm_shuffle_epi8(src, ctl));
    }
    return g;
}
#endif

/* One thread's share of nm24_compose: whole pattern bytes [b0, b1) (3 groups each). */
typedef struct {
    const uint8_t *packed;
    const uint16_t *lut;
    Py_ssize_t ngroups, nv, vs, ws;
    const uint64_t *sh;
    const char *v;
    char *out;
    int simd, parts;
} nm24_job;

static void nm24_part(void *ctx, int i) {
    const nm24_job *J = ctx;
    const Py_ssize_t nbytes = (J->ngroups + 2) / 3;
    const Py_ssize_t b0 = nbytes * i / J->parts, b1 = nbytes * (i + 1) / J->parts;
    const Py_ssize_t g0 = 3 * b0, g1 = 3 * b1 < J->ngroups ? 3 * b1 : J->ngroups;
    if (g1 <= g0) return;
    const uint8_t *pk = J->packed + b0;
    const char *v = J->v + 2 * g0 * J->vs;
    char *out = J->out + g0 * J->ws;
    const Py_ssize_t n = g1 - g0;
    Py_ssize_t w0 = 0;
#if SC_X86
    if (J->simd) w0 = nm24_ssse3(pk, n, (const uint16_t *)(const void *)v, J->nv - 2 * g0,
                                 (uint64_t *)(void *)out);
#endif
    if (J->vs == 2 && J->ws == 8) nm24_body(pk, J->lut, n, J->sh, v, out, 2, 8, w0);
    else if (J->vs == 1 && J->ws == 4) nm24_body(pk, J->lut, n, J->sh, v, out, 1, 4, 0);
    else nm24_body(pk, J->lut, n, J->sh, v, out, J->vs, J->ws, 0);
}

/* Groups per thread below which a split does not pay for the thread. */
#define NM24_SPLIT (3 * 65536)

/* nm24_compose(packed, lut, ngroups, shifts, values, out, threads): split over up to `threads`
 * threads, NM24_SPLIT groups a part at least. */
FASTCALL(nm24_compose) {
    sc_bufs s = {.n = 0};
    sc_arr packed = {0}, lut = {0}, shifts = {0}, vals = {0}, out = {0};
    int64_t ngroups, threads;
    PyObject *res = NULL;
    const char *fn = "nm24_compose";
    if (sc_nargs(nargs, 7, fn) < 0) return NULL;
    if (get(&s, args[0], 0, 1, "packed", &packed) < 0 ||
        get(&s, args[1], 0, 2, "lut", &lut) < 0 || sc_i64(args[2], &ngroups) < 0 ||
        get(&s, args[3], 0, 8, "shifts", &shifts) < 0 ||
        get(&s, args[4], 0, 0, "values", &vals) < 0 || item_ok(&vals, fn, "values") < 0 ||
        get(&s, args[5], 1, 0, "out", &out) < 0 || item_ok(&out, fn, "out") < 0 ||
        sc_i64(args[6], &threads) < 0)
        goto done;
    if (ngroups < 0 || lut.n != 256 * 3 || shifts.n != 12 || packed.n < (ngroups + 2) / 3 ||
        vals.n < 2 * ngroups || out.n != ngroups) {
        fail("%s: sizes do not fit (ngroups=%lld, lut %zd items, shifts %zd, packed %zd, "
             "values %zd, out %zd)", fn, (long long)ngroups, lut.n, shifts.n, packed.n, vals.n,
             out.n);
        goto done;
    }
    if (check_shifts(&shifts, NULL, 1, fn) < 0) goto done;
    const uint16_t *lp = lut.p;
    for (int i = 0; i < 256 * 3; i++)
        if (lp[i] >= 6) {
            fail("%s: lut holds code %d >= 6", fn, lp[i]);
            goto done;
        }
    Py_ssize_t vs = vals.itemsize, ws = out.itemsize;
    int level = sc_simd;
    int simd = level >= SC_SIMD_SSSE3 && vs == 2 && ws == 8 && c24_tables(lp, shifts.p);
    int64_t parts = ngroups / NM24_SPLIT;
    if (parts > threads) parts = threads;
    if (parts > SC_MAX_THREADS) parts = SC_MAX_THREADS;
    if (parts < 1) parts = 1;
    nm24_job job = {packed.p, lp, ngroups, vals.n, vs, ws, shifts.p, vals.p, out.p, simd,
                    (int)parts};
    Py_BEGIN_ALLOW_THREADS
    if (parts == 1) nm24_part(&job, 0);
    else sc_parallel((int)parts, nm24_part, &job);
    Py_END_ALLOW_THREADS
    res = Py_NewRef(Py_None);
done:
    sc_release(&s);
    return res;
}

/* 2:m, one code per group, one word per group, from group g0 on. -2 on a code >= ncodes. */
SC_INLINE int nm2_codes_body(const void *restrict codes, Py_ssize_t csize, Py_ssize_t ngroups,
                             const uint64_t *restrict sh, Py_ssize_t ncodes,
                             const void *restrict v, void *restrict out, Py_ssize_t size,
                             Py_ssize_t wsize, Py_ssize_t g0) {
    for (Py_ssize_t g = g0; g < ngroups; g++) {
        uint64_t c = ld(codes, csize, g);
        if (SC_UNLIKELY(c >= (uint64_t)ncodes)) return -2;
        st(out, wsize, g, (ld(v, size, 2 * g) << sh[2 * c]) | (ld(v, size, 2 * g + 1) << sh[2 * c + 1]));
    }
    return 0;
}

/* nm2_compose_codes(codes, shifts, values, out) -> 0, or -2 (a code out of range). */
FASTCALL(nm2_compose_codes) {
    sc_bufs s = {.n = 0};
    sc_arr codes = {0}, shifts = {0}, vals = {0}, out = {0};
    PyObject *res = NULL;
    const char *fn = "nm2_compose_codes";
    if (sc_nargs(nargs, 4, fn) < 0) return NULL;
    if (get(&s, args[0], 0, 0, "codes", &codes) < 0 || item_ok(&codes, fn, "codes") < 0 ||
        get(&s, args[1], 0, 8, "shifts", &shifts) < 0 ||
        get(&s, args[2], 0, 0, "values", &vals) < 0 || item_ok(&vals, fn, "values") < 0 ||
        get(&s, args[3], 1, 0, "out", &out) < 0 || item_ok(&out, fn, "out") < 0)
        goto done;
    if (shifts.n % 2 || vals.n < 2 * codes.n || out.n != codes.n) {
        fail("%s: sizes do not fit (codes %zd, shifts %zd, values %zd, out %zd)", fn, codes.n,
             shifts.n, vals.n, out.n);
        goto done;
    }
    if (check_shifts(&shifts, NULL, 1, fn) < 0) goto done;
    Py_ssize_t cs = codes.itemsize, vs = vals.itemsize, ws = out.itemsize, nc = shifts.n / 2;
    int rc = 0, level = sc_simd;
    const uint64_t *sh = shifts.p;
    int simd = level >= SC_SIMD_SSSE3 && vs == 2 && ws == 8 && (cs == 1 || cs == 2) &&
               c2_tables(sh, nc);
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t g0 = 0;
#if SC_X86
    if (simd) g0 = cs == 1 ? nm2_ssse3(codes.p, 1, codes.n, nc, vals.p, out.p)
                           : nm2_ssse3(codes.p, 2, codes.n, nc, vals.p, out.p);
#else
    (void)simd;
#endif
#define NM2(C, V, W) nm2_codes_body(codes.p, C, codes.n, sh, nc, vals.p, out.p, V, W, g0)
    if (g0 < 0) rc = (int)g0;
    else if (cs == 1 && vs == 2 && ws == 8) rc = NM2(1, 2, 8);
    else if (cs == 2 && vs == 2 && ws == 8) rc = NM2(2, 2, 8);
    else if (cs == 1 && vs == 1 && ws == 4) rc = NM2(1, 1, 4);
    else if (cs == 1 && vs == 1 && ws == 8) rc = NM2(1, 1, 8);
    else rc = NM2(cs, vs, ws);
#undef NM2
    Py_END_ALLOW_THREADS
    res = PyLong_FromLong(rc);
done:
    sc_release(&s);
    return res;
}

/* nm_split(_fill) body: the first group with more than n entries other than the fill, or -1
 * (then codes and values are complete). Padding past cols counts as the fill. */
SC_INLINE Py_ssize_t nm_split_body(const void *restrict x, Py_ssize_t rows, Py_ssize_t cols, int m,
                                   const int32_t *restrict code_of_mask, const uint8_t *restrict pos, int n,
                                   uint16_t *restrict codes, void *restrict v, const void *restrict fill,
                                   Py_ssize_t nfill, Py_ssize_t size) {
    Py_ssize_t gpr = (cols + m - 1) / m, full = cols / m, g = 0;
    uint64_t f = ld(fill, size, 0);
    for (Py_ssize_t r = 0; r < rows; r++) {
        if (nfill > 1) f = ld(fill, size, r);
        Py_ssize_t row = r * cols;
        for (Py_ssize_t q = 0; q < full; q++, g++) {
            Py_ssize_t base = row + q * m;
            uint64_t mask = 0;
            for (int i = 0; i < m; i++) mask |= (uint64_t)(ld(x, size, base + i) != f) << i;
            int32_t c = code_of_mask[mask];
            if (c < 0) return g;
            codes[g] = (uint16_t)c;
            const uint8_t *p = pos + (Py_ssize_t)c * n;
            for (int t = 0; t < n; t++) st(v, size, g * n + t, ld(x, size, base + p[t]));
        }
        if (gpr != full) {
            Py_ssize_t base = row + full * m, width = cols - full * m;
            uint64_t mask = 0;
            for (Py_ssize_t i = 0; i < width; i++)
                mask |= (uint64_t)(ld(x, size, base + i) != f) << i;
            int32_t c = code_of_mask[mask];
            if (c < 0) return g;
            codes[g] = (uint16_t)c;
            const uint8_t *p = pos + (Py_ssize_t)c * n;
            for (int t = 0; t < n; t++)
                st(v, size, g * n + t, p[t] < width ? ld(x, size, base + p[t]) : f);
            g++;
        }
    }
    return -1;
}

#if SC_X86
/* nm_split_body for 2:4 over 2- and 4-byte entries (S), a vector of 16 bytes a step: two groups
 * of 2-byte entries, one of 4-byte. The lanes equal to the row's fill give each group's mask,
 * its code comes from code_of_mask and its n = 2 kept entries from a byte shuffle chosen by the
 * mask (a mask whose code is -1 stops the split there, as in the scalar body; positions of a
 * group with fewer than n entries point at fill entries, which the shuffle copies as the body
 * does). A row's last whole group (2-byte entries) and its padded group go as the body's. */
SC_TARGET("ssse3") SC_INLINE Py_ssize_t nm24_split_ssse3(const void *restrict x, Py_ssize_t rows,
                                                          Py_ssize_t cols,
                                                          const int32_t *restrict code_of_mask,
                                                          const uint8_t *restrict pos,
                                                          uint16_t *restrict codes, void *restrict v,
                                                          const void *restrict fill,
                                                          Py_ssize_t nfill, int S) {
    uint64_t pick[16]; /* mask -> the shuffle's low 8 bytes: entries p0 and p1 of the group */
    for (int mk = 0; mk < 16; mk++) {
        const int32_t c = code_of_mask[mk];
        const uint8_t *p = pos + 2 * (c < 0 ? 0 : c);
        uint64_t sel = 0;
        for (int t = 0; t < 2; t++)
            for (int b = 0; b < S; b++) sel |= (uint64_t)(p[t] * S + b) << 8 * (t * S + b);
        pick[mk] = sel;
    }
    const Py_ssize_t gpr = (cols + 3) / 4, full = cols / 4, step = S == 2 ? 2 : 1;
    const uint8_t *xb = x;
    uint8_t *vb = v;
    Py_ssize_t g = 0;
    for (Py_ssize_t r = 0; r < rows; r++) {
        const uint64_t f = ld(fill, S, nfill > 1 ? r : 0);
        const __m128i fv = S == 2 ? _mm_set1_epi16((short)f) : _mm_set1_epi32((int)f);
        const uint8_t *row = xb + r * cols * S;
        Py_ssize_t q = 0;
        for (; q + step <= full; q += step, g += step) {
            const __m128i a = _mm_loadu_si128((const __m128i *)(const void *)(row + 4 * q * S));
            unsigned ne;
            if (S == 2)
                ne = ~(unsigned)_mm_movemask_epi8(
                         _mm_packs_epi16(_mm_cmpeq_epi16(a, fv), _mm_setzero_si128())) & 0xffu;
            else
                ne = ~(unsigned)_mm_movemask_ps(_mm_castsi128_ps(_mm_cmpeq_epi32(a, fv))) & 0xfu;
            /* the step's values are stored first (a bad group's are inside the output too):
             * a bad second group leaves the first one complete, as the body does */
            uint64_t sel = pick[ne & 15];
            if (S == 2) sel |= (pick[ne >> 4] + 0x08080808u) << 32;
            const __m128i kept = _mm_shuffle_epi8(a, _mm_loadl_epi64((const __m128i *)(const void *)&sel));
            _mm_storel_epi64((__m128i *)(void *)(vb + 2 * g * S), kept);
            const int32_t c0 = code_of_mask[ne & 15];
            if (SC_UNLIKELY(c0 < 0)) return g;
            codes[g] = (uint16_t)c0;
            if (S == 2) {
                const int32_t c1 = code_of_mask[ne >> 4];
                if (SC_UNLIKELY(c1 < 0)) return g + 1;
                codes[g + 1] = (uint16_t)c1;
            }
        }
        for (; q < gpr; q++, g++) {
            const Py_ssize_t base = r * cols + 4 * q, width = cols - 4 * q < 4 ? cols - 4 * q : 4;
            unsigned mk = 0;
            for (Py_ssize_t i = 0; i < width; i++) mk |= (unsigned)(ld(x, S, base + i) != f) << i;
            const int32_t c = code_of_mask[mk];
            if (c < 0) return g;
            codes[g] = (uint16_t)c;
            const uint8_t *p = pos + 2 * c;
            for (int t = 0; t < 2; t++)
                st(v, S, 2 * g + t, p[t] < width ? ld(x, S, base + p[t]) : f);
        }
    }
    return -1;
}
/* nm24_split_ssse3 for 2- and 4-byte items, each compiled for its size (a row's short groups
 * read their items one by one: with the size a constant, ~2x faster on rows of three). */
#define NM24_SPLIT_AT(BITS, S)                                                                \
    SC_TARGET("ssse3") static Py_ssize_t nm24_split##BITS##_ssse3(                            \
        const void *restrict x, Py_ssize_t rows, Py_ssize_t cols, const int32_t *restrict com, \
        const uint8_t *restrict pos, uint16_t *restrict codes, void *restrict v,              \
        const void *restrict fill, Py_ssize_t nfill) {                                        \
        return nm24_split_ssse3(x, rows, cols, com, pos, codes, v, fill, nfill, S);           \
    }
NM24_SPLIT_AT(16, 2)
NM24_SPLIT_AT(32, 4)
#undef NM24_SPLIT_AT
#endif

/* nm_split(x, rows, cols, m, code_of_mask, positions, n, codes, values, fill) */
FASTCALL(nm_split) {
    sc_bufs s = {.n = 0};
    sc_arr x = {0}, com = {0}, pos = {0}, codes = {0}, vals = {0}, fill = {0};
    int64_t rows, cols, m, n;
    PyObject *res = NULL;
    const char *fn = "nm_split";
    if (sc_nargs(nargs, 10, fn) < 0) return NULL;
    if (get(&s, args[0], 0, 0, "x", &x) < 0 || item_ok(&x, fn, "x") < 0 ||
        sc_i64(args[1], &rows) < 0 || sc_i64(args[2], &cols) < 0 || sc_i64(args[3], &m) < 0 ||
        get(&s, args[4], 0, 4, "code_of_mask", &com) < 0 ||
        get(&s, args[5], 0, 1, "positions", &pos) < 0 || sc_i64(args[6], &n) < 0 ||
        get(&s, args[7], 1, 2, "codes", &codes) < 0 ||
        get(&s, args[8], 1, 0, "values", &vals) < 0 ||
        get(&s, args[9], 0, 0, "fill", &fill) < 0)
        goto done;
    if (m <= 0 || m > 24 || rows < 0 || cols < 0 || n > m || check_positions(&pos, n, m, fn) < 0)
        goto bad_args;
    Py_ssize_t ngroups = rows * ((cols + m - 1) / m), ncodes = pos.n / n;
    if (x.n != rows * cols || com.n != ((Py_ssize_t)1 << m) || codes.n < ngroups ||
        vals.itemsize != x.itemsize || vals.n < ngroups * n || fill.n == 0 ||
        check_fill(&fill, &x, rows, fn) < 0)
        goto bad_args;
    const int32_t *cp = com.p;
    for (Py_ssize_t i = 0; i < com.n; i++)
        if (cp[i] < -1 || cp[i] >= ncodes || cp[i] > 0xffff) {
            fail("%s: code_of_mask holds %d, out of -1 .. %zd", fn, cp[i], ncodes - 1);
            goto done;
        }
    Py_ssize_t bad, size = x.itemsize;
    const int simd = sc_simd >= SC_SIMD_SSSE3;
    (void)simd; /* (read by the x86 kernels' branch only) */
    if (fill.n == 1 && m && cols % m == 0 && rows > 1) { /* rows of whole groups, one fill: */
        cols *= rows;                                    /* one row, the groups in order */
        rows = 1;
    }
    Py_BEGIN_ALLOW_THREADS
#define NSP(S, M, N) nm_split_body(x.p, rows, cols, M, cp, pos.p, N, codes.p, vals.p, fill.p, fill.n, S)
#if SC_X86
    if (m == 4 && n == 2 && (size == 2 || size == 4) && simd)
        bad = size == 2 ? nm24_split16_ssse3(x.p, rows, cols, cp, pos.p, codes.p, vals.p, fill.p,
                                             fill.n)
                        : nm24_split32_ssse3(x.p, rows, cols, cp, pos.p, codes.p, vals.p, fill.p,
                                             fill.n);
    else
#endif
    if (m == 4 && n == 2 && size == 2) bad = NSP(2, 4, 2);
    else if (m == 4 && n == 2 && size == 1) bad = NSP(1, 4, 2);
    else if (m == 4 && n == 2 && size == 4) bad = NSP(4, 4, 2);
    else {
        switch (size) {
        case 1: bad = NSP(1, (int)m, (int)n); break;
        case 2: bad = NSP(2, (int)m, (int)n); break;
        case 4: bad = NSP(4, (int)m, (int)n); break;
        default: bad = NSP(8, (int)m, (int)n); break;
        }
    }
#undef NSP
    Py_END_ALLOW_THREADS
    res = PyLong_FromSsize_t(bad);
    goto done;
bad_args:
    if (!PyErr_Occurred())
        fail("%s: sizes do not fit (x %zd items, codes %zd, values %zd, rows=%lld cols=%lld "
             "m=%lld n=%lld)", fn, x.n, codes.n, vals.n, (long long)rows, (long long)cols,
             (long long)m, (long long)n);
done:
    sc_release(&s);
    return res;
}

/* The codes of groups of m bits (m divides 8) of an LSB-first mask; 0 at the first group
 * whose bits have no code (not exactly n set). */
SC_INLINE int codes_from_mask_body(const uint8_t *restrict mask, int m, int per_byte,
                           const int32_t *restrict code_of, uint16_t *restrict codes,
                           Py_ssize_t ngroups) {
    unsigned gmask = (1u << m) - 1;
    Py_ssize_t nfull = ngroups / per_byte, g = 0;
    for (Py_ssize_t b = 0; b < nfull; b++) {
        unsigned byte = mask[b];
        for (int j = 0; j < per_byte; j++, g++) {
            int32_t c = code_of[(byte >> (j * m)) & gmask];
            if (c < 0 || c > 0xffff) return 0;
            codes[g] = (uint16_t)c;
        }
    }
    for (int j = 0; g < ngroups; j++, g++) {
        int32_t c = code_of[(mask[nfull] >> (j * m)) & gmask];
        if (c < 0 || c > 0xffff) return 0;
        codes[g] = (uint16_t)c;
    }
    return 1;
}

/* nm_codes_from_mask(mask, m, code_of, codes) -> True if every group has exactly n bits. */
FASTCALL(nm_codes_from_mask) {
    sc_bufs s = {.n = 0};
    sc_arr mask = {0}, code_of = {0}, codes = {0};
    int64_t m;
    PyObject *res = NULL;
    const char *fn = "nm_codes_from_mask";
    if (sc_nargs(nargs, 4, fn) < 0) return NULL;
    if (get(&s, args[0], 0, 1, "mask", &mask) < 0 || sc_i64(args[1], &m) < 0 ||
        get(&s, args[2], 0, 4, "code_of", &code_of) < 0 ||
        get(&s, args[3], 1, 2, "codes", &codes) < 0)
        goto done;
    if (m <= 0 || 8 % m || code_of.n != (1 << m) ||
        mask.n < (codes.n + 8 / m - 1) / (8 / m)) {
        fail("%s: sizes do not fit (m=%lld, code_of %zd, mask %zd bytes, codes %zd)", fn,
             (long long)m, code_of.n, mask.n, codes.n);
        goto done;
    }
    int per_byte = (int)(8 / m), ok;
    Py_BEGIN_ALLOW_THREADS
    if (m == 4) ok = codes_from_mask_body(mask.p, 4, 2, code_of.p, codes.p, codes.n);
    else ok = codes_from_mask_body(mask.p, (int)m, per_byte, code_of.p, codes.p, codes.n);
    Py_END_ALLOW_THREADS
    res = PyBool_FromLong(ok);
done:
    sc_release(&s);
    return res;
}

/* Pack codes[0..n) as base-nc digits, k a word (the first code the lowest digit, a last
 * word's missing digits 0) into words of S bytes; returns whether every code is < nc. */
SC_INLINE int pack_codes_body(const uint16_t *restrict c, Py_ssize_t n, uint64_t nc, Py_ssize_t k,
                              void *restrict out, Py_ssize_t S) {
    uint64_t over = 0; /* any code >= nc */
    Py_ssize_t w = 0;
    for (; (w + 1) * k <= n; w++) {
        const uint16_t *d = c + w * k;
        uint64_t acc = 0;
        for (Py_ssize_t j = k - 1; j >= 0; j--) {
            over |= d[j] >= nc;
            acc = acc * nc + d[j];
        }
        st(out, S, w, acc);
    }
    if (w * k < n) {
        uint64_t acc = 0;
        for (Py_ssize_t j = n - 1; j >= w * k; j--) {
            over |= c[j] >= nc;
            acc = acc * nc + c[j];
        }
        st(out, S, w, acc);
    }
    return !over;
}

/* nm_pack_codes(codes u16, ncodes, k, out) -> whether every code is < ncodes (out is complete
 * then): codes[i] is digit i % k of word i // k of out (1-, 2-, 4- or 8-byte words, which
 * must hold ncodes**k values). */
FASTCALL(nm_pack_codes) {
    sc_bufs s = {.n = 0};
    sc_arr codes = {0}, out = {0};
    int64_t nc, k;
    PyObject *res = NULL;
    const char *fn = "nm_pack_codes";
    if (sc_nargs(nargs, 4, fn) < 0) return NULL;
    if (get(&s, args[0], 0, 2, "codes", &codes) < 0 || sc_i64(args[1], &nc) < 0 ||
        sc_i64(args[2], &k) < 0 || get(&s, args[3], 1, 0, "out", &out) < 0 ||
        item_ok(&out, fn, "out") < 0)
        goto done;
    int fits = nc >= 1 && nc <= 0x10000 && k >= 1 && k <= 64;
    uint64_t top = 1; /* ncodes**k, up to the word's range */
    for (int64_t i = 0; fits && i < k; i++) {
        if (out.itemsize < 8 && top * (uint64_t)nc > ((uint64_t)1 << (8 * out.itemsize))) fits = 0;
        else if (out.itemsize == 8 && top > UINT64_MAX / (uint64_t)nc) fits = 0;
        else top *= (uint64_t)nc;
    }
    if (!fits || out.n != (codes.n + k - 1) / k) {
        fail("%s: sizes do not fit (%zd codes, ncodes %lld, k %lld, %zd words of %zd bytes)", fn,
             codes.n, (long long)nc, (long long)k, out.n, out.itemsize);
        goto done;
    }
    int ok;
    Py_BEGIN_ALLOW_THREADS
    /* 2:4's words (6 codes, 3 a byte) with the constants known to the compiler: 37,151 codes
     * 28.2 -> 18.1 us */
    if (nc == 6 && k == 3 && out.itemsize == 1) ok = pack_codes_body(codes.p, codes.n, 6, 3, out.p, 1);
    else ok = pack_codes_body(codes.p, codes.n, (uint64_t)nc, k, out.p, out.itemsize);
    Py_END_ALLOW_THREADS
    res = PyBool_FromLong(ok);
done:
    sc_release(&s);
    return res;
}

/* -- CSR / CSC ------------------------------------------------------------------------------ */

/* CALL(S, I) with S and I constants: the item sizes of the values and of the indices (1, 2, 4,
 * else 8), so that each combination compiles to its own loop. */
#define CSR_INDEX_SIZES(S, is, CALL) \
    switch (is) {                    \
    case 1: CALL(S, 1); break;       \
    case 2: CALL(S, 2); break;       \
    case 4: CALL(S, 4); break;       \
    default: CALL(S, 8); break;      \
    }
#define CSR_SIZES(size, is, CALL)                  \
    switch (size) {                                \
    case 1: CSR_INDEX_SIZES(1, is, CALL); break;   \
    case 2: CSR_INDEX_SIZES(2, is, CALL); break;   \
    case 4: CSR_INDEX_SIZES(4, is, CALL); break;   \
    default: CSR_INDEX_SIZES(8, is, CALL); break;  \
    }

/* The first six arguments (indptr, indices, data, out (w), major, minor) of csr_scatter, of
 * `want` in all, checked against each other: out major x minor, indptr
 * major + 1, data at least as many as indices and of out's item size. */
typedef struct {
    sc_bufs s;
    sc_arr indptr, indices, data, out;
    int64_t major, minor;
} csr_call;

static int csr_open(csr_call *c, PyObject *const *args, Py_ssize_t nargs, Py_ssize_t want,
                    const char *fn) {
    memset(c, 0, sizeof(*c));
    if (sc_nargs(nargs, want, fn) < 0 || get(&c->s, args[0], 0, 0, "indptr", &c->indptr) < 0 ||
        item_ok(&c->indptr, fn, "indptr") < 0 ||
        get(&c->s, args[1], 0, 0, "indices", &c->indices) < 0 ||
        item_ok(&c->indices, fn, "indices") < 0 || get(&c->s, args[2], 0, 0, "data", &c->data) < 0 ||
        get(&c->s, args[3], 1, 0, "out", &c->out) < 0 || item_ok(&c->out, fn, "out") < 0 ||
        sc_i64(args[4], &c->major) < 0 || sc_i64(args[5], &c->minor) < 0)
        return -1;
    if (c->major < 0 || c->minor < 0 || c->out.n != c->major * c->minor ||
        c->indptr.n != c->major + 1 || c->data.itemsize != c->out.itemsize ||
        c->data.n < c->indices.n)
        return fail("%s: sizes do not fit (out %zd, indptr %zd, indices %zd, data %zd, major=%lld "
                    "minor=%lld)", fn, c->out.n, c->indptr.n, c->indices.n, c->data.n,
                    (long long)c->major, (long long)c->minor);
    return 0;
}

/* Transposed rows through `block` (zeros: CSR_BLOCK_ITEMS / size rows of `stride` items): major
 * rows c0 .. c0 + nb - 1 scattered into it are written to the output's columns c0.. a minor
 * index at a time (64 bytes of a row of out at once, where a direct scatter wrote across the
 * rows: at 4096 columns each column's writes fell in one L1 set), then their entries in the
 * block set back to zero. */
#define CSR_BLOCK_ITEMS 64
SC_INLINE void csr_flush_block(char *restrict block, Py_ssize_t stride, Py_ssize_t nb,
                               Py_ssize_t c0, const void *restrict indptr, Py_ssize_t psize,
                               const void *restrict indices, Py_ssize_t isize,
                               void *restrict out, Py_ssize_t major, Py_ssize_t minor,
                               Py_ssize_t size) {
    for (Py_ssize_t m = 0; m < minor; m++) {
        char *dst = (char *)out + (m * major + c0) * size;
        for (Py_ssize_t k = 0; k < nb; k++) st(dst, size, k, ld(block + k * stride * size, size, m));
    }
    for (Py_ssize_t k = 0; k < nb; k++) {
        const uint64_t a = ld(indptr, psize, c0 + k), b = ld(indptr, psize, c0 + k + 1);
        for (uint64_t j = a; j < b; j++)
            st(block + k * stride * size, size, (Py_ssize_t)ld(indices, isize, (Py_ssize_t)j), 0);
    }
}

/* Scatter rows r of data/indices (pointers indptr) into out (major x minor), onto what out
 * holds: each major row's entries at out[r * minor + idx] or, transposed (CSC, whose major
 * axis is the columns of the dense rows x cols), at out[idx * major + r]: no transposed copy.
 * The pointers are checked (cheap: once per row), so reads stay inside indices and data: -1
 * if one is bad. With `check`, every row's indices are checked too before it is written
 * (strictly increasing, below minor; the pointers from 0 to nnz), so that a frame no one has
 * read before decodes in this one pass (-1 for anything wrong). Without, the indices are
 * trusted to be < minor: the only maker of CompressedParts, codecs/_compressed.py's
 * decode_parts, raises FrameLayoutError unless indices.max() < minor (and indptr is monotone
 * from 0 to nnz) before any scatter. (A test per element, a branch, cost a third of the
 * kernel's time: 0.55x numba against 0.9x without, 384x384 2:4 bf16; the checked rows' test
 * is a pass of its own over the row, no branch per index.) With `block` (transposed rows of a
 * large output), through it: csr_flush_block. */
SC_INLINE int csr_scatter_body(const void *restrict indptr, Py_ssize_t psize,
                             const void *restrict indices, Py_ssize_t isize, Py_ssize_t nnz,
                             const void *restrict data, void *restrict out, Py_ssize_t major,
                             Py_ssize_t minor, Py_ssize_t size, int trans, int check,
                             char *restrict block) {
    uint64_t start = ld(indptr, psize, 0);
    if (check && start != 0) return -1;
    const Py_ssize_t per = CSR_BLOCK_ITEMS / size, stride = minor + per; /* (no power of 2) */
    Py_ssize_t c0 = 0; /* the block's first major row */
    for (Py_ssize_t r = 0; r < major; r++) {
        const uint64_t end = ld(indptr, psize, r + 1);
        if (SC_UNLIKELY(end < start || end > (uint64_t)nnz)) return -1;
        if (check && end > start) { /* pairwise, no value carried: a loop GCC vectorises */
            unsigned bad = 0;
            for (uint64_t j = start + 1; j < end; j++)
                bad |= ld(indices, isize, (Py_ssize_t)j) <= ld(indices, isize, (Py_ssize_t)j - 1);
            if (bad || ld(indices, isize, (Py_ssize_t)end - 1) >= (uint64_t)minor) return -1;
        }
        if (trans && block) {
            char *row = block + (r - c0) * stride * size;
            for (uint64_t j = start; j < end; j++)
                st(row, size, (Py_ssize_t)ld(indices, isize, (Py_ssize_t)j),
                   ld(data, size, (Py_ssize_t)j));
            if (r + 1 - c0 == per || r + 1 == major) {
                csr_flush_block(block, stride, r + 1 - c0, c0, indptr, psize, indices, isize, out,
                                major, minor, size);
                c0 = r + 1;
            }
        } else if (trans) {
            for (uint64_t j = start; j < end; j++)
                st(out, size, (Py_ssize_t)ld(indices, isize, (Py_ssize_t)j) * major + r,
                   ld(data, size, (Py_ssize_t)j));
        } else {
            char *row = (char *)out + r * minor * size;
            for (uint64_t j = start; j < end; j++)
                st(row, size, (Py_ssize_t)ld(indices, isize, (Py_ssize_t)j),
                   ld(data, size, (Py_ssize_t)j));
        }
        start = end;
    }
    return check && start != (uint64_t)nnz ? -1 : 0;
}

/* csr_scatter(indptr, indices, data, out, major, minor, fill_or_None, per_minor, transposed,
 * check) -> 0 or -1 (a pointer or, with check, an index out of order or range). Without a fill,
 * out holds zeros already (np.zeros: fresh pages come zeroed, where a memset wrote them
 * again); with one, out is filled first (fill[0], or per major row, or per minor index with
 * per_minor), and the rows are not transposed. */
FASTCALL(csr_scatter) {
    const char *fn = "csr_scatter";
    csr_call c;
    sc_arr fill = {0};
    PyObject *res = NULL;
    if (csr_open(&c, args, nargs, 10, fn) < 0) goto done;
    if (args[6] != Py_None && get(&c.s, args[6], 0, 0, "fill", &fill) < 0) goto done;
    const int per_minor = PyObject_IsTrue(args[7]), trans = PyObject_IsTrue(args[8]),
              check = PyObject_IsTrue(args[9]);
    if (per_minor < 0 || trans < 0 || check < 0) goto done;
    const int64_t major = c.major, minor = c.minor;
    if (fill.p && (fill.n == 0 || trans ||
                   check_fill(&fill, &c.out, per_minor ? minor : major, fn) < 0)) {
        if (!PyErr_Occurred()) fail("%s: an empty fill, or a fill with transposed rows", fn);
        goto done;
    }
    int rc;
    Py_ssize_t size = c.out.itemsize, ps = c.indptr.itemsize, is = c.indices.itemsize;
    /* transposed rows of a large output go through a block (csr_flush_block); a small one
     * (under 1 MiB) is written in place */
    char *block = NULL;
    if (trans && c.out.n * size >= (1 << 20) &&
        !(block = PyMem_RawCalloc((size_t)(minor + CSR_BLOCK_ITEMS / size) * CSR_BLOCK_ITEMS / size,
                                  (size_t)size))) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    if (fill.p && (fill.n == 1 || !per_minor)) {
        fill_rows_any(c.out.p, c.out.n, fill.p, fill.n, minor, size);
    } else if (fill.p) {
        for (Py_ssize_t i = 0; i < major; i++) memcpy((char *)c.out.p + i * minor * size, fill.p,
                                                      (size_t)(minor * size));
    }
#define CSR(S, I) rc = csr_scatter_body(c.indptr.p, ps, c.indices.p, I, c.indices.n, c.data.p, \
                                      c.out.p, major, minor, S, trans, check, block)
    CSR_SIZES(size, is, CSR)
#undef CSR
    Py_END_ALLOW_THREADS
    PyMem_RawFree(block);
    res = PyLong_FromLong(rc);
done:
    sc_release(&c.s);
    return res;
}

SC_INLINE int rows_increasing_body(const void *restrict indptr, Py_ssize_t psize, Py_ssize_t nptr,
                                   const void *restrict indices, Py_ssize_t isize, Py_ssize_t nnz) {
    for (Py_ssize_t r = 0; r + 1 < nptr; r++) {
        uint64_t a = ld(indptr, psize, r), b = ld(indptr, psize, r + 1);
        if (b > (uint64_t)nnz || a > b) return -1;
        for (uint64_t j = a + 1; j < b; j++)
            if (ld(indices, isize, j) <= ld(indices, isize, j - 1)) return 0;
    }
    return 1;
}

/* csr_rows_increasing(indptr, indices) -> 1 (strictly increasing in each row), 0 (not), -1
 * (a pointer out of range: the caller checked them, so never). */
FASTCALL(csr_rows_increasing) {
    sc_bufs s = {.n = 0};
    sc_arr indptr = {0}, indices = {0};
    PyObject *res = NULL;
    const char *fn = "csr_rows_increasing";
    if (sc_nargs(nargs, 2, fn) < 0) return NULL;
    if (get(&s, args[0], 0, 0, "indptr", &indptr) < 0 || item_ok(&indptr, fn, "indptr") < 0 ||
        get(&s, args[1], 0, 0, "indices", &indices) < 0 ||
        item_ok(&indices, fn, "indices") < 0)
        goto done;
    int rc;
    Py_ssize_t ps = indptr.itemsize, is = indices.itemsize;
    Py_BEGIN_ALLOW_THREADS
    switch (is) {
    case 1: rc = rows_increasing_body(indptr.p, ps, indptr.n, indices.p, 1, indices.n); break;
    case 2: rc = rows_increasing_body(indptr.p, ps, indptr.n, indices.p, 2, indices.n); break;
    case 4: rc = rows_increasing_body(indptr.p, ps, indptr.n, indices.p, 4, indices.n); break;
    default: rc = rows_increasing_body(indptr.p, ps, indptr.n, indices.p, 8, indices.n); break;
    }
    Py_END_ALLOW_THREADS
    res = PyLong_FromLong(rc);
done:
    sc_release(&s);
    return res;
}

/* The compressed layout of x (rows x cols, C order) in one pass a row: CSR (by rows) writes
 * each entry and its column at slot k and moves k on past the entries kept (those other than
 * their row's fill f), so no branch decides; CSC (by columns) counts each column's kept entries
 * first (its pointers), then writes each entry and its row at its column's next slot, or at
 * the spare slot nnz when it is not kept. The slots need room for nnz + 1 (the spare); -1 if
 * there is not. */
SC_INLINE Py_ssize_t csr_split_body(const void *restrict x, Py_ssize_t rows, Py_ssize_t cols,
                                    int by_columns, const void *restrict fill, Py_ssize_t nfill,
                                    void *restrict data, void *restrict indices, Py_ssize_t cap,
                                    void *restrict indptr, Py_ssize_t psize,
                                    int64_t *restrict head, Py_ssize_t size, Py_ssize_t isize) {
    uint64_t f = nfill ? ld(fill, size, 0) : 0;
    if (!by_columns) {
        Py_ssize_t k = 0;
        st(indptr, psize, 0, 0);
        for (Py_ssize_t r = 0; r < rows; r++) {
            if (nfill > 1) f = ld(fill, size, r);
            if (cap - k <= cols) { /* room for the row and the spare slot, else checked each */
                for (Py_ssize_t c = 0; c < cols; c++) {
                    const uint64_t v = ld(x, size, r * cols + c);
                    if (v == f) continue;
                    if (k + 1 >= cap) return -1;
                    st(data, size, k, v);
                    st(indices, isize, k, (uint64_t)c);
                    k++;
                }
            } else {
                for (Py_ssize_t c = 0; c < cols; c++) {
                    const uint64_t v = ld(x, size, r * cols + c);
                    st(data, size, k, v);
                    st(indices, isize, k, (uint64_t)c);
                    k += v != f;
                }
            }
            st(indptr, psize, r + 1, (uint64_t)k);
        }
        return k;
    }
    for (Py_ssize_t c = 0; c <= cols; c++) head[c] = 0;
    for (Py_ssize_t r = 0; r < rows; r++) { /* each column's count, at head[c + 1] */
        if (nfill > 1) f = ld(fill, size, r);
        for (Py_ssize_t c = 0; c < cols; c++) head[c + 1] += ld(x, size, r * cols + c) != f;
    }
    for (Py_ssize_t c = 0; c < cols; c++) head[c + 1] += head[c];
    const int64_t nnz = head[cols];
    if (nnz + 1 > cap) return -1;
    for (Py_ssize_t c = 0; c <= cols; c++) st(indptr, psize, c, (uint64_t)head[c]);
    for (Py_ssize_t r = 0; r < rows; r++) {
        if (nfill > 1) f = ld(fill, size, r);
        for (Py_ssize_t c = 0; c < cols; c++) {
            const uint64_t v = ld(x, size, r * cols + c);
            const int keep = v != f;
            const int64_t at = keep ? head[c] : nnz;
            st(data, size, at, v);
            st(indices, isize, at, (uint64_t)r);
            head[c] += keep;
        }
    }
    return nnz;
}

/* csr_split(x, rows, cols, by_columns, fill_or_None, data (w), indices (w), indptr (w)) ->
 * entries kept, or -1 if data and indices (as many slots each) have no room for them and a
 * spare slot. Item sizes: x and data alike (and fill), indices and indptr any (unsigned: the
 * caller picks them wide enough for cols - 1 or rows - 1, and for nnz). */
FASTCALL(csr_split) {
    sc_bufs s = {.n = 0};
    sc_arr x = {0}, fill = {0}, data = {0}, indices = {0}, indptr = {0};
    int64_t rows, cols, *head = NULL;
    PyObject *res = NULL;
    const char *fn = "csr_split";
    if (sc_nargs(nargs, 8, fn) < 0) return NULL;
    if (get(&s, args[0], 0, 0, "x", &x) < 0 || item_ok(&x, fn, "x") < 0 ||
        sc_i64(args[1], &rows) < 0 || sc_i64(args[2], &cols) < 0 ||
        get(&s, args[5], 1, 0, "data", &data) < 0 || item_ok(&data, fn, "data") < 0 ||
        get(&s, args[6], 1, 0, "indices", &indices) < 0 ||
        item_ok(&indices, fn, "indices") < 0 || get(&s, args[7], 1, 0, "indptr", &indptr) < 0 ||
        item_ok(&indptr, fn, "indptr") < 0)
        goto done;
    int by_columns = PyObject_IsTrue(args[3]);
    if (by_columns < 0) goto done;
    if (args[4] != Py_None && (get(&s, args[4], 0, 0, "fill", &fill) < 0 ||
                               check_fill(&fill, &x, rows, fn) < 0))
        goto done;
    const Py_ssize_t major = by_columns ? cols : rows;
    if (rows < 0 || cols < 0 || x.n != rows * cols || data.itemsize != x.itemsize ||
        indices.n != data.n || indptr.n != major + 1) {
        fail("%s: sizes do not fit (x %zd items, rows=%lld cols=%lld, data %zd, indices %zd, "
             "indptr %zd)", fn, x.n, (long long)rows, (long long)cols, data.n, indices.n,
             indptr.n);
        goto done;
    }
    if (by_columns && !(head = PyMem_RawMalloc((size_t)(cols + 1) * sizeof(int64_t)))) {
        PyErr_NoMemory();
        goto done;
    }
    Py_ssize_t kept, size = x.itemsize, is = indices.itemsize, ps = indptr.itemsize;
    Py_BEGIN_ALLOW_THREADS
#define SPLIT(S, I) kept = csr_split_body(x.p, rows, cols, by_columns, fill.p, fill.n, data.p, \
                                          indices.p, data.n, indptr.p, ps, head, S, I)
    CSR_SIZES(size, is, SPLIT)
#undef SPLIT
    Py_END_ALLOW_THREADS
    res = PyLong_FromSsize_t(kept);
done:
    PyMem_RawFree(head); /* NULL unless by columns */
    sc_release(&s);
    return res;
}

/* -- row modes --------------------------------------------------------------------------- */

/* Most frequent pattern of each row (ties: the smaller), 8/16-bit items, by a counting table
 * (counts: 2**bits zeroed int64, left zeroed), over the items 0, step, 2 step, ... of each row
 * of `rowlen` (`cols` of them: a planner's sample of long rows, read where they lie). As the
 * numba kernel: rows at least as long as the table count then scan it; shorter rows at least
 * half zeros have mode 0, others are counted and reset through their own items. */
SC_INLINE void row_modes_table_body(const void *restrict x, Py_ssize_t rows, Py_ssize_t rowlen,
                                    Py_ssize_t step, Py_ssize_t cols, int64_t *restrict counts,
                                    Py_ssize_t nbins, void *restrict out, Py_ssize_t size) {
    for (Py_ssize_t r = 0; r < rows; r++) {
        Py_ssize_t base = r * rowlen;
        if (nbins <= cols) {
            for (Py_ssize_t j = 0; j < cols; j++) counts[ld(x, size, base + j * step)]++;
            uint64_t best = 0;
            int64_t best_count = counts[0];
            counts[0] = 0;
            for (Py_ssize_t v = 1; v < nbins; v++) {
                int64_t c = counts[v];
                if (c > best_count) {
                    best = (uint64_t)v;
                    best_count = c;
                }
                counts[v] = 0;
            }
            st(out, size, r, best);
            continue;
        }
        Py_ssize_t zeros = 0;
        for (Py_ssize_t j0 = 0; j0 < cols; j0 += 1 << 16) { /* narrow sums vectorise */
            Py_ssize_t j1 = cols - j0 < (1 << 16) ? cols : j0 + (1 << 16);
            uint32_t z = 0;
            for (Py_ssize_t j = j0; j < j1; j++) z += ld(x, size, base + j * step) == 0;
            zeros += z;
        }
        if (2 * zeros >= cols) {
            st(out, size, r, 0);
            continue;
        }
        /* the largest key (count, then the complement of the pattern) is the most frequent
         * pattern, ties the smaller: a max without branches (random rows mispredict them),
         * taken as the counts grow (a pattern's largest key is the one at its last
         * occurrence, with its final count) */
        const uint64_t ones = size == 1 ? 0xFF : 0xFFFF;
        uint64_t best = 0;
        for (Py_ssize_t j = 0; j < cols; j++) {
            uint64_t e = ld(x, size, base + j * step);
            uint64_t key = ((uint64_t)++counts[e] << (8 * size)) | (ones - e);
            best = key > best ? key : best;
        }
        for (Py_ssize_t j = 0; j < cols; j++) counts[ld(x, size, base + j * step)] = 0;
        st(out, size, r, ones - (best & ones));
    }
}

/* The same loops, plain and compiled for AVX2 (where the compiler vectorises the count of
 * zeros that settles most rows); whole rows (step 1) in loops of their own, contiguous. */
#define ROW_MODES_BY_SIZE                                                                      \
    do {                                                                                       \
        if (size == 1 && step == 1)                                                            \
            row_modes_table_body(x, rows, rowlen, 1, cols, counts, nbins, out, 1);             \
        else if (size == 1)                                                                    \
            row_modes_table_body(x, rows, rowlen, step, cols, counts, nbins, out, 1);          \
        else if (step == 1)                                                                    \
            row_modes_table_body(x, rows, rowlen, 1, cols, counts, nbins, out, 2);             \
        else                                                                                   \
            row_modes_table_body(x, rows, rowlen, step, cols, counts, nbins, out, 2);          \
    } while (0)
static void row_modes_table_scalar(const void *restrict x, Py_ssize_t rows, Py_ssize_t rowlen,
                                   Py_ssize_t step, Py_ssize_t cols, int64_t *restrict counts,
                                   Py_ssize_t nbins, void *restrict out, Py_ssize_t size) {
    ROW_MODES_BY_SIZE;
}
#if SC_X86
SC_TARGET("avx2") static void row_modes_table_avx2(const void *restrict x, Py_ssize_t rows,
                                                   Py_ssize_t rowlen, Py_ssize_t step,
                                                   Py_ssize_t cols, int64_t *restrict counts,
                                                   Py_ssize_t nbins, void *restrict out,
                                                   Py_ssize_t size) {
    ROW_MODES_BY_SIZE;
}

/* 16-bit rows (or samples of them) of at most 64 items in two 32-lane registers: each item
 * compared with the whole row, the lanes equal to it counting one more (two items a step, see
 * below); then the largest count, and the smallest item among the lanes that have it: the
 * mode, ties the smaller, as row_modes_table_body finds it. The 2**16-entry table's random
 * increments and resets cost 1.1-1.8 ns an item on the planner's 64-item samples; this 18-28%
 * less on an AMD EPYC (384 samples of 64, read in place: 42.6 -> 33.7 us), and two items a
 * step about a quarter less again on an Intel Xeon (1536 samples of 64: 184.9-193.8 ->
 * 138.6-144.9 us; docs/benchmarks.md, issue 13's thirty-eighth pass). Rows of 65-128 items, in
 * three or four registers, ran slower than the table on that AMD machine, whose 512-bit
 * operations take two 256-bit steps: they keep the table. Masked loads never touch past the
 * row; a sample is gathered into a buffer first; lanes past the row count nothing; items are
 * read and written whatever their alignment (ld, st, unaligned loads). */
SC_TARGET("avx512f,avx512bw,avx512vl,avx2,bmi,bmi2,popcnt")
SC_INLINE unsigned hmin16(__m512i v) { /* the smallest of 32 unsigned 16-bit lanes */
    __m256i h = _mm256_min_epu16(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1));
    __m128i q = _mm_min_epu16(_mm256_castsi256_si128(h), _mm256_extracti128_si256(h, 1));
    return (unsigned)_mm_cvtsi128_si32(_mm_minpos_epu16(q)) & 0xFFFFu;
}
SC_TARGET("avx512f,avx512bw,avx512vl,avx2,bmi,bmi2,popcnt")
SC_INLINE unsigned hmax16(__m512i v) { /* the largest: the complement of the complements' least */
    return 0xFFFFu - hmin16(_mm512_xor_si512(v, _mm512_set1_epi16(-1)));
}
#define RM_SHORT 64
SC_TARGET("avx512f,avx512bw,avx512vl,avx2,bmi,bmi2,popcnt")
static void row_modes_short16_avx512(const void *restrict x, Py_ssize_t rows,
                                     Py_ssize_t rowlen, Py_ssize_t step, Py_ssize_t cols,
                                     void *restrict out) {
    const __m512i zero = _mm512_setzero_si512(), one = _mm512_set1_epi16(1);
    const __mmask32 live0 = cols >= 32 ? (__mmask32)0xFFFFFFFFu
                                       : (__mmask32)_bzhi_u32(0xFFFFFFFFu, (unsigned)cols),
                    live1 = cols >= 64 ? (__mmask32)0xFFFFFFFFu
                            : cols > 32 ? (__mmask32)_bzhi_u32(0xFFFFFFFFu, (unsigned)(cols - 32))
                                        : (__mmask32)0;
    uint16_t buf[RM_SHORT]; /* the row's items, aligned (the input need not be) */
    for (Py_ssize_t r = 0; r < rows; r++) {
        const void *row = (const char *)x + 2 * r * rowlen;
        if (step != 1) {
            for (Py_ssize_t j = 0; j < cols; j++) buf[j] = (uint16_t)ld(row, 2, j * step);
            row = buf;
        }
        const __m512i v0 = _mm512_maskz_loadu_epi16(live0, row),
                      v1 = _mm512_maskz_loadu_epi16(live1, (const char *)row + 64);
        const unsigned zeros =
            (unsigned)__builtin_popcount(_mm512_mask_cmpeq_epi16_mask(live0, v0, zero)) +
            (unsigned)__builtin_popcount(_mm512_mask_cmpeq_epi16_mask(live1, v1, zero));
        if (2 * (Py_ssize_t)zeros >= cols) {
            st(out, 2, r, 0);
            continue;
        }
        /* items two at a time, their 32 bits broadcast (a load, where a 16-bit broadcast
         * takes a shuffle too): a lane compared as it is meets the pair's item of its own
         * parity, and in a copy with each pair of lanes swapped (s, lane i holding item i ^ 1)
         * the other item, counted in d and swapped back at the end: two compares an item,
         * where a 16-bit broadcast an item added a shuffle to them */
        const __m512i s0 = _mm512_rol_epi32(v0, 16), s1 = _mm512_rol_epi32(v1, 16);
        const __mmask32 sl0 = (__mmask32)(((live0 & 0x55555555u) << 1) |
                                          ((live0 >> 1) & 0x55555555u)),
                        sl1 = (__mmask32)(((live1 & 0x55555555u) << 1) |
                                          ((live1 >> 1) & 0x55555555u));
        __m512i c0 = zero, c1 = zero, d0 = zero, d1 = zero;
        Py_ssize_t j = 0;
        for (; j + 2 <= cols; j += 2) {
            uint32_t pair;
            memcpy(&pair, (const char *)row + 2 * j, 4);
            const __m512i b = _mm512_set1_epi32((int)pair);
            c0 = _mm512_mask_add_epi16(c0, _mm512_mask_cmpeq_epi16_mask(live0, v0, b), c0, one);
            c1 = _mm512_mask_add_epi16(c1, _mm512_mask_cmpeq_epi16_mask(live1, v1, b), c1, one);
            d0 = _mm512_mask_add_epi16(d0, _mm512_mask_cmpeq_epi16_mask(sl0, s0, b), d0, one);
            d1 = _mm512_mask_add_epi16(d1, _mm512_mask_cmpeq_epi16_mask(sl1, s1, b), d1, one);
        }
        if (j < cols) { /* an odd count's last item, alone */
            const __m512i b = _mm512_set1_epi16((short)ld(row, 2, j));
            c0 = _mm512_mask_add_epi16(c0, _mm512_mask_cmpeq_epi16_mask(live0, v0, b), c0, one);
            c1 = _mm512_mask_add_epi16(c1, _mm512_mask_cmpeq_epi16_mask(live1, v1, b), c1, one);
        }
        c0 = _mm512_add_epi16(c0, _mm512_rol_epi32(d0, 16));
        c1 = _mm512_add_epi16(c1, _mm512_rol_epi32(d1, 16));
        /* (a dead lane counts 0: its own compares are masked off, and d holds 0 where the
         * item swapped in is dead) */
        const __m512i top = _mm512_set1_epi16((short)hmax16(_mm512_max_epu16(c0, c1)));
        __m512i least = _mm512_set1_epi16(-1);
        least = _mm512_mask_min_epu16(least, _mm512_mask_cmpeq_epi16_mask(live0, c0, top), least,
                                      v0);
        least = _mm512_mask_min_epu16(least, _mm512_mask_cmpeq_epi16_mask(live1, c1, top), least,
                                      v1);
        st(out, 2, r, hmin16(least));
    }
}
#endif
#undef ROW_MODES_BY_SIZE

/* row_modes_table(x, rows, cols, counts, out[, step]): the modes of items 0, step, ... of each
 * of the rows of `cols` items of x (step 1: the whole rows). */
FASTCALL(row_modes_table) {
    sc_bufs s = {.n = 0};
    sc_arr x = {0}, counts = {0}, out = {0};
    int64_t rows, cols, step = 1;
    PyObject *res = NULL;
    const char *fn = "row_modes_table";
    if (nargs != 5 && nargs != 6) {
        PyErr_Format(PyExc_TypeError, "%s takes 5 or 6 arguments (%zd given)", fn, nargs);
        return NULL;
    }
    if (get(&s, args[0], 0, 0, "x", &x) < 0 || sc_i64(args[1], &rows) < 0 ||
        sc_i64(args[2], &cols) < 0 || get(&s, args[3], 1, 8, "counts", &counts) < 0 ||
        get(&s, args[4], 1, 0, "out", &out) < 0 || (nargs == 6 && sc_i64(args[5], &step) < 0))
        goto done;
    if ((x.itemsize != 1 && x.itemsize != 2) || out.itemsize != x.itemsize || rows < 0 ||
        cols < 0 || step < 1 || x.n != rows * cols || out.n < rows ||
        counts.n != ((Py_ssize_t)1 << (8 * x.itemsize))) {
        fail("%s: sizes do not fit (x %zd items of %zd bytes, rows=%lld cols=%lld step=%lld, "
             "counts %zd, out %zd)", fn, x.n, x.itemsize, (long long)rows, (long long)cols,
             (long long)step, counts.n, out.n);
        goto done;
    }
    const Py_ssize_t samples = cols ? (cols - 1) / step + 1 : 0;
    int level = sc_simd;
    Py_BEGIN_ALLOW_THREADS
#if SC_X86
    if (level >= SC_SIMD_AVX512 && x.itemsize == 2 && samples >= 1 && samples <= RM_SHORT)
        row_modes_short16_avx512(x.p, rows, cols, step, samples, out.p);
    else if (level >= SC_SIMD_AVX2)
        row_modes_table_avx2(x.p, rows, cols, step, samples, counts.p, counts.n, out.p,
                             x.itemsize);
    else
#else
    (void)level;
#endif
        row_modes_table_scalar(x.p, rows, cols, step, samples, counts.p, counts.n, out.p,
                               x.itemsize);
    Py_END_ALLOW_THREADS
    res = Py_NewRef(Py_None);
done:
    sc_release(&s);
    return res;
}

/* Row modes of rows up to RM_HASH_COLS long are counted in a hash table (4x the row, linear
 * probing, at most RM_PROBES steps a value; a row whose values collide more is sorted, so no
 * input is slow); longer rows are sorted. */
#define RM_HASH_COLS 4096
#define RM_PROBES 64
/* Rows up to this long are first tested for distinct items (row_distinct_*: two of 128
 * distinct items share one of its 2**16 slots in 12% of rows, of 64 in 3%). */
#define RM_DISTINCT_COLS 128

#define DEF_SORT(T)                                                                  \
    static void sort_##T(T *a, Py_ssize_t n) {                                       \
        while (n > 16) {                                                             \
            T p0 = a[0], p1 = a[n / 2], p2 = a[n - 1];                               \
            T pivot = p0 < p1 ? (p1 < p2 ? p1 : (p0 < p2 ? p2 : p0))                 \
                              : (p0 < p2 ? p0 : (p1 < p2 ? p2 : p1));                \
            Py_ssize_t i = 0, j = n - 1;                                             \
            for (;;) {                                                               \
                while (a[i] < pivot) i++;                                            \
                while (a[j] > pivot) j--;                                            \
                if (i >= j) break;                                                   \
                T t = a[i];                                                          \
                a[i] = a[j];                                                         \
                a[j] = t;                                                            \
                i++;                                                                 \
                j--;                                                                 \
            }                                                                        \
            /* a[0..j] <= pivot <= a[j+1..n): recurse on the smaller side */         \
            if (j + 1 < n - j - 1) {                                                 \
                sort_##T(a, j + 1);                                                  \
                a += j + 1;                                                          \
                n -= j + 1;                                                          \
            } else {                                                                 \
                sort_##T(a + j + 1, n - j - 1);                                      \
                n = j + 1;                                                           \
            }                                                                        \
        }                                                                            \
        for (Py_ssize_t i = 1; i < n; i++) {                                         \
            T t = a[i];                                                              \
            Py_ssize_t j = i;                                                        \
            for (; j > 0 && a[j - 1] > t; j--) a[j] = a[j - 1];                      \
            a[j] = t;                                                                \
        }                                                                            \
    }                                                                                \
    /* The mode of a short row by counting in a hash table of `1 << bits` slots (keys,     \
     * counts; a count of 0 is an empty slot, and every slot is left empty again; `used`   \
     * lists the slots taken): 0 and the mode in *mode, or -1 when a probe runs past       \
     * RM_PROBES slots (the caller sorts instead, so no input makes it slow). */           \
    static int row_mode_hash_##T(const char *row, Py_ssize_t cols, unsigned bits,       \
                                 T *keys, uint32_t *counts, uint32_t *used, T *mode) {  \
        const size_t m = ((size_t)1 << bits) - 1;                                       \
        Py_ssize_t nused = 0;                                                           \
        int rc = 0;                                                                     \
        for (Py_ssize_t j = 0; j < cols; j++) {                                         \
            T v = (T)ld(row, sizeof(T), j);                                             \
            size_t h = (size_t)(((uint64_t)v * 0x9E3779B97F4A7C15ull) >> (64 - bits));   \
            int probes = 0;                                                             \
            while (counts[h] && keys[h] != v) {                                         \
                h = (h + 1) & m;                                                        \
                if (++probes > RM_PROBES) break;                                        \
            }                                                                           \
            if (probes > RM_PROBES) {                                                   \
                rc = -1;                                                                \
                break;                                                                  \
            }                                                                           \
            if (!counts[h]) {                                                           \
                keys[h] = v;                                                            \
                used[nused++] = (uint32_t)h;                                            \
            }                                                                           \
            counts[h]++;                                                                \
        }                                                                               \
        T best = 0;                                                                     \
        uint32_t best_count = 0;                                                        \
        for (Py_ssize_t i = 0; i < nused; i++) {                                        \
            size_t h = used[i];                                                         \
            uint32_t c = counts[h];                                                     \
            T k = keys[h];                                                              \
            int better = c > best_count || (c == best_count && k < best);               \
            best = better ? k : best;                                                   \
            best_count = better ? c : best_count;                                       \
            counts[h] = 0;                                                              \
        }                                                                               \
        *mode = best;                                                                   \
        return rc;                                                                      \
    }                                                                                   \
    /* Whether a row's items are all distinct, by a bitmap of 2**16 hashed slots (`seen`,  \
     * zeroed, left zeroed): 1 and the least item in *least if no two items share a slot,  \
     * which no repeat can avoid; 0 if two do (a repeat, or hashes that collide: 3% of     \
     * rows of 64 distinct items), for the caller to count the row. No branch on the data: \
     * the planner's samples of float32 rows are mostly distinct, and the hash table's     \
     * probes took ~5 ns an item on them. */                                            \
    static int row_distinct_##T(const char *row, Py_ssize_t cols, uint64_t *seen, T *least) { \
        uint64_t hit = 0;                                                               \
        T low = (T)ld(row, sizeof(T), 0);                                               \
        for (Py_ssize_t j = 0; j < cols; j++) {                                         \
            T v = (T)ld(row, sizeof(T), j);                                             \
            uint32_t h = (uint32_t)(((uint64_t)v * 0x9E3779B97F4A7C15ull) >> 48);       \
            uint64_t b = 1ull << (h & 63);                                              \
            hit |= seen[h >> 6] & b;                                                    \
            seen[h >> 6] |= b;                                                          \
            low = v < low ? v : low;                                                    \
        }                                                                               \
        for (Py_ssize_t j = 0; j < cols; j++)                                           \
            seen[(uint32_t)(((uint64_t)(T)ld(row, sizeof(T), j) * 0x9E3779B97F4A7C15ull) >> 54)] = 0; \
        *least = low;                                                                   \
        return hit == 0;                                                                \
    }                                                                                   \
    static void row_modes_sort_##T(const void *x, Py_ssize_t rows, Py_ssize_t cols,  \
                                   void *out, T *tmp, T *keys, uint32_t *counts,     \
                                   uint32_t *used, unsigned bits, uint64_t *seen) {  \
        for (Py_ssize_t r = 0; r < rows; r++) {                                      \
            const char *row = (const char *)x + r * cols * (Py_ssize_t)sizeof(T);    \
            Py_ssize_t zeros = 0;                                                    \
            for (Py_ssize_t j = 0; j < cols; j++) zeros += ld(row, sizeof(T), j) == 0; \
            if (2 * zeros >= cols) {                                                 \
                st(out, sizeof(T), r, 0);                                            \
                continue;                                                            \
            }                                                                        \
            T hashed;                                                                \
            if (cols <= RM_DISTINCT_COLS && row_distinct_##T(row, cols, seen, &hashed)) { \
                st(out, sizeof(T), r, hashed); /* all distinct: ties, the least wins */ \
                continue;                                                            \
            }                                                                        \
            if (bits && row_mode_hash_##T(row, cols, bits, keys, counts, used, &hashed) == 0) { \
                st(out, sizeof(T), r, hashed);                                       \
                continue;                                                            \
            }                                                                        \
            memcpy(tmp, row, (size_t)cols * sizeof(T));                              \
            sort_##T(tmp, cols);                                                     \
            T best = tmp[0];                                                         \
            Py_ssize_t best_count = 0, run = 0;                                      \
            for (Py_ssize_t j = 0; j < cols; j++) {                                  \
                if (j > 0 && tmp[j] != tmp[j - 1]) run = 0;                          \
                run++;                                                               \
                if (run > best_count) { /* strictly: ties keep the smaller pattern */ \
                    best = tmp[j];                                                   \
                    best_count = run;                                                \
                }                                                                    \
            }                                                                        \
            st(out, sizeof(T), r, best);                                             \
        }                                                                            \
    }
DEF_SORT(uint8_t)
DEF_SORT(uint16_t)
DEF_SORT(uint32_t)
DEF_SORT(uint64_t)

/* Sort unsigned keys ascending in place: an LSD radix sort by 11-bit digits (3 passes for
 * 4-byte keys, 6 for 8-byte ones). One pass over the keys counts the digits of every position;
 * then one stable scatter a position, skipping a position where every key has the same digit.
 * `tmp` holds n keys, `count` RADIX_PASSES(T) * 2048 counters. numpy sorts 4- and 8-byte keys
 * by comparisons: 65536 float32 patterns took 1.34 ms in np.sort on this project's machine,
 * 0.24 ms here (docs/benchmarks.md, issue 13's eleventh pass). */
#define RADIX_BITS 11
#define RADIX_PASSES(T) ((8 * (int)sizeof(T) + RADIX_BITS - 1) / RADIX_BITS)
#define DEF_RADIX(T)                                                                  \
    static void radix_sort_##T(T *a, T *tmp, Py_ssize_t *count, Py_ssize_t n) {       \
        enum { P = RADIX_PASSES(T), D = 1 << RADIX_BITS };                            \
        memset(count, 0, (size_t)P * D * sizeof(Py_ssize_t));                         \
        for (Py_ssize_t i = 0; i < n; i++) {                                          \
            T v = a[i];                                                               \
            for (int p = 0; p < P; p++) count[p * D + ((v >> (RADIX_BITS * p)) & (D - 1))]++; \
        }                                                                             \
        const T first = a[0];                                                         \
        T *src = a, *dst = tmp;                                                       \
        for (int p = 0; p < P; p++) {                                                 \
            Py_ssize_t *at = count + p * D;                                           \
            const int shift = RADIX_BITS * p;                                         \
            if (at[(first >> shift) & (D - 1)] == n) continue; /* one digit value */  \
            Py_ssize_t sum = 0;                                                       \
            for (int d = 0; d < D; d++) {                                             \
                Py_ssize_t c = at[d];                                                 \
                at[d] = sum;                                                          \
                sum += c;                                                             \
            }                                                                         \
            for (Py_ssize_t i = 0; i < n; i++) {                                      \
                T v = src[i];                                                         \
                dst[at[(v >> shift) & (D - 1)]++] = v;                                \
            }                                                                         \
            T *t = src;                                                               \
            src = dst;                                                                \
            dst = t;                                                                  \
        }                                                                             \
        if (src != a) memcpy(a, src, (size_t)n * sizeof(T));                          \
    }
DEF_RADIX(uint32_t)
DEF_RADIX(uint64_t)

/* n keys of 4 or 8 bytes sorted: by the radix sort with scratch `tmp` (n keys rounded up to
 * even, then the counters), or by the quicksort without (tmp NULL). */
static void sort_keys(void *a, void *tmp, Py_ssize_t n, Py_ssize_t itemsize) {
    Py_ssize_t *count = tmp ? (Py_ssize_t *)((char *)tmp + (n + (n & 1)) * itemsize) : NULL;
    if (itemsize == 4) {
        if (tmp) radix_sort_uint32_t(a, tmp, count, n);
        else sort_uint32_t(a, n);
    } else {
        if (tmp) radix_sort_uint64_t(a, tmp, count, n);
        else sort_uint64_t(a, n);
    }
}

/* sort_bits(a): the 4- or 8-byte unsigned keys of the 1-D `a` sorted ascending, in place (a
 * short array by the quicksort above, the rest by radix_sort). */
FASTCALL(sort_bits) {
    sc_bufs s = {.n = 0};
    sc_arr a = {0};
    void *tmp = NULL;
    PyObject *res = NULL;
    const char *fn = "sort_bits";
    if (sc_nargs(nargs, 1, fn) < 0) return NULL;
    if (get(&s, args[0], 1, 0, "a", &a) < 0) goto done;
    if (a.itemsize != 4 && a.itemsize != 8) {
        fail("%s: expected items of 4 or 8 bytes, got %zd", fn, a.itemsize);
        goto done;
    }
    /* the keys' copy, then the counters (8-byte aligned: n * itemsize is a multiple of 4 and
     * of 8 for 8-byte keys; 4-byte keys round n up to even) */
    size_t keys = (size_t)(a.n + (a.n & 1)) * (size_t)a.itemsize;
    if (a.n > 256 && !(tmp = PyMem_RawMalloc(keys + (size_t)RADIX_PASSES(uint64_t) *
                                             ((size_t)1 << RADIX_BITS) * sizeof(Py_ssize_t)))) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    sort_keys(a.p, tmp, a.n, a.itemsize);
    Py_END_ALLOW_THREADS
    res = Py_NewRef(Py_None);
done:
    PyMem_RawFree(tmp);
    sc_release(&s);
    return res;
}

/* sorted_runs(s, values, counts) -> k: the k runs of the sorted 1-D `s` (1/2/4/8-byte
 * items): each run's item into values[0:k] (s's item size) and its length into counts[0:k]
 * (int64); both hold at least len(s) items. A planner asks this of a small tensor's sorted
 * values, where numpy's six calls cost several times the pass. */
SC_INLINE Py_ssize_t sorted_runs_body(const void *restrict x, Py_ssize_t n, void *restrict values,
                                      int64_t *restrict counts, Py_ssize_t size) {
    Py_ssize_t k = 0, start = 0;
    for (Py_ssize_t i = 1; i <= n; i++)
        if (i == n || ld(x, size, i) != ld(x, size, i - 1)) {
            st(values, size, k, ld(x, size, start));
            counts[k++] = (int64_t)(i - start);
            start = i;
        }
    return k;
}

FASTCALL(sorted_runs) {
    const char *fn = "sorted_runs";
    sc_arr x = {0}, values = {0}, counts = {0};
    sc_bufs s = {.n = 0};
    PyObject *res = NULL;
    if (sc_nargs(nargs, 3, fn) < 0 || get(&s, args[0], 0, 0, "s", &x) < 0 ||
        get(&s, args[1], 1, 0, "values", &values) < 0 ||
        get(&s, args[2], 1, 8, "counts", &counts) < 0 || item_ok(&x, fn, "s") < 0)
        goto done;
    if (values.itemsize != x.itemsize || values.n < x.n || counts.n < x.n) {
        fail("%s: values (%zd bytes an item) and counts need the %zd items of s", fn,
             values.itemsize, x.n);
        goto done;
    }
    Py_ssize_t k = 0;
#define RUNS(S) k = sorted_runs_body(x.p, x.n, values.p, counts.p, S)
    Py_BEGIN_ALLOW_THREADS
    SC_BY_SIZE(x.itemsize, RUNS)
    Py_END_ALLOW_THREADS
#undef RUNS
    res = PyLong_FromSsize_t(k);
done:
    sc_release(&s);
    return res;
}

/* Whether more than `limit` distinct keys are among n 4- or 8-byte keys (any alignment): keys
 * go into an open-addressing table (linear probing, at most half full, `slots` a power of two)
 * until one more than `limit` distinct ones are in, so a mostly distinct array answers after
 * about `limit` keys, without the sort a count of them takes. Key 0 marks an empty slot, so it
 * is counted aside. */
#define DEF_DISTINCT(T)                                                                     \
    static int distinct_above_##T(const char *keys, Py_ssize_t n, Py_ssize_t limit,        \
                                  T *table, unsigned bits) {                               \
        const size_t mask = ((size_t)1 << bits) - 1;                                       \
        Py_ssize_t distinct = 0;                                                           \
        int zero = 0;                                                                      \
        for (Py_ssize_t i = 0; i < n; i++) {                                               \
            T k;                                                                           \
            memcpy(&k, keys + i * (Py_ssize_t)sizeof(T), sizeof(T));                       \
            if (!k) {                                                                      \
                if (zero) continue;                                                        \
                zero = 1;                                                                  \
            } else {                                                                       \
                size_t h = (size_t)(((uint64_t)k * 0x9E3779B97F4A7C15ull) >> (64 - bits)); \
                while (table[h] && table[h] != k) h = (h + 1) & mask;                      \
                if (table[h]) continue;                                                    \
                table[h] = k;                                                              \
            }                                                                              \
            if (++distinct > limit) return 1;                                              \
        }                                                                                  \
        return 0;                                                                          \
    }
DEF_DISTINCT(uint32_t)
DEF_DISTINCT(uint64_t)

/* distinct_above(a, limit) -> bool: whether the 1-D `a` of 4- or 8-byte keys holds more than
 * `limit` distinct ones (see DEF_DISTINCT). */
FASTCALL(distinct_above) {
    sc_bufs s = {.n = 0};
    sc_arr a = {0};
    int64_t limit;
    PyObject *res = NULL;
    const char *fn = "distinct_above";
    if (sc_nargs(nargs, 2, fn) < 0) return NULL;
    if (get(&s, args[0], 0, 0, "a", &a) < 0 || sc_i64(args[1], &limit) < 0) goto done;
    if (a.itemsize != 4 && a.itemsize != 8) {
        fail("%s: expected items of 4 or 8 bytes, got %zd", fn, a.itemsize);
        goto done;
    }
    if (limit < 0 || limit >= a.n) { /* n keys hold at most n distinct ones */
        res = Py_NewRef(limit < 0 ? Py_True : Py_False);
        goto done;
    }
    unsigned bits = 4; /* slots: a power of two at least twice limit + 1 */
    while (((Py_ssize_t)1 << bits) < 2 * (limit + 1)) bits++;
    void *table = PyMem_RawCalloc((size_t)1 << bits, (size_t)a.itemsize);
    if (!table) {
        PyErr_NoMemory();
        goto done;
    }
    int above;
    Py_BEGIN_ALLOW_THREADS
    above = a.itemsize == 4 ? distinct_above_uint32_t(a.p, a.n, limit, table, bits)
                            : distinct_above_uint64_t(a.p, a.n, limit, table, bits);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(table);
    res = Py_NewRef(above ? Py_True : Py_False);
done:
    sc_release(&s);
    return res;
}

/* The distinct non-zero keys among n 4- or 8-byte keys (any alignment), counted in an
 * open-addressing table of `1 << bits` slots (keys, counts; linear probing, at most half full
 * while at most `limit` keys are in): the count of distinct keys, zero included, or -1 once more
 * than `limit` are found, or -2 when a probe runs past UF_PROBES slots (keys crowding one part
 * of the table: the caller sorts instead, so no input makes this slow). Key 0 marks an empty
 * slot, so zeros are counted aside, into *zeros. One pass, where a sort takes three and a
 * count of its runs. */
#define UF_PROBES 64
#define DEF_UNIQUE_FEW(T)                                                                   \
    static Py_ssize_t unique_few_##T(const char *keys, Py_ssize_t n, Py_ssize_t limit,      \
                                     T *table, int64_t *counts, unsigned bits,             \
                                     int64_t *zeros) {                                     \
        const size_t mask = ((size_t)1 << bits) - 1;                                       \
        Py_ssize_t distinct = 0;                                                           \
        int64_t z = 0;                                                                     \
        for (Py_ssize_t i = 0; i < n; i++) {                                               \
            T k;                                                                           \
            memcpy(&k, keys + i * (Py_ssize_t)sizeof(T), sizeof(T));                       \
            if (!k) {                                                                      \
                z++;                                                                       \
                continue;                                                                  \
            }                                                                              \
            size_t h = (size_t)(((uint64_t)k * 0x9E3779B97F4A7C15ull) >> (64 - bits));     \
            for (int probes = 0; table[h] && table[h] != k; h = (h + 1) & mask)            \
                if (++probes > UF_PROBES) return -2;                                       \
            if (!table[h]) {                                                               \
                if (++distinct + (z > 0) > limit) return -1;                               \
                table[h] = k;                                                              \
            }                                                                              \
            counts[h]++;                                                                   \
        }                                                                                  \
        *zeros = z;                                                                        \
        return distinct + (z > 0) > limit ? -1 : distinct + (z > 0);                       \
    }                                                                                      \
    /* The table's keys ascending into out (zero first, if counted) with their counts. */   \
    static void unique_few_gather_##T(const T *table, const int64_t *counts, unsigned bits, \
                                      int64_t zeros, T *out, int64_t *out_counts,          \
                                      Py_ssize_t k) {                                      \
        const size_t mask = ((size_t)1 << bits) - 1;                                       \
        Py_ssize_t j = zeros > 0, at = j;                                                  \
        for (size_t h = 0; h <= mask; h++)                                                 \
            if (table[h]) out[j++] = table[h];                                             \
        sort_##T(out + at, k - at);                                                        \
        if (zeros) {                                                                       \
            out[0] = 0;                                                                    \
            out_counts[0] = zeros;                                                         \
        }                                                                                  \
        for (Py_ssize_t i = at; i < k; i++) { /* each key's count: probed again */        \
            size_t h = (size_t)(((uint64_t)out[i] * 0x9E3779B97F4A7C15ull) >> (64 - bits)); \
            while (table[h] != out[i]) h = (h + 1) & mask;                                 \
            out_counts[i] = counts[h];                                                     \
        }                                                                                  \
    }
DEF_UNIQUE_FEW(uint32_t)
DEF_UNIQUE_FEW(uint64_t)

/* unique_few(a, limit, values, counts) -> k: the k distinct keys of the 1-D `a` (4- or 8-byte
 * keys) ascending into values[0:k] (a's item size) and how often each occurs into counts[0:k]
 * (int64), when k <= limit (<= 2**16; values and counts hold min(limit, len(a)) items at
 * least); -1 when more than `limit` are distinct, -2 when the table's probes run long (see
 * DEF_UNIQUE_FEW): np.unique(a, return_counts=True) without a sort, for a planner's few
 * distinct values. */
FASTCALL(unique_few) {
    sc_bufs s = {.n = 0};
    sc_arr a = {0}, values = {0}, counts = {0};
    int64_t limit;
    PyObject *res = NULL;
    const char *fn = "unique_few";
    if (sc_nargs(nargs, 4, fn) < 0) return NULL;
    if (get(&s, args[0], 0, 0, "a", &a) < 0 || sc_i64(args[1], &limit) < 0 ||
        get(&s, args[2], 1, 0, "values", &values) < 0 ||
        get(&s, args[3], 1, 8, "counts", &counts) < 0)
        goto done;
    if (a.itemsize != 4 && a.itemsize != 8) {
        fail("%s: expected items of 4 or 8 bytes, got %zd", fn, a.itemsize);
        goto done;
    }
    if (limit < 0 || limit > (1 << 16)) {
        fail("%s: limit %lld is not in [0, 65536]", fn, (long long)limit);
        goto done;
    }
    Py_ssize_t room = limit < a.n ? (Py_ssize_t)limit : a.n;
    if (values.itemsize != a.itemsize || values.n < room || counts.n < room) {
        fail("%s: values (%zd items of %zd bytes) and counts (%zd) need %zd items of %zd bytes",
             fn, values.n, values.itemsize, counts.n, room, a.itemsize);
        goto done;
    }
    unsigned bits = 4; /* slots: a power of two at least twice room + 1 (n keys: <= n distinct) */
    while (((Py_ssize_t)1 << bits) < 2 * (room + 1)) bits++;
    size_t slots = (size_t)1 << bits;
    void *table = PyMem_RawCalloc(slots, (size_t)a.itemsize + sizeof(int64_t));
    if (!table) {
        PyErr_NoMemory();
        goto done;
    }
    int64_t *tcounts = (int64_t *)table, zeros = 0; /* counts first: 8-byte aligned */
    void *tkeys = tcounts + slots;
    Py_ssize_t k;
    Py_BEGIN_ALLOW_THREADS
    if (a.itemsize == 4) {
        k = unique_few_uint32_t(a.p, a.n, limit, tkeys, tcounts, bits, &zeros);
        if (k >= 0) unique_few_gather_uint32_t(tkeys, tcounts, bits, zeros, values.p, counts.p, k);
    } else {
        k = unique_few_uint64_t(a.p, a.n, limit, tkeys, tcounts, bits, &zeros);
        if (k >= 0) unique_few_gather_uint64_t(tkeys, tcounts, bits, zeros, values.p, counts.p, k);
    }
    Py_END_ALLOW_THREADS
    PyMem_RawFree(table);
    res = PyLong_FromSsize_t(k);
done:
    sc_release(&s);
    return res;
}

/* The n 4- or 8-byte keys' non-zero ones counted by hash (the key's Fibonacci hash, 2**16
 * bins, zeroed first): most = the fullest bin, occupied = the bins not empty. A pattern
 * occurring r times fills its bin to r or more, and the distinct non-zero patterns are at
 * least the occupied bins, so both questions of a planner's sample (a pattern repeating often
 * enough to fill, mostly distinct values) are settled in one pass when the answer is no / yes,
 * without the sort an exact count takes. */
#define DEF_HASH_BINS(T)                                                                    \
    static void hash_bins_##T(const char *keys, Py_ssize_t n, Py_ssize_t step,             \
                              uint32_t *bins, int64_t *most, int64_t *occupied,            \
                              int64_t *zeros) {                                            \
        uint32_t top = 0;                                                                  \
        int64_t used = 0, none = 0;                                                        \
        memset(bins, 0, ((size_t)1 << 16) * sizeof(uint32_t));                             \
        for (Py_ssize_t i = 0; i < n; i += step) {                                         \
            T k;                                                                           \
            memcpy(&k, keys + i * (Py_ssize_t)sizeof(T), sizeof(T));                       \
            if (!k) {                                                                      \
                none++;                                                                    \
                continue;                                                                  \
            }                                                                              \
            size_t h = (size_t)(((uint64_t)k * 0x9E3779B97F4A7C15ull) >> 48);              \
            uint32_t c = ++bins[h];                                                        \
            used += c == 1;                                                                \
            top = c > top ? c : top;                                                       \
        }                                                                                  \
        *most = top;                                                                       \
        *occupied = used;                                                                  \
        *zeros = none;                                                                     \
    }
DEF_HASH_BINS(uint32_t)
DEF_HASH_BINS(uint64_t)

/* hash_bins(a, bins[, step]) -> (most, occupied, zeros): keys 0, step, 2 step, ... of the 1-D
 * `a` of 4- or 8-byte keys counted by hash into `bins` (2**16 uint32, overwritten; see
 * DEF_HASH_BINS), and the zero keys among them: a planner's sample of every step-th value,
 * read where it lies (made contiguous, then its zeros counted by numpy on the strided view:
 * 24 + 34 us of a 147,456-value float32 encode). */
FASTCALL(hash_bins) {
    sc_bufs s = {.n = 0};
    sc_arr a = {0}, bins = {0};
    int64_t most = 0, occupied = 0, zeros = 0, step = 1;
    PyObject *res = NULL;
    const char *fn = "hash_bins";
    if (nargs != 2 && nargs != 3) {
        PyErr_Format(PyExc_TypeError, "%s takes 2 or 3 arguments (%zd given)", fn, nargs);
        return NULL;
    }
    if (get(&s, args[0], 0, 0, "a", &a) < 0 || get(&s, args[1], 1, 4, "bins", &bins) < 0 ||
        (nargs == 3 && sc_i64(args[2], &step) < 0))
        goto done;
    if (step < 1) {
        fail("%s: step must be at least 1, got %lld", fn, (long long)step);
        goto done;
    }
    if (a.itemsize != 4 && a.itemsize != 8) {
        fail("%s: expected items of 4 or 8 bytes, got %zd", fn, a.itemsize);
        goto done;
    }
    if (bins.n != (Py_ssize_t)1 << 16 || a.n > UINT32_MAX) {
        fail("%s: %zd bins for %zd keys (2**16 bins, fewer than 2**32 keys)", fn, bins.n, a.n);
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    if (a.itemsize == 4) hash_bins_uint32_t(a.p, a.n, step, bins.p, &most, &occupied, &zeros);
    else hash_bins_uint64_t(a.p, a.n, step, bins.p, &most, &occupied, &zeros);
    Py_END_ALLOW_THREADS
    res = Py_BuildValue("(LLL)", (long long)most, (long long)occupied, (long long)zeros);
done:
    sc_release(&s);
    return res;
}

/* The float16 pattern of the float32 pattern v, if v is a float16 value exactly: zeros,
 * normals, float16's subnormals (float32 normals whose significand float16 holds shifted),
 * infinities and NaNs whose payload float16 keeps (the low 13 bits zero). 1, or 0 if not. The
 * map keeps the order of patterns: both formats order them by sign, then magnitude. */
SC_INLINE int half_of(uint32_t v, uint16_t *h) {
    const uint32_t sign = (v >> 16) & 0x8000, e = (v >> 23) & 0xFF, m = (v & 0x7FFFFF) >> 13;
    if (v & 0x1FFF) return 0; /* mantissa bits below float16's ten */
    if (e >= 113 && e <= 142) *h = (uint16_t)(sign | ((e - 112) << 10) | m);
    else if (e == 255) *h = (uint16_t)(sign | 0x7C00 | m);
    else if (e == 0 && m == 0) *h = (uint16_t)sign;
    else if (e >= 103 && e <= 112 && !((1024 | m) & ((1u << (113 - e)) - 1)))
        *h = (uint16_t)(sign | ((1024 | m) >> (113 - e)));
    else return 0;
    return 1;
}

/* The float32 pattern of the float16 pattern h (exact; NaN payloads kept, not quieted). */
SC_INLINE uint32_t float_of(uint16_t h) {
    const uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1F, m = h & 0x3FF;
    if (e == 31) return sign | 0x7F800000u | (m << 13);
    if (e) return sign | ((e + 112) << 23) | (m << 13);
    if (!m) return sign;
    unsigned p = 31 - (unsigned)__builtin_clz(m); /* m = 2**p + rest, p < 10 */
    return sign | ((103 + p) << 23) | ((m << (23 - p)) & 0x7FFFFF);
}

/* half_of for the first n - n % 8 patterns, eight a step in AVX2 lanes (each case a mask:
 * normal, infinity or NaN, zero, subnormal with its bits kept; any other, or a mantissa bit
 * below float16's, fails the step): the patterns done, up to the first step that failed
 * (the caller takes it from there one by one, as the scalar twin takes them all). */
#if SC_X86
SC_TARGET("avx2") static Py_ssize_t half_avx2(const uint32_t *v, uint16_t *h, Py_ssize_t n) {
    const __m256i low13 = _mm256_set1_epi32(0x1FFF), ff = _mm256_set1_epi32(0xFF),
                  m10 = _mm256_set1_epi32(0x3FF), s16 = _mm256_set1_epi32(0x8000),
                  one = _mm256_set1_epi32(1), c1024 = _mm256_set1_epi32(1024),
                  inf = _mm256_set1_epi32(0x7C00), zero = _mm256_setzero_si256();
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i x = _mm256_loadu_si256((const __m256i *)(v + i));
        const __m256i e = _mm256_and_si256(_mm256_srli_epi32(x, 23), ff),
                      m = _mm256_and_si256(_mm256_srli_epi32(x, 13), m10),
                      sign = _mm256_and_si256(_mm256_srli_epi32(x, 16), s16);
        const __m256i normal = _mm256_and_si256(_mm256_cmpgt_epi32(e, _mm256_set1_epi32(112)),
                                                _mm256_cmpgt_epi32(_mm256_set1_epi32(143), e)),
                      special = _mm256_cmpeq_epi32(e, ff),
                      zeros = _mm256_cmpeq_epi32(_mm256_or_si256(e, m), zero),
                      sub_e = _mm256_and_si256(_mm256_cmpgt_epi32(e, _mm256_set1_epi32(102)),
                                               _mm256_cmpgt_epi32(_mm256_set1_epi32(113), e));
        /* a subnormal: (1024 | m) >> k, k = 113 - e, exactly (its k low bits zero) */
        const __m256i k = _mm256_sub_epi32(_mm256_set1_epi32(113), e),
                      full = _mm256_or_si256(c1024, m),
                      lost = _mm256_and_si256(full, _mm256_sub_epi32(_mm256_sllv_epi32(one, k), one)),
                      sub = _mm256_and_si256(sub_e, _mm256_cmpeq_epi32(lost, zero));
        const __m256i ok = _mm256_or_si256(_mm256_or_si256(normal, special),
                                           _mm256_or_si256(zeros, sub));
        if (_mm256_movemask_epi8(ok) != -1 ||
            !_mm256_testz_si256(x, low13)) /* a pattern float16 does not hold: one by one */
            break;
        __m256i r = _mm256_and_si256(normal, _mm256_or_si256(
            _mm256_slli_epi32(_mm256_sub_epi32(e, _mm256_set1_epi32(112)), 10), m));
        r = _mm256_or_si256(r, _mm256_and_si256(special, _mm256_or_si256(inf, m)));
        r = _mm256_or_si256(r, _mm256_and_si256(sub, _mm256_srlv_epi32(full, k)));
        r = _mm256_or_si256(r, sign); /* zeros: the sign alone */
        r = _mm256_permute4x64_epi64(_mm256_packus_epi32(r, r), 0x08);
        _mm_storeu_si128((__m128i *)(h + i), _mm256_castsi256_si128(r));
    }
    return i;
}
#endif

/* half_patterns(a, out) -> bool: a of float32 patterns (uint32) into out (uint16): their
 * float16 patterns if every one is a float16 value exactly (half_of), else False (out partly
 * written); a of float16 patterns (uint16) into out (uint32): their float32 patterns, exactly
 * (True). What float32 weights at float16 precision are counted by (their distinct values,
 * row modes): numpy's conversions took 2.5 ns a value each way and quiet signalling NaNs. */
FASTCALL(half_patterns) {
    sc_bufs s = {.n = 0};
    sc_arr a = {0}, out = {0};
    PyObject *res = NULL;
    const char *fn = "half_patterns";
    if (sc_nargs(nargs, 2, fn) < 0 || get(&s, args[0], 0, 0, "a", &a) < 0) goto done;
    if (a.itemsize != 2 && a.itemsize != 4) {
        fail("%s: expected items of 2 or 4 bytes, got %zd", fn, a.itemsize);
        goto done;
    }
    if (get(&s, args[1], 1, 6 - a.itemsize, "out", &out) < 0) goto done;
    if (out.n != a.n) {
        fail("%s: out has %zd items for %zd values", fn, out.n, a.n);
        goto done;
    }
    int ok = 1, level = sc_simd;
    Py_BEGIN_ALLOW_THREADS
    Py_ssize_t i = 0;
#if SC_X86
    if (a.itemsize == 4 && level >= SC_SIMD_AVX2) i = half_avx2(a.p, out.p, a.n);
#endif
    (void)level;
    if (a.itemsize == 4)
        for (; i < a.n && ok; i++)
            ok = half_of(((const uint32_t *)a.p)[i], &((uint16_t *)out.p)[i]);
    else
        for (Py_ssize_t i = 0; i < a.n; i++)
            ((uint32_t *)out.p)[i] = float_of(((const uint16_t *)a.p)[i]);
    Py_END_ALLOW_THREADS
    res = PyBool_FromLong(ok);
done:
    sc_release(&s);
    return res;
}

/* row_modes_sort(x, rows, cols, out): row modes of any width, by counting short rows in a hash
 * table and sorting a copy of the others. */
FASTCALL(row_modes_sort) {
    sc_bufs s = {.n = 0};
    sc_arr x = {0}, out = {0};
    int64_t rows, cols;
    PyObject *res = NULL;
    const char *fn = "row_modes_sort";
    if (sc_nargs(nargs, 4, fn) < 0) return NULL;
    if (get(&s, args[0], 0, 0, "x", &x) < 0 || item_ok(&x, fn, "x") < 0 ||
        sc_i64(args[1], &rows) < 0 || sc_i64(args[2], &cols) < 0 ||
        get(&s, args[3], 1, 0, "out", &out) < 0)
        goto done;
    if (out.itemsize != x.itemsize || rows < 0 || cols < 0 || x.n != rows * cols ||
        out.n < rows) {
        fail("%s: sizes do not fit (x %zd items, rows=%lld cols=%lld, out %zd)", fn, x.n,
             (long long)rows, (long long)cols, out.n);
        goto done;
    }
    unsigned bits = 0; /* hash slots: the power of two at least 4x the row (0: no hashing) */
    if (cols > 0 && cols <= RM_HASH_COLS)
        while (((Py_ssize_t)1 << bits) < 4 * cols) bits++;
    size_t slots = (size_t)1 << bits;
    void *tmp = PyMem_RawMalloc((size_t)(cols ? cols : 1) * (size_t)x.itemsize);
    void *keys = PyMem_RawMalloc(slots * (size_t)x.itemsize);
    uint32_t *counts = PyMem_RawCalloc(slots, sizeof(uint32_t));
    uint32_t *used = PyMem_RawMalloc((size_t)(cols ? cols : 1) * sizeof(uint32_t));
    uint64_t *seen = PyMem_RawCalloc(1024, sizeof(uint64_t)); /* 2**16 bits */
    if (!tmp || !keys || !counts || !used || !seen) {
        PyMem_RawFree(tmp);
        PyMem_RawFree(keys);
        PyMem_RawFree(counts);
        PyMem_RawFree(used);
        PyMem_RawFree(seen);
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    switch (x.itemsize) {
    case 1: row_modes_sort_uint8_t(x.p, rows, cols, out.p, tmp, keys, counts, used, bits, seen); break;
    case 2: row_modes_sort_uint16_t(x.p, rows, cols, out.p, tmp, keys, counts, used, bits, seen); break;
    case 4: row_modes_sort_uint32_t(x.p, rows, cols, out.p, tmp, keys, counts, used, bits, seen); break;
    default: row_modes_sort_uint64_t(x.p, rows, cols, out.p, tmp, keys, counts, used, bits, seen); break;
    }
    Py_END_ALLOW_THREADS
    PyMem_RawFree(tmp);
    PyMem_RawFree(keys);
    PyMem_RawFree(counts);
    PyMem_RawFree(used);
    PyMem_RawFree(seen);
    res = Py_NewRef(Py_None);
done:
    sc_release(&s);
    return res;
}

/* -- window ---------------------------------------------------------------------------------- */

/* The window layout (codecs/window.py, docs/codecs/window.md) decoded row by row: the 6-bit
 * pair codes and the 3-bit exponent codes unpacked into scratch 24 bits at a time, then the
 * row's kept values rebuilt (win_kept_row; 2-byte values 16 at a time on AVX2)
 *   x = (rest >> shift) << (shift + width) | F << shift | rest & (2**shift - 1)
 * with its groups' pattern codes, into the output (the products' kept values) or into scratch,
 * from which each group of the dense row is written whole (win_dense_row). Checks (-3): pair
 * codes < 36, the missing last group's code 0, zero padding bits, codes < ntab or 7, an
 * escape's code 7, rests within their bits; -1: a non-zero value in a padding slot. */
static const uint8_t win_pos[6][2] = {{0, 1}, {0, 2}, {0, 3}, {1, 2}, {1, 3}, {2, 3}};

/* n fields of `bits` (3 or 6) bits from a byte row of `len` bytes into out[0..n): 3 bytes at a
 * time, their 8 codes or 4 pair codes spread to one a byte by splitting the word in halves
 * (each half's upper part moved up, masked apart) until each field has its byte: 3-bit, 12-bit
 * halves at bits 0 and 32, 6-bit quarters at 0, 16, 32 and 48, then the codes; 6-bit, 12-bit
 * halves at 0 and 16, then the pair codes. Stored as one word (8 bytes of room in out: the
 * 3-bit step stores 8 codes, the 6-bit one 4 and 4 zeros the next step overwrites). */
static void win_unpack(const uint8_t *row, int64_t len, int bits, int64_t n, uint8_t *out) {
    const int per = 24 / bits; /* fields per 3 bytes: 8 codes or 4 pair codes */
    int64_t f = 0, byte = 0;
    for (; f + 8 <= n && byte + 3 <= len; f += per, byte += 3) {
        uint64_t w = (uint64_t)row[byte] | (uint64_t)row[byte + 1] << 8 |
                     (uint64_t)row[byte + 2] << 16;
        if (bits == 3) {
            w = (w & 0xFFF) | (w >> 12 & 0xFFF) << 32;
            w = (w & 0x0000003F0000003Full) | (w >> 6 & 0x0000003F0000003Full) << 16;
            w = (w & 0x0007000700070007ull) | (w >> 3 & 0x0007000700070007ull) << 8;
        } else {
            w = (w & 0xFFF) | (w >> 12 & 0xFFF) << 16;
            w = (w & 0x003F003Full) | (w >> 6 & 0x003F003Full) << 8;
        }
        memcpy(out + f, &w, 8);
    }
    for (; f < n; f++) out[f] = (uint8_t)win_field(row, len, f * bits, bits);
}

/* win_unpack's inverse: `rows` rows of k fields (bytes below 2**bits, bits 3 or 6) into rows of
 * win_pattern_bytes / win_code_bytes bytes, LSB first, each row's padding bits zero: 8 codes or
 * 4 pair codes of a word gathered into 3 bytes by the unpack's steps in reverse. Returns 0, or
 * -1 for a field too wide (nothing past `out` written either way). */
static int win_pack(const uint8_t *fields, int64_t rows, int64_t k, int bits, uint8_t *out) {
    const int per = 24 / bits;
    const int64_t rb = (k * bits + 7) / 8;
    const uint64_t high = 0x0101010101010101ull * (uint8_t)(0xFFu << bits); /* bits past a field */
    uint64_t wide = 0;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *f = fields + r * k;
        uint8_t *o = out + r * rb;
        for (int64_t i = 0, at = 0; i < k; i += per, at += 3) {
            uint8_t buf[8] = {0};
            const int64_t n = k - i < per ? k - i : per;
            memcpy(buf, f + i, (size_t)n);
            uint64_t w;
            memcpy(&w, buf, 8);
            wide |= w & high;
            if (bits == 3) {
                w = (w & 0x0007000700070007ull) | (w >> 8 & 0x0007000700070007ull) << 3;
                w = (w & 0x0000003F0000003Full) | (w >> 16 & 0x0000003F0000003Full) << 6;
                w = (w & 0xFFF) | (w >> 32 & 0xFFF) << 12;
            } else {
                w = (w & 0x003F003Full) | (w >> 8 & 0x003F003Full) << 6;
                w = (w & 0xFFF) | (w >> 16 & 0xFFF) << 12;
            }
            for (int64_t b = 0; b < 3 && at + b < rb; b++) o[at + b] = (uint8_t)(w >> (8 * b));
        }
    }
    return wide ? -1 : 0;
}

/* window_pack(fields u8 (rows x k), bits, out (w, rows x row bytes)) -> 0, or -1 for a field of
 * more than `bits` bits. */
FASTCALL(window_pack) {
    const char *fn = "window_pack";
    sc_bufs s = {.n = 0};
    sc_arr fields = {0}, out = {0};
    int64_t rows, k, bits;
    PyObject *res = NULL;
    if (sc_nargs(nargs, 5, fn) < 0 || get(&s, args[0], 0, 1, "fields", &fields) < 0 ||
        sc_i64(args[1], &rows) < 0 || sc_i64(args[2], &k) < 0 || sc_i64(args[3], &bits) < 0 ||
        get(&s, args[4], 1, 1, "out", &out) < 0)
        goto done;
    if ((bits != 3 && bits != 6) || rows < 0 || k < 0 || fields.n != rows * k ||
        out.n != rows * ((k * bits + 7) / 8)) {
        fail("%s: sizes do not fit (%zd fields, rows=%lld, k=%lld, bits=%lld, out %zd)", fn,
             fields.n, (long long)rows, (long long)k, (long long)bits, out.n);
        goto done;
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = win_pack(fields.p, rows, k, (int)bits, out.p);
    Py_END_ALLOW_THREADS
    res = PyLong_FromLong(rc);
done:
    sc_release(&s);
    return res;
}

/* A pair code's two group codes (pair / 6, pair % 6; past 35, anything: refused). */
static const uint8_t win_pair_hi[256] = {
    0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2,
    3, 3, 3, 3, 3, 3, 4, 4, 4, 4, 4, 4, 5, 5, 5, 5, 5, 5};
static const uint8_t win_pair_lo[256] = {
    0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5,
    0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5};

#if SC_X86
/* win_kept_row's values loop for 2-byte values (bfloat16 and float16: rest fields of 1 or 2
 * bytes), 16 at a time: the window field of each exponent code by a byte shuffle of the
 * 8-entry table, the rest read as 16-bit lanes; *bad gets a code the window does not have
 * (not 7 and >= ntab, by a second shuffle) or rest bits past rbits. Returns the values done
 * (whole 16s); the scalar loop does the rest, and is this loop's twin. */
SC_TARGET("avx2") static int64_t win_kept16_avx2(const uint8_t *ec, const uint8_t *rest,
                                                int64_t n, const uint32_t *table, int ntab,
                                                int shift, int width, int rbytes, int rbits,
                                                char *out, unsigned *bad) {
    uint8_t tb[16] = {0}, nb[16] = {0};
    for (int c = 0; c < 8; c++) {
        tb[c] = (uint8_t)table[c];
        nb[c] = c != 7 && c >= ntab ? 0xFF : 0;
    }
    const __m128i tab = _mm_loadu_si128((const __m128i *)tb), nott = _mm_loadu_si128((const __m128i *)nb);
    const __m128i sh = _mm_cvtsi32_si128(shift), up = _mm_cvtsi32_si128(shift + width),
                  past = _mm_cvtsi32_si128(rbits < 16 ? rbits : 16);
    const __m256i low = _mm256_set1_epi16((short)((1u << shift) - 1));
    __m256i acc = _mm256_setzero_si256();
    int64_t k = 0;
    for (; k + 16 <= n; k += 16) {
        const __m128i c = _mm_loadu_si128((const __m128i *)(ec + k));
        const __m256i f = _mm256_cvtepu8_epi16(_mm_shuffle_epi8(tab, c));
        acc = _mm256_or_si256(acc, _mm256_cvtepu8_epi16(_mm_shuffle_epi8(nott, c)));
        const __m256i rv = rbytes == 1
            ? _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(rest + k)))
            : _mm256_loadu_si256((const __m256i *)(rest + 2 * k));
        acc = _mm256_or_si256(acc, _mm256_srl_epi16(rv, past)); /* rest bits past rbits */
        const __m256i x = _mm256_or_si256(
            _mm256_or_si256(_mm256_sll_epi16(_mm256_srl_epi16(rv, sh), up), _mm256_sll_epi16(f, sh)),
            _mm256_and_si256(rv, low));
        _mm256_storeu_si256((__m256i *)(out + 2 * k), x);
    }
    *bad |= !_mm256_testz_si256(acc, acc);
    return k;
}
#endif

/* Row r's kept values into orow and its groups' pattern codes into crow (window_body with
 * codes), from its unpacked pair codes pc and exponent codes ec: the same values and checks as
 * the group loop, taken apart so that the values' loop has no branch (a code the window does
 * not have is noted, and the row refused after it) and the row's escapes come after it, each
 * its exponent field put in place of the 0 its code 7 read (3.6 ns a kept value, a branch on
 * the next escape and a byte loop for the rest at every value, before). *e: the first escape
 * not yet placed; 0, or -3 for a bad frame. */
SC_INLINE int win_kept_row(const uint8_t *pc, const uint8_t *ec, const uint8_t *rest,
                           const int64_t *esc, int64_t nesc, const uint8_t *escf,
                           const uint32_t *table, int ntab, int64_t r, int64_t gpr, int shift,
                           int width, int rbytes, int rbits, char *orow, const int osize,
                           uint8_t *crow, int64_t *e, int level) {
    unsigned badp = 0; /* pair codes < 36; the two codes of pair p at 2p and 2p + 1 */
    for (int64_t q = 0; q + 1 < gpr; q += 2) {
        const uint8_t pair = pc[q / 2];
        badp |= pair >= 36;
        crow[q] = win_pair_hi[pair];
        crow[q + 1] = win_pair_lo[pair];
    }
    if (gpr % 2) {
        badp |= pc[gpr / 2] >= 36;
        crow[gpr - 1] = win_pair_hi[pc[gpr / 2]];
    }
    if (badp) return -3;
    const int64_t v0 = r * gpr * 2, n = 2 * gpr;
    const uint64_t low = ((uint64_t)1 << shift) - 1;
    unsigned bad = 0;
    int64_t k = 0;
#if SC_X86
    if (osize == 2 && level >= SC_SIMD_AVX2)
        k = win_kept16_avx2(ec, rest + v0 * rbytes, n, table, ntab, shift, width, rbytes, rbits,
                            orow, &bad);
#else
    (void)level;
#endif
    for (; k < n; k++) {
        const uint8_t c = ec[k];
        bad |= c != 7 && c >= ntab;
        uint64_t rv = 0;
        for (int i = 0; i < rbytes; i++) rv |= (uint64_t)rest[(v0 + k) * rbytes + i] << (8 * i);
        bad |= rbits < 64 && rv >> rbits;
        st(orow, osize, k,
           (rv >> shift) << (shift + width) | (uint64_t)table[c & 7] << shift | (rv & low));
    }
    if (bad) return -3;
    const uint64_t fmask = (((uint64_t)1 << width) - 1) << shift;
    for (; *e < nesc && esc[*e] < v0 + n; ++*e) {
        const int64_t k = esc[*e] - v0; /* >= 0: ascending, and the rows before took theirs */
        if (k < 0 || ec[k] != 7) return -3;
        st(orow, osize, k, (ld(orow, osize, k) & ~fmask) | (uint64_t)escf[*e] << shift);
    }
    return 0;
}

/* Row r's groups into its dense row orow from their pattern codes crow and kept values kv
 * (win_kept_row's): each group a whole 4-item write (its two values at their positions, zeros
 * elsewhere), the padded last group item by item (-1 if a value sits in a padding slot). */
SC_INLINE int win_dense_row(const uint8_t *crow, const char *kv, int64_t gpr, int64_t cols,
                            char *orow, const int osize) {
    const int64_t full = cols / 4; /* the groups whose 4 items are all in the row */
    if (osize == 2) {
        for (int64_t q = 0; q < full; q++) {
            const uint8_t c = crow[q];
            uint16_t v[2];
            memcpy(v, kv + 4 * q, 4);
            const uint64_t word = (uint64_t)v[0] << (16 * win_pos[c][0]) |
                                  (uint64_t)v[1] << (16 * win_pos[c][1]);
            memcpy(orow + 8 * q, &word, 8);
        }
    } else {
        for (int64_t q = 0; q < full; q++) {
            const int p0 = win_pos[crow[q]][0], p1 = win_pos[crow[q]][1];
            uint32_t v[2];
            memcpy(v, kv + 8 * q, 8);
            const uint64_t a = (uint64_t)v[0] << (32 * (p0 & 1)), b = (uint64_t)v[1] << (32 * (p1 & 1));
            const uint64_t lo = (p0 < 2 ? a : 0) | (p1 < 2 ? b : 0);
            const uint64_t hi = (p0 < 2 ? 0 : a) | (p1 < 2 ? 0 : b);
            memcpy(orow + 16 * q, &lo, 8);
            memcpy(orow + 16 * q + 8, &hi, 8);
        }
    }
    if (full < gpr) { /* the padded last group: columns past the end must decode to zero */
        const int64_t q = full;
        memset(orow + 4 * q * osize, 0, (size_t)((cols - 4 * q) * osize));
        for (int t = 0; t < 2; t++) {
            const int64_t col = 4 * q + win_pos[crow[q]][t];
            const uint64_t x = ld(kv, osize, 2 * q + t);
            if (col >= cols) {
                if (x) return -1;
            } else {
                st(orow, osize, col, x);
            }
        }
    }
    return 0;
}

/* Rows r0 .. r1 - 1, the first escape at or after row r0's first kept value at esc[e0]; the
 * escapes of these rows all placed (*e_end: the first escape after them). */
SC_INLINE int window_body(const uint8_t *pattern, const uint8_t *exps, const uint8_t *rest,
                          const int64_t *esc, int64_t nesc, const uint8_t *escf,
                          const uint8_t *win, int ntab, int64_t r0, int64_t r1, int64_t cols,
                          int shift, int width, int rbytes, int rbits, void *out, const int osize,
                          uint8_t *scratch, uint8_t *codes, int level, int64_t e0,
                          int64_t *e_end) {
    const int64_t gpr = (cols + 3) / 4, pairs = (gpr + 1) / 2;
    const int64_t pb = win_pattern_bytes(gpr), eb = win_code_bytes(gpr);
    /* scratch: the row's pair codes, exponent codes, and for a dense output its groups'
     * codes and kept values (window_decode sizes it) */
    uint8_t *pc = scratch, *ec = scratch + pairs + 8, *crow_d = ec + 2 * gpr + 8;
    char *kv_d = (char *)(crow_d + gpr + 8);
    uint32_t table[8] = {0};
    for (int c = 0; c < ntab; c++) table[c] = win[c];
    int64_t e = e0;
    for (int64_t r = r0; r < r1 && gpr; r++) {
        const uint8_t *prow = pattern + r * pb, *erow = exps + r * eb;
        if (!win_row_ok(prow, erow, gpr)) return -3;
        win_unpack(prow, pb, 6, pairs, pc);
        win_unpack(erow, eb, 3, 2 * gpr, ec);
        /* kept (codes != NULL): out holds the kept values, codes the groups' pattern codes;
         * dense: the row's kept values and codes into scratch, then the row of out from them */
        char *kv = codes ? (char *)out + r * gpr * 2 * osize : kv_d;
        uint8_t *crow = codes ? codes + r * gpr : crow_d;
        if (win_kept_row(pc, ec, rest, esc, nesc, escf, table, ntab, r, gpr, shift, width,
                         rbytes, rbits, kv, osize, crow, &e, level))
            return -3;
        if (!codes && win_dense_row(crow, kv, gpr, cols, (char *)out + r * cols * osize, osize))
            return -1;
    }
    *e_end = e;
    return 0;
}

/* window_decode's rows over threads: part i decodes a run of whole rows, from the first escape
 * at or after its first kept value (a binary search of the ascending escapes), into its own
 * scratch; the first failure in row order is the answer, as one pass would give it. */
typedef struct {
    const uint8_t *pattern, *exps, *rest, *escf, *win;
    const int64_t *esc;
    int64_t nesc, rows, cols, shift, width, rbytes, rbits, per, gpr;
    int ntab, osize, level, kind, parts; /* kind: 0 bfloat16's constants, 1 any 2-byte, 2 4-byte */
    void *out;
    uint8_t *codes, *scratch;
    size_t scratch_size;
    int rc[SC_MAX_THREADS];
    int64_t e_end[SC_MAX_THREADS];
} win_job;

static void window_part(void *ctx, int i) {
    win_job *J = ctx;
    const int64_t r0 = i * J->per, r1 = i == J->parts - 1 ? J->rows : r0 + J->per;
    int64_t lo = 0, hi = J->nesc, v0 = r0 * J->gpr * 2; /* the first escape >= v0 */
    while (lo < hi) {
        const int64_t mid = lo + (hi - lo) / 2;
        if (J->esc[mid] < v0) lo = mid + 1;
        else hi = mid;
    }
    uint8_t *scratch = J->scratch + (size_t)i * J->scratch_size;
    int64_t *e = &J->e_end[i];
    if (J->kind == 0)
        J->rc[i] = window_body(J->pattern, J->exps, J->rest, J->esc, J->nesc, J->escf, J->win,
                               J->ntab, r0, r1, J->cols, 7, 8, 1, 8, J->out, 2, scratch, J->codes,
                               J->level, lo, e);
    else
        J->rc[i] = window_body(J->pattern, J->exps, J->rest, J->esc, J->nesc, J->escf, J->win,
                               J->ntab, r0, r1, J->cols, (int)J->shift, (int)J->width,
                               (int)J->rbytes, (int)J->rbits, J->out, J->kind == 1 ? 2 : 4,
                               scratch, J->codes, J->level, lo, e);
}

/* window_decode(pattern, exps, rest, escapes, escaped, window, rows, cols, shift, width,
 *               rbits, out, codes, threads) -> 0, -1 padding slot, -3 bad frame. out: 2- or
 * 4-byte items, the dense array (codes None) or the kept values (codes: a uint8 per group,
 * written); escapes int64, checked ascending and below rows * gpr * 2 by the caller
 * (re-checked). With threads > 1 and at least 2**18 kept values, rows in runs side by side. */
FASTCALL(window_decode) {
    const char *fn = "window_decode";
    sc_bufs s = {.n = 0};
    PyObject *res = NULL;
    sc_arr pat, exps, rest, esc, escf, win, out, codes = {0};
    int64_t rows, cols, shift, width, rbits;
    int64_t threads;
    if (sc_nargs(nargs, 14, fn) < 0 || sc_i64(args[13], &threads) < 0) return NULL;
    if (threads < 1) {
        fail("%s: threads must be >= 1", fn);
        return NULL;
    }
    if (threads > SC_MAX_THREADS) threads = SC_MAX_THREADS;
    if (get(&s, args[0], 0, 1, "pattern", &pat) < 0 || get(&s, args[1], 0, 1, "exps", &exps) < 0 ||
        get(&s, args[2], 0, 1, "rest", &rest) < 0 || get(&s, args[3], 0, 8, "escapes", &esc) < 0 ||
        get(&s, args[4], 0, 1, "escaped", &escf) < 0 || get(&s, args[5], 0, 1, "window", &win) < 0 ||
        sc_i64(args[6], &rows) < 0 || sc_i64(args[7], &cols) < 0 || sc_i64(args[8], &shift) < 0 ||
        sc_i64(args[9], &width) < 0 || sc_i64(args[10], &rbits) < 0 ||
        get(&s, args[11], 1, 0, "out", &out) < 0 ||
        (args[12] != Py_None && get(&s, args[12], 1, 1, "codes", &codes) < 0))
        goto done;
    const int64_t gpr = cols > 0 ? (cols + 3) / 4 : 0, pairs = (gpr + 1) / 2;
    const int kept = args[12] != Py_None;
    const int64_t rbytes = (rbits + 7) / 8;
    if (rows < 0 || cols < 0 || (out.itemsize != 2 && out.itemsize != 4) ||
        shift < 0 || width < 1 || width > 8 || rbits < 0 || rbits > 32 ||
        shift + width > 8 * out.itemsize || win.n > 7 || esc.n != escf.n ||
        out.n != (kept ? rows * gpr * 2 : rows * cols) || (kept && codes.n != rows * gpr) ||
        pat.n != rows * win_pattern_bytes(gpr) ||
        exps.n != rows * win_code_bytes(gpr) || rest.n != rows * gpr * 2 * rbytes) {
        fail("%s: sizes or parameters do not fit", fn);
        goto done;
    }
    const int64_t *ev = esc.p;
    for (int64_t i = 0; i < esc.n; i++)
        if (ev[i] < 0 || ev[i] >= rows * gpr * 2 || (i && ev[i] <= ev[i - 1])) {
            fail("%s: escapes not ascending in range", fn);
            goto done;
        }
    if (gpr == 0) { /* no group: however many rows, nothing to do */
        res = PyLong_FromLong(esc.n ? -3 : 0);
        goto done;
    }
    const int parts = rows * gpr * 2 >= (1 << 18) && rows >= threads ? (int)threads : 1;
    /* each part's scratch: pair codes, exponent codes, a dense row's codes and kept values */
    const size_t ssize = (size_t)(pairs + 2 * gpr + gpr + 2 * gpr * out.itemsize + 32);
    win_job J = {pat.p, exps.p, rest.p, escf.p, win.p, ev, esc.n, rows, cols, shift, width,
                 rbytes, rbits, rows / parts, gpr, (int)win.n, (int)out.itemsize, sc_simd,
                 out.itemsize == 4 ? 2 : rbits == 8 && shift == 7 && width == 8 ? 0 : 1, parts,
                 out.p, kept ? codes.p : NULL, PyMem_RawMalloc(ssize * (size_t)parts), ssize,
                 {0}, {0}};
    if (!J.scratch) {
        PyErr_NoMemory();
        goto done;
    }
    Py_BEGIN_ALLOW_THREADS
    if (parts > 1) sc_parallel(parts, window_part, &J);
    else window_part(&J, 0);
    Py_END_ALLOW_THREADS
    PyMem_RawFree(J.scratch);
    int rc = 0;
    for (int i = 0; i < parts && !rc; i++) rc = J.rc[i]; /* the first in row order */
    if (!rc && J.e_end[parts - 1] != esc.n) rc = -3;   /* (the caller checked: never) */
    res = PyLong_FromLong(rc);
done:
    sc_release(&s);
    return res;
}


/* -- packed indices ---------------------------------------------------------------------- */

/* Field i (bits <= 16) of an LSB-first bit stream of nbytes bytes: the 1-3 bytes holding it. */
SC_INLINE uint32_t field_at(const uint8_t *p, Py_ssize_t nbytes, Py_ssize_t i, int bits) {
    const Py_ssize_t bit = i * bits, b = bit >> 3;
    uint32_t w;
    if (SC_LIKELY(b + 4 <= nbytes)) {
        memcpy(&w, p + b, 4);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
        w = __builtin_bswap32(w); /* the stream is LSB first: byte b is the low byte */
#endif
    } else {
        w = p[b];
        if (b + 1 < nbytes) w |= (uint32_t)p[b + 1] << 8;
        if (b + 2 < nbytes) w |= (uint32_t)p[b + 2] << 16;
    }
    return (w >> (bit & 7)) & ((1u << bits) - 1);
}

/* out[i] = table[field i] for count fields of bits (1..16) bits packed LSB first (pack_fields).
 * The bytes hold exactly the fields; the stream's bits after the last field must be 0. */
SC_INLINE int64_t gather_fields_body(const uint8_t *restrict p, Py_ssize_t nbytes, int bits,
                                     Py_ssize_t count, const void *restrict table,
                                     Py_ssize_t k, void *restrict out, Py_ssize_t size) {
    uint32_t top = 0;
    for (Py_ssize_t i = 0; i < count; i++) {
        uint32_t f = field_at(p, nbytes, i, bits);
        top = f > top ? f : top;
        st(out, size, i, (Py_ssize_t)f < k ? ld(table, size, f) : 0);
    }
    const int used = (int)((count * bits) & 7);
    if (used && (p[nbytes - 1] >> used)) return -1;
    return (int64_t)top;
}

static int64_t gather_byte_fields(int level, const uint8_t *restrict p, Py_ssize_t n, int bits,
                                  const void *restrict table, Py_ssize_t k, void *restrict out,
                                  Py_ssize_t size);

/* gather_fields(packed, bits, count, table, out) -> the largest field (every field >= the
 * table's length gives 0), or -1: padding bits after the last field are set. */
FASTCALL(gather_fields) {
    sc_bufs s = {.n = 0};
    sc_arr packed = {0}, table = {0}, out = {0};
    int64_t bits, count;
    PyObject *res = NULL;
    const char *fn = "gather_fields";
    if (sc_nargs(nargs, 5, fn) < 0) return NULL;
    if (get(&s, args[0], 0, 1, "packed", &packed) < 0 || sc_i64(args[1], &bits) < 0 ||
        sc_i64(args[2], &count) < 0 || get(&s, args[3], 0, 0, "table", &table) < 0 ||
        get(&s, args[4], 1, 0, "out", &out) < 0 || item_ok(&out, fn, "out") < 0)
        goto done;
    if (bits < 1 || bits > 16 || count < 0 || out.n != count ||
        table.itemsize != out.itemsize || packed.n != (count * bits + 7) / 8) {
        fail("%s: sizes do not fit (bits=%lld, count=%lld, packed %zd bytes, out %zd items of "
             "%zd bytes, table items of %zd)", fn, (long long)bits, (long long)count, packed.n,
             out.n, out.itemsize, table.itemsize);
        goto done;
    }
    int64_t rc;
    const int level = sc_simd;
    Py_BEGIN_ALLOW_THREADS
    if (8 % bits == 0) { /* whole bytes of fields: the table look-ups of gather_index */
        rc = gather_byte_fields(level, packed.p, count, (int)bits, table.p, table.n, out.p,
                                out.itemsize);
        const int used = (int)((count * bits) & 7);
        if (used && (((const uint8_t *)packed.p)[packed.n - 1] >> used)) rc = -1;
    } else {
#define GF(S) rc = gather_fields_body(packed.p, packed.n, (int)bits, count, table.p, table.n, \
                                     out.p, S)
        SC_BY_SIZE(out.itemsize, GF)
#undef GF
    }
    Py_END_ALLOW_THREADS
    res = PyLong_FromLongLong(rc);
done:
    sc_release(&s);
    return res;
}


/* -- indices into a table ----------------------------------------------------------------- */

/* out[i] = table[idx[i]] for byte indices (k <= 256 entries of `size` bytes), through a copy of
 * the table padded with zeros to 256 entries, so no index reads outside it; returns the largest
 * index, which the caller checks against k. */
SC_INLINE int64_t gather8_scalar(const uint8_t *restrict idx, Py_ssize_t n,
                                 const void *restrict table, Py_ssize_t k,
                                 void *restrict out, Py_ssize_t size) {
    uint64_t pad[256] = {0};
    for (Py_ssize_t j = 0; j < k && j < 256; j++) pad[j] = ld(table, size, j);
    uint8_t top = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint8_t f = idx[i];
        top = f > top ? f : top;
        st(out, size, i, pad[f]);
    }
    return top;
}

/* The same for 16-bit indices (k <= 65536): an index past the table writes 0. */
SC_INLINE int64_t gather16_scalar(const void *restrict idx, Py_ssize_t n,
                                  const void *restrict table, Py_ssize_t k,
                                  void *restrict out, Py_ssize_t size) {
    uint16_t top = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint16_t f = (uint16_t)ld(idx, 2, i);
        top = f > top ? f : top;
        st(out, size, i, (Py_ssize_t)f < k ? ld(table, size, f) : 0);
    }
    return top;
}

#if SC_X86
/* Tables of at most 16 entries of 1, 2 or 4 bytes, for lookup16: byte b of every entry in
 * t[b] (zeros past k). */
SC_TARGET("ssse3") static void small_table_ssse3(const void *restrict table, Py_ssize_t k,
                                                 Py_ssize_t size, __m128i t[4]) {
    uint8_t planes[4][16] = {{0}};
    for (Py_ssize_t j = 0; j < k; j++) {
        const uint64_t v = ld(table, size, j);
        for (Py_ssize_t b = 0; b < size; b++) planes[b][j] = (uint8_t)(v >> (8 * b));
    }
    for (int b = 0; b < 4; b++) t[b] = _mm_loadu_si128((const __m128i *)planes[b]);
}

/* The entries of 16 indices (bytes of v, each < 16) stored at o: one pshufb per byte of the
 * entries, the bytes interleaved back into entries. An index of 16 or more selects some entry
 * or zero: callers refuse such a result by the largest index. */
SC_TARGET("ssse3") SC_INLINE void lookup16_ssse3(__m128i v, const __m128i t[4], char *o,
                                                 Py_ssize_t size) {
    const __m128i b0 = _mm_shuffle_epi8(t[0], v);
    if (size == 1) {
        _mm_storeu_si128((__m128i *)o, b0);
        return;
    }
    const __m128i b1 = _mm_shuffle_epi8(t[1], v);
    const __m128i w0 = _mm_unpacklo_epi8(b0, b1), w1 = _mm_unpackhi_epi8(b0, b1);
    if (size == 2) {
        _mm_storeu_si128((__m128i *)o, w0);
        _mm_storeu_si128((__m128i *)(o + 16), w1);
        return;
    }
    const __m128i b2 = _mm_shuffle_epi8(t[2], v), b3 = _mm_shuffle_epi8(t[3], v);
    const __m128i h0 = _mm_unpacklo_epi8(b2, b3), h1 = _mm_unpackhi_epi8(b2, b3);
    _mm_storeu_si128((__m128i *)o, _mm_unpacklo_epi16(w0, h0));
    _mm_storeu_si128((__m128i *)(o + 16), _mm_unpackhi_epi16(w0, h0));
    _mm_storeu_si128((__m128i *)(o + 32), _mm_unpacklo_epi16(w1, h1));
    _mm_storeu_si128((__m128i *)(o + 48), _mm_unpackhi_epi16(w1, h1));
}

SC_TARGET("ssse3") static int64_t max_lane_ssse3(__m128i top) {
    uint8_t lanes[16];
    _mm_storeu_si128((__m128i *)lanes, top);
    int64_t best = 0;
    for (int j = 0; j < 16; j++) best = lanes[j] > best ? lanes[j] : best;
    return best;
}

/* Byte indices into a table of at most 16 entries of 1, 2 or 4 bytes, 16 indices a step
 * (lookup16_ssse3); the largest index by pmaxub. */
SC_TARGET("ssse3") static int64_t gather8_small_ssse3(const uint8_t *restrict idx, Py_ssize_t n,
                                                     const void *restrict table, Py_ssize_t k,
                                                     void *restrict out, Py_ssize_t size) {
    __m128i t[4], top = _mm_setzero_si128();
    small_table_ssse3(table, k, size, t);
    char *o = (char *)out;
    Py_ssize_t i = 0;
    for (; i + 16 <= n; i += 16, o += 16 * size) {
        const __m128i v = _mm_loadu_si128((const __m128i *)(idx + i));
        top = _mm_max_epu8(top, v);
        lookup16_ssse3(v, t, o, size);
    }
    const int64_t tail = i < n ? gather8_scalar(idx + i, n - i, table, k, o, size) : 0;
    const int64_t best = max_lane_ssse3(top);
    return tail > best ? tail : best;
}
#endif

/* Fields of 1, 2 or 4 bits packed LSB first (whole bytes of 8 / bits fields), looked up as
 * gather8_scalar looks up bytes. */
SC_INLINE int64_t gather_sub8_scalar(const uint8_t *restrict p, Py_ssize_t n, int bits,
                                     const void *restrict table, Py_ssize_t k,
                                     void *restrict out, Py_ssize_t size) {
    uint64_t pad[16] = {0};
    for (Py_ssize_t j = 0; j < k && j < 16; j++) pad[j] = ld(table, size, j);
    const int per = 8 / bits;
    const unsigned mask = (1u << bits) - 1;
    unsigned top = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        const unsigned f = (p[i / per] >> ((i % per) * bits)) & mask;
        top = f > top ? f : top;
        st(out, size, i, pad[f]);
    }
    return top;
}

#if SC_X86
/* 4-bit fields into a table of at most 16 entries of 1, 2 or 4 bytes: 8 bytes, 16 fields a
 * step, the low nibble of each byte first. */
SC_TARGET("ssse3") static int64_t gather4_small_ssse3(const uint8_t *restrict p, Py_ssize_t n,
                                                     const void *restrict table, Py_ssize_t k,
                                                     void *restrict out, Py_ssize_t size) {
    __m128i t[4], top = _mm_setzero_si128();
    const __m128i low4 = _mm_set1_epi8(0x0F);
    small_table_ssse3(table, k, size, t);
    char *o = (char *)out;
    Py_ssize_t i = 0;
    for (; i + 16 <= n; i += 16, o += 16 * size) {
        const __m128i b = _mm_loadl_epi64((const __m128i *)(p + i / 2));
        const __m128i v = _mm_unpacklo_epi8(_mm_and_si128(b, low4),
                                            _mm_and_si128(_mm_srli_epi16(b, 4), low4));
        top = _mm_max_epu8(top, v);
        lookup16_ssse3(v, t, o, size);
    }
    const int64_t tail = i < n ? gather_sub8_scalar(p + i / 2, n - i, 4, table, k, o, size) : 0;
    const int64_t best = max_lane_ssse3(top);
    return tail > best ? tail : best;
}
#endif

/* gather_fields for fields that divide a byte (1, 2, 4 or 8 bits): the largest field. */
static int64_t gather_byte_fields(int level, const uint8_t *restrict p, Py_ssize_t n, int bits,
                                  const void *restrict table, Py_ssize_t k, void *restrict out,
                                  Py_ssize_t size) {
#if SC_X86
    if (k <= 16 && size <= 4 && level >= SC_SIMD_SSSE3 && (bits == 8 || bits == 4))
        return bits == 8 ? gather8_small_ssse3(p, n, table, k, out, size)
                         : gather4_small_ssse3(p, n, table, k, out, size);
#endif
    (void)level;
    int64_t top;
#define G8(S) top = gather8_scalar(p, n, table, k, out, S)
#define G1(S) top = gather_sub8_scalar(p, n, 1, table, k, out, S)
#define G2(S) top = gather_sub8_scalar(p, n, 2, table, k, out, S)
#define G4(S) top = gather_sub8_scalar(p, n, 4, table, k, out, S)
    switch (bits) {
    case 8: SC_BY_SIZE(size, G8) break;
    case 4: SC_BY_SIZE(size, G4) break;
    case 2: SC_BY_SIZE(size, G2) break;
    default: SC_BY_SIZE(size, G1) break;
    }
#undef G8
#undef G1
#undef G2
#undef G4
    return top;
}

/* The index of each value among k sorted distinct centroids (the encoder's inverse of
 * gather_index): for values of 1 or 2 bytes through a table over every bit pattern, for wider
 * ones by a branchless binary search, eight values side by side (their searches are
 * independent chains of loads the CPU overlaps; one search after another ran 3x slower). Each
 * index is checked (centroid[index] == value); returns 0, or -1 at the first value that is not
 * a centroid. `isz`: the index size (1 or 2). */
SC_INLINE int centroid_check(const void *restrict c, Py_ssize_t k, Py_ssize_t at, uint64_t x,
                             void *restrict out, int isz, Py_ssize_t i, Py_ssize_t size) {
    if (SC_UNLIKELY(at >= k || ld(c, size, at) != x)) return -1;
    st(out, isz, i, (uint64_t)at);
    return 0;
}

SC_INLINE int centroid_index_body(const void *restrict v, Py_ssize_t n,
                                  const void *restrict c, Py_ssize_t k, void *restrict out,
                                  int isz, uint16_t *restrict lut, Py_ssize_t size) {
    Py_ssize_t i = 0;
    if (lut) {
        for (Py_ssize_t j = 0; j < k; j++) lut[ld(c, size, j)] = (uint16_t)j;
        for (; i < n; i++) {
            const uint64_t x = ld(v, size, i);
            if (centroid_check(c, k, lut[x], x, out, isz, i, size)) return -1;
        }
        return 0;
    }
    for (; i + 8 <= n; i += 8) {
        uint64_t x[8];
        Py_ssize_t base[8];
        for (int j = 0; j < 8; j++) x[j] = ld(v, size, i + j), base[j] = 0;
        for (Py_ssize_t len = k; len > 1;) { /* masks, not branches: unpredictable compares */
            const Py_ssize_t half = len / 2;
            for (int j = 0; j < 8; j++)
                base[j] += half & -(Py_ssize_t)(ld(c, size, base[j] + half - 1) < x[j]);
            len -= half;
        }
        for (int j = 0; j < 8; j++)
            if (centroid_check(c, k, base[j], x[j], out, isz, i + j, size)) return -1;
    }
    for (; i < n; i++) {
        const uint64_t x = ld(v, size, i);
        Py_ssize_t base = 0;
        for (Py_ssize_t len = k; len > 1;) {
            const Py_ssize_t half = len / 2;
            base += half & -(Py_ssize_t)(ld(c, size, base + half - 1) < x);
            len -= half;
        }
        if (centroid_check(c, k, base, x, out, isz, i, size)) return -1;
    }
    return 0;
}

#if SC_X86
/* 4-byte values and at most 32 centroids, eight values a step: the index of a centroid is the
 * number of centroids below it, counted by one compare per centroid (unsigned, by flipping the
 * sign bits), and one more compare per centroid finds each value among them. The counts of
 * values that are not centroids are never stored: the step returns -1 first. */
SC_TARGET("avx2") static int centroid_index_avx2(const uint8_t *restrict v, Py_ssize_t n,
                                                const void *restrict c, Py_ssize_t k,
                                                void *restrict out, int isz) {
    __m256i cs[32], cr[32];
    const __m256i flip = _mm256_set1_epi32((int)0x80000000u);
    for (Py_ssize_t j = 0; j < k; j++) {
        cr[j] = _mm256_set1_epi32((int)(uint32_t)ld(c, 4, j));
        cs[j] = _mm256_xor_si256(cr[j], flip);
    }
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256i x = _mm256_loadu_si256((const __m256i *)(v + 4 * i));
        const __m256i xs = _mm256_xor_si256(x, flip);
        __m256i below = _mm256_setzero_si256(), found = below;
        for (Py_ssize_t j = 0; j < k; j++) {
            below = _mm256_sub_epi32(below, _mm256_cmpgt_epi32(xs, cs[j]));
            found = _mm256_or_si256(found, _mm256_cmpeq_epi32(x, cr[j]));
        }
        if (_mm256_movemask_epi8(found) != -1) return -1;
        const __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(below),
                                           _mm256_extracti128_si256(below, 1));
        if (isz == 1)
            _mm_storel_epi64((__m128i *)((uint8_t *)out + i), _mm_packus_epi16(w, w));
        else
            _mm_storeu_si128((__m128i *)((uint8_t *)out + 2 * i), w);
    }
    return i < n ? centroid_index_body(v + 4 * i, n - i, c, k, (uint8_t *)out + isz * i, isz,
                                       NULL, 4)
                 : 0;
}
#endif

/* centroid_index_body or its AVX2 path, by SIMD level, index size and value size. */
static int centroid_index_any(int level, const void *restrict v, Py_ssize_t n,
                              const void *restrict c, Py_ssize_t k, void *restrict out, int isz,
                              uint16_t *restrict lut, Py_ssize_t size) {
#if SC_X86
    if (size == 4 && k <= 32 && level >= SC_SIMD_AVX2)
        return centroid_index_avx2(v, n, c, k, out, isz);
#endif
    (void)level;
    int rc;
#define CI1(S) rc = centroid_index_body(v, n, c, k, out, 1, lut, S)
#define CI2(S) rc = centroid_index_body(v, n, c, k, out, 2, lut, S)
    if (isz == 1) {
        SC_BY_SIZE(size, CI1)
    } else {
        SC_BY_SIZE(size, CI2)
    }
#undef CI1
#undef CI2
    return rc;
}

/* centroid_index(values, centroids, out) -> 0, or -1 (a value is not a centroid). centroids:
 * k distinct bit patterns, ascending, items of the values' size; out: 1-byte indices (k
 * <= 256) or 2-byte ones (k <= 65536), one per value. */
FASTCALL(centroid_index) {
    sc_bufs s = {.n = 0};
    sc_arr v = {0}, c = {0}, out = {0};
    PyObject *res = NULL;
    const char *fn = "centroid_index";
    if (get_two_one(&s, args, nargs, fn, "values", &v, "centroids", &c, "out", &out) < 0 ||
        item_ok(&v, fn, "values") < 0)
        goto done;
    if (c.itemsize != v.itemsize || out.n != v.n ||
        !((out.itemsize == 1 && c.n <= 256) || (out.itemsize == 2 && c.n <= 65536))) {
        fail("%s: sizes do not fit (values %zd items of %zd bytes, centroids %zd of %zd, out "
             "%zd of %zd)", fn, v.n, v.itemsize, c.n, c.itemsize, out.n, out.itemsize);
        goto done;
    }
    for (Py_ssize_t j = 1; j < c.n; j++) /* the searches and the AVX2 count rely on it */
        if (ld(c.p, c.itemsize, j - 1) >= ld(c.p, c.itemsize, j)) {
            fail("%s: centroids must be distinct bit patterns in ascending order (%zd and %zd "
                 "are not)", fn, j - 1, j);
            goto done;
        }
    uint16_t *lut = NULL;
    if (v.itemsize <= 2) { /* every pattern not a centroid looks up 0, which the check refuses */
        lut = calloc((size_t)1 << (8 * v.itemsize), sizeof(uint16_t));
        if (!lut) {
            PyErr_NoMemory();
            goto done;
        }
    }
    int rc;
    const int level = sc_simd;
    Py_BEGIN_ALLOW_THREADS
    rc = centroid_index_any(level, v.p, v.n, c.p, c.n, out.p, (int)out.itemsize, lut, v.itemsize);
    Py_END_ALLOW_THREADS
    free(lut);
    res = PyLong_FromLong(rc);
done:
    sc_release(&s);
    return res;
}

/* gather_index(idx, table, out) -> the largest index (an index past the table gives some
 * entry or 0: the caller refuses the result when the largest index is >= the table's length).
 * idx: 1- or 2-byte unsigned indices; table and out: items of one size (1, 2, 4 or 8 bytes). */
FASTCALL(gather_index) {
    sc_bufs s = {.n = 0};
    sc_arr idx = {0}, table = {0}, out = {0};
    PyObject *res = NULL;
    const char *fn = "gather_index";
    if (get_two_one(&s, args, nargs, fn, "idx", &idx, "table", &table, "out", &out) < 0 ||
        item_ok(&out, fn, "out") < 0)
        goto done;
    if ((idx.itemsize != 1 && idx.itemsize != 2) || table.itemsize != out.itemsize ||
        out.n != idx.n || (idx.itemsize == 1 && table.n > 256)) {
        fail("%s: sizes do not fit (idx %zd items of %zd bytes, table %zd of %zd, out %zd of "
             "%zd)", fn, idx.n, idx.itemsize, table.n, table.itemsize, out.n, out.itemsize);
        goto done;
    }
    int64_t rc;
    const int level = sc_simd;
    Py_BEGIN_ALLOW_THREADS
#if SC_X86
    if (idx.itemsize == 1 && table.n <= 16 && out.itemsize <= 4 && level >= SC_SIMD_SSSE3)
        rc = gather8_small_ssse3(idx.p, idx.n, table.p, table.n, out.p, out.itemsize);
    else
#endif
    {
        (void)level;
#define G8(S) rc = gather8_scalar(idx.p, idx.n, table.p, table.n, out.p, S)
#define G16(S) rc = gather16_scalar(idx.p, idx.n, table.p, table.n, out.p, S)
        if (idx.itemsize == 1) {
            SC_BY_SIZE(out.itemsize, G8)
        } else {
            SC_BY_SIZE(out.itemsize, G16)
        }
#undef G8
#undef G16
    }
    Py_END_ALLOW_THREADS
    res = PyLong_FromLongLong(rc);
done:
    sc_release(&s);
    return res;
}


/* -- method table ---------------------------------------------------------------------------- */

#define M(name, doc) {#name, (PyCFunction)(void (*)(void))py_##name, METH_FASTCALL, doc}

PyMethodDef sc_layout_methods[] = {
    M(mask_popcount, "mask_popcount(mask) -> set bits of a byte array."),
    M(touch_pages, "touch_pages(buf[, cursor]): one zero byte a 4096 bytes (the pages faulted "
                   "in); with a cursor, shared by the calls given it."),
    M(pages_resident, "pages_resident(buf) -> whether the buffer's pages are in memory (probed)."),
    M(fill_rows, "fill_rows(out, fill, cols): out = fill[0], or fill[r] on row r."),
    M(cut_rows, "cut_rows(src, rows, stride, width, out) -> 1 if padding past width is not 0."),
    M(count_fill, "count_fill(x, fill, cols[, per_row]) -> items equal to their row's fill item."),
    M(bitmask_scatter, "bitmask_scatter(mask, values, out) -> values used, -1 too few."),
    M(bitmask_scatter_fill,
      "bitmask_scatter_fill(mask, values, out, fill, cols) -> values used, -1 too few."),
    M(bitmask_split, "bitmask_split(x, mask, values) -> non-zeros kept, -1 values too small."),
    M(bitmask_split_fill,
      "bitmask_split_fill(x, mask, values, fill, cols) -> kept, -1 values too small."),
    M(nm_scatter, "nm_scatter(packed, lut, k, positions, n, values, out, rows, cols, m, fill)"
                  " -> 0, -1 padding holds a value, -2 bad code."),
    M(nm_compose, "nm_compose(packed, lut, k, ngroups, word_of, shifts, n, values, out)"
                  " -> 0, -2 bad code."),
    M(nm24_compose, "nm24_compose(packed, lut, ngroups, shifts, values, out, threads)."),
    M(nm2_compose_codes, "nm2_compose_codes(codes, shifts, values, out) -> 0, -2 bad code."),
    M(nm_pack_codes, "nm_pack_codes(codes, ncodes, k, out) -> every code < ncodes: base-ncodes words."),
    M(nm_split, "nm_split(x, rows, cols, m, code_of_mask, positions, n, codes, values, fill)"
                " -> first bad group or -1."),
    M(nm_codes_from_mask, "nm_codes_from_mask(mask, m, code_of, codes) -> bool."),
    M(csr_scatter, "csr_scatter(indptr, indices, data, out, major, minor, fill, per_minor, "
                   "transposed, check) -> 0, -1 bad pointer or index."),
    M(csr_rows_increasing, "csr_rows_increasing(indptr, indices) -> 1, 0, -1 bad pointer."),
    M(csr_split, "csr_split(x, rows, cols, by_columns, fill, data, indices, indptr) -> kept or -1."),
    M(row_modes_table, "row_modes_table(x, rows, cols, counts, out)."),
    M(paired_spare, "paired_spare(x, cols) -> what row-mode fills spare at most (rows <= 8)."),
    M(row_modes_sort, "row_modes_sort(x, rows, cols, out)."),
    M(sort_bits, "sort_bits(a): 4- or 8-byte unsigned keys sorted in place."),
    M(sorted_runs, "sorted_runs(s, values, counts) -> k: the runs of a sorted 1-D array."),
    M(unique_few, "unique_few(a, limit, values, counts) -> k distinct, -1 more than limit, "
                  "-2 probes ran long."),
    M(hash_bins, "hash_bins(a, bins[, step]) -> (most, occupied, zeros): keys counted by hash."),
    M(half_patterns, "half_patterns(a, out) -> bool: float32 patterns as float16 ones (if exact), "
                     "or back."),
    M(distinct_above, "distinct_above(a, limit): more than limit distinct 4- or 8-byte keys?"),
    M(gather_fields, "gather_fields(packed, bits, count, table, out) -> largest field, -1"
                     " padding bits set."),
    M(gather_index, "gather_index(idx, table, out) -> largest index; out = table[idx]."),
    M(centroid_index, "centroid_index(values, centroids, out) -> 0, -1 not a centroid."),
    M(window_pack, "window_pack(fields, rows, k, bits, out) -> 0, -1 a field too wide."),
    M(window_decode, "window_decode(pattern, exps, rest, escapes, escaped, window, rows, cols,"
                     " shift, width, rest_bits, out, codes, threads) -> 0, -1 padding slot, -3 bad"
                     " frame."),
    {NULL, NULL, 0, NULL},
};
