/* The module sparsecodecs.kernels._native: joins the method tables of the kernel files and
 * chooses the SIMD level once, at import. */
#include "native.h"

#include <pthread.h>
#include <stdlib.h>

int sc_simd = SC_SIMD_SCALAR;

typedef struct {
    void (*fn)(void *ctx, int i);
    void *ctx;
    int i;
} sc_part;

static void *sc_run_part(void *arg) {
    sc_part *p = arg;
    p->fn(p->ctx, p->i);
    return NULL;
}

/* Parts 1 .. n-1 on threads started for this call (parts whose thread cannot start run on the
 * caller): what sc_parallel does when its pool is busy or cannot grow. */
static void sc_spawn(int n, void (*fn)(void *ctx, int i), void *ctx) {
    pthread_t tid[SC_MAX_THREADS];
    sc_part part[SC_MAX_THREADS];
    int started[SC_MAX_THREADS] = {0};
    for (int i = 1; i < n; i++) {
        part[i] = (sc_part){fn, ctx, i};
        started[i] = pthread_create(&tid[i], NULL, sc_run_part, &part[i]) == 0;
    }
    fn(ctx, 0);
    for (int i = 1; i < n; i++) {
        if (started[i]) pthread_join(tid[i], NULL);
        else fn(ctx, i);
    }
}

/* The pool: worker threads kept between calls (starting one costs tens of microseconds, as
 * much as a small product). One caller at a time owns it (`owner`, taken by trylock: a second
 * concurrent caller spawns its own threads instead of waiting). A job is published under `mu`
 * with a new generation; workers and the caller take its parts by index until none is left,
 * and the caller waits until every taken part has finished. After fork() the child has no
 * workers: pool_reset (pthread_atfork) empties the pool and re-creates its locks. */
static pthread_mutex_t pool_owner = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t pool_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t pool_work = PTHREAD_COND_INITIALIZER;
static pthread_cond_t pool_done = PTHREAD_COND_INITIALIZER;
static int pool_size;      /* workers started (and waiting for work), under pool_mu */
static unsigned long pool_gen; /* the job's generation, under pool_mu */
static void (*pool_fn)(void *ctx, int i);
static void *pool_ctx;
static int pool_next, pool_n, pool_busy; /* next part to take, parts, parts running */

/* Take and run parts of the current job until none is left; called with pool_mu held, returns
 * with it held. */
static void pool_drain(void) {
    while (pool_next < pool_n) {
        int i = pool_next++;
        void (*fn)(void *, int) = pool_fn;
        void *ctx = pool_ctx;
        pool_busy++;
        pthread_mutex_unlock(&pool_mu);
        fn(ctx, i);
        pthread_mutex_lock(&pool_mu);
        if (--pool_busy == 0 && pool_next >= pool_n) pthread_cond_broadcast(&pool_done);
    }
}

static void *pool_worker(void *arg) {
    (void)arg;
    pthread_mutex_lock(&pool_mu);
    unsigned long seen = pool_gen;
    for (;;) {
        while (pool_gen == seen) pthread_cond_wait(&pool_work, &pool_mu);
        seen = pool_gen;
        pool_drain();
    }
    return NULL; /* not reached: workers live as long as the process */
}

static void pool_reset(void) {
    pthread_mutex_init(&pool_owner, NULL);
    pthread_mutex_init(&pool_mu, NULL);
    pthread_cond_init(&pool_work, NULL);
    pthread_cond_init(&pool_done, NULL);
    pool_size = pool_next = pool_n = pool_busy = 0;
}

static pthread_once_t pool_once = PTHREAD_ONCE_INIT;
static void pool_init(void) { pthread_atfork(NULL, NULL, pool_reset); }

void *sc_borrow(sc_kept *k, size_t bytes, int *kept) {
    bytes = (bytes + 63) / 64 * 64;
    *kept = 0;
    if (bytes <= k->limit && !pthread_mutex_trylock(&k->lock)) {
        if (k->bytes < bytes) {
            free(k->p);
            k->p = aligned_alloc(64, bytes);
            k->bytes = k->p ? bytes : 0;
        }
        if (k->p) {
            *kept = 1;
            return k->p;
        }
        pthread_mutex_unlock(&k->lock);
    }
    return aligned_alloc(64, bytes);
}

void sc_giveback(sc_kept *k, void *p, int kept) {
    if (kept)
        pthread_mutex_unlock(&k->lock);
    else
        free(p);
}

void sc_parallel(int n, void (*fn)(void *ctx, int i), void *ctx) {
    if (n > SC_MAX_THREADS) n = SC_MAX_THREADS;
    if (n <= 1) {
        if (n == 1) fn(ctx, 0);
        return;
    }
    pthread_once(&pool_once, pool_init);
    if (pthread_mutex_trylock(&pool_owner) != 0) { /* another caller has the pool */
        sc_spawn(n, fn, ctx);
        return;
    }
    pthread_mutex_lock(&pool_mu);
    while (pool_size < n - 1) { /* grow to n - 1 workers; if one cannot start, fewer help */
        pthread_t t;
        if (pthread_create(&t, NULL, pool_worker, NULL) != 0) break;
        pthread_detach(t);
        pool_size++;
    }
    pool_fn = fn;
    pool_ctx = ctx;
    pool_next = 0;
    pool_n = n;
    pool_gen++;
    pthread_cond_broadcast(&pool_work);
    pool_drain(); /* the caller takes parts too: every part runs even with no worker */
    while (pool_busy) pthread_cond_wait(&pool_done, &pool_mu);
    pool_n = 0;
    pthread_mutex_unlock(&pool_mu);
    pthread_mutex_unlock(&pool_owner);
}

static int cpu_level(void) {
#if SC_X86
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
        __builtin_cpu_supports("avx512vl"))
        return SC_SIMD_AVX512;
    if (__builtin_cpu_supports("avx2")) return SC_SIMD_AVX2;
    if (__builtin_cpu_supports("ssse3")) return SC_SIMD_SSSE3;
#endif
    return SC_SIMD_SCALAR;
}

/* SPARSECODECS_SIMD=scalar|ssse3|avx2|avx512 caps the level (unknown words: scalar, the safe
 * one). */
static int env_cap(void) {
    const char *e = getenv("SPARSECODECS_SIMD");
    if (!e || !*e) return SC_SIMD_AVX512;
    if (!strcmp(e, "avx512")) return SC_SIMD_AVX512;
    if (!strcmp(e, "avx2")) return SC_SIMD_AVX2;
    if (!strcmp(e, "ssse3")) return SC_SIMD_SSSE3;
    return SC_SIMD_SCALAR;
}

static PyObject *cpu_simd(PyObject *self, PyObject *noargs) {
    return PyLong_FromLong(cpu_level());
}

static PyObject *get_simd(PyObject *self, PyObject *noargs) {
    return PyLong_FromLong(sc_simd);
}

/* set_simd(level) -> the previous level; a level above the CPU's is refused. */
static PyObject *set_simd(PyObject *self, PyObject *arg) {
    long level = PyLong_AsLong(arg);
    if (level == -1 && PyErr_Occurred()) return NULL;
    if (level < SC_SIMD_SCALAR || level > cpu_level()) {
        PyErr_Format(PyExc_ValueError, "SIMD level %ld is not available on this CPU (0..%d)",
                     level, cpu_level());
        return NULL;
    }
    int prev = sc_simd;
    sc_simd = (int)level;
    return PyLong_FromLong(prev);
}

static PyMethodDef core_methods[] = {
    {"cpu_simd", cpu_simd, METH_NOARGS, "The best SIMD level this CPU has."},
    {"get_simd", get_simd, METH_NOARGS, "The SIMD level in force."},
    {"set_simd", set_simd, METH_O, "Set the SIMD level; returns the previous one."},
    {NULL, NULL, 0, NULL},
};

static int add_methods(PyObject *m, PyMethodDef *defs) {
    for (PyMethodDef *d = defs; d->ml_name; d++) {
        PyObject *f = PyCFunction_NewEx(d, NULL, PyModule_GetNameObject(m));
        if (!f || PyModule_AddObject(m, d->ml_name, f) < 0) {
            Py_XDECREF(f);
            return -1;
        }
    }
    return 0;
}

static struct PyModuleDef moduledef = {
    PyModuleDef_HEAD_INIT, "sparsecodecs.kernels._native",
    "Compiled kernels of sparsecodecs (see sparsecodecs.kernels).", -1, core_methods,
};

PyMODINIT_FUNC PyInit__native(void) {
    PyObject *m = PyModule_Create(&moduledef);
    if (!m) return NULL;
    int cap = env_cap(), cpu = cpu_level();
    sc_simd = cap < cpu ? cap : cpu;
    if (add_methods(m, sc_layout_methods) < 0 || add_methods(m, sc_huffman_methods) < 0 ||
        add_methods(m, sc_compute_methods) < 0 ||
        PyModule_AddIntConstant(m, "SCALAR", SC_SIMD_SCALAR) < 0 ||
        PyModule_AddIntConstant(m, "SSSE3", SC_SIMD_SSSE3) < 0 ||
        PyModule_AddIntConstant(m, "AVX2", SC_SIMD_AVX2) < 0 ||
        PyModule_AddIntConstant(m, "AVX512", SC_SIMD_AVX512) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
