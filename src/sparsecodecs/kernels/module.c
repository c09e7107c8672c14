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

void sc_parallel(int n, void (*fn)(void *ctx, int i), void *ctx) {
    pthread_t tid[SC_MAX_THREADS];
    sc_part part[SC_MAX_THREADS];
    int started[SC_MAX_THREADS] = {0};
    if (n > SC_MAX_THREADS) n = SC_MAX_THREADS;
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
