/* Shared by the C files of sparsecodecs.kernels._native: buffer arguments, the GIL, and the
 * run-time SIMD level.
 *
 * Conventions (see kernels/__init__.py for the whole contract):
 *   - every function takes its arrays through the buffer protocol, C-contiguous (a strided
 *     array is refused with BufferError: kernels address items from the data pointer);
 *   - the Python caller has validated sizes and indices before the call; a kernel still never
 *     reads or writes outside the buffers it was given: it checks what it cannot trust (frame
 *     data) and returns an error code, never a partial write the caller cannot detect;
 *   - the work runs with the GIL released;
 *   - every SIMD path has a scalar twin, chosen by sc_simd (set at import from the CPU,
 *     capped by SPARSECODECS_SIMD, changed by kernels.use_simd for tests).
 */
#ifndef SPARSECODECS_NATIVE_H
#define SPARSECODECS_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#define SC_X86 1
#include <immintrin.h>
#define SC_TARGET(t) __attribute__((target(t)))
#else
#define SC_X86 0
#define SC_TARGET(t)
#endif

#define SC_INLINE static inline __attribute__((always_inline))

/* A body instantiated by item size (1, 2, 4, else 8): CALL(S) with S a constant, so an
 * always-inline body compiles to one loop per size. */
#define SC_BY_SIZE(size, CALL) \
    switch (size) {            \
    case 1: CALL(1); break;    \
    case 2: CALL(2); break;    \
    case 4: CALL(4); break;    \
    default: CALL(8); break;   \
    }
#define SC_LIKELY(x) __builtin_expect(!!(x), 1)
#define SC_UNLIKELY(x) __builtin_expect(!!(x), 0)

/* SIMD levels, ordered: a level implies every level below it. */
enum { SC_SIMD_SCALAR = 0, SC_SIMD_SSSE3 = 1, SC_SIMD_AVX2 = 2, SC_SIMD_AVX512 = 3 };
/* The level in force (module.c). Read once per kernel call, never mid-loop. */
extern int sc_simd;

/* Up to SC_MAX_BUFS buffer arguments of one call, released together. */
#define SC_MAX_BUFS 16
typedef struct {
    Py_buffer b[SC_MAX_BUFS];
    int n;
} sc_bufs;

/* An array argument: its data, item count and item size. */
typedef struct {
    void *p;
    Py_ssize_t n;
    Py_ssize_t itemsize;
} sc_arr;

/* Acquire `o` as a C-contiguous buffer (writable if asked) into `a`. `itemsize` 0 accepts any
 * item size, else it must match. On failure sets a Python exception and returns -1. */
static inline int sc_get(sc_bufs *s, PyObject *o, int writable, Py_ssize_t itemsize,
                         const char *what, sc_arr *a) {
    if (s->n >= SC_MAX_BUFS) {
        PyErr_SetString(PyExc_RuntimeError, "too many buffer arguments");
        return -1;
    }
    Py_buffer *b = &s->b[s->n];
    if (PyObject_GetBuffer(o, b, PyBUF_C_CONTIGUOUS | (writable ? PyBUF_WRITABLE : 0)) < 0)
        return -1;
    s->n++;
    if (itemsize && b->itemsize != itemsize) {
        PyErr_Format(PyExc_TypeError, "%s: expected items of %zd bytes, got %zd", what,
                     itemsize, b->itemsize);
        return -1;
    }
    a->p = b->buf;
    a->itemsize = b->itemsize;
    a->n = b->itemsize ? b->len / b->itemsize : 0;
    return 0;
}

static inline void sc_release(sc_bufs *s) {
    for (int i = 0; i < s->n; i++) PyBuffer_Release(&s->b[i]);
    s->n = 0;
}

/* Integer arguments of METH_FASTCALL functions. */
static inline int sc_i64(PyObject *o, int64_t *v) {
    long long x = PyLong_AsLongLong(o);
    if (x == -1 && PyErr_Occurred()) return -1;
    *v = (int64_t)x;
    return 0;
}

static inline int sc_nargs(Py_ssize_t nargs, Py_ssize_t want, const char *name) {
    if (nargs != want) {
        PyErr_Format(PyExc_TypeError, "%s takes %zd arguments, got %zd", name, want, nargs);
        return -1;
    }
    return 0;
}

/* Run fn(ctx, i) for i in 0 .. n-1 on up to n threads (the calling one and workers of a pool
 * kept between calls, module.c), and wait for all. For kernels splitting one job into
 * independent parts (streams, row ranges); called with the GIL released, fn touching no
 * Python object. Which thread runs which part varies, and a part may run on the caller, so
 * parts must write disjoint outputs: then the result never depends on the threads. n is at
 * most SC_MAX_THREADS. */
#define SC_MAX_THREADS 64
void sc_parallel(int n, void (*fn)(void *ctx, int i), void *ctx);

/* A buffer kept between calls (of at most `limit` bytes) and lent to one call at a time:
 * sc_borrow returns it (grown if need be) or, when it is lent or too small a limit, a buffer
 * of the call's own; 64-byte aligned, NULL if out of memory. sc_giveback takes either back.
 * For kernels' large scratch that a fresh allocation would pay page faults for on every
 * call. Declared with SC_KEPT(limit). */
typedef struct {
    pthread_mutex_t lock;
    void *p;
    size_t bytes, limit;
} sc_kept;
#define SC_KEPT(limit) {PTHREAD_MUTEX_INITIALIZER, NULL, 0, (limit)}
void *sc_borrow(sc_kept *k, size_t bytes, int *kept);
void sc_giveback(sc_kept *k, void *p, int kept);

/* The method tables of each C file, joined by module.c. */
extern PyMethodDef sc_layout_methods[];
extern PyMethodDef sc_huffman_methods[];
extern PyMethodDef sc_compute_methods[];

#endif
