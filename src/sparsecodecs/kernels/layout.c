/* Kernels of the layout room (stub: filled by the port). */
#include "native.h"

PyMethodDef sc_layout_methods[] = {
    {NULL, NULL, 0, NULL},
};
