/* Kernels of the huffman room (stub: filled by the port). */
#include "native.h"

PyMethodDef sc_huffman_methods[] = {
    {NULL, NULL, 0, NULL},
};
