/* The `window` layout's row geometry and the checks every reader of a row makes, shared by the
 * decoder (layout.c) and the fused product (compute.c). Per row of `gpr` groups: `pattern`
 * bytes of 6-bit pair codes (6 * c0 + c1), `exps` bytes of 3-bit exponent codes (one per kept
 * value); LSB first, each row padded to whole bytes (docs/codecs/window.md). */
#ifndef SPARSECODECS_WINDOW_H
#define SPARSECODECS_WINDOW_H

#include <stdint.h>

/* Bytes of a row's pair codes and of its exponent codes. */
static inline int64_t win_pattern_bytes(int64_t gpr) { return ((gpr + 1) / 2 * 6 + 7) / 8; }
static inline int64_t win_code_bytes(int64_t gpr) { return (gpr * 6 + 7) / 8; }

/* Bits [bit, bit + n) (n <= 24) of a byte row of `len` bytes, never reading past it. */
static inline uint32_t win_field(const uint8_t *row, int64_t len, int64_t bit, int n) {
    uint32_t w = 0;
    int64_t byte = bit >> 3;
    for (int i = 0; i < 4 && byte + i < len; i++) w |= (uint32_t)row[byte + i] << (8 * i);
    return (w >> (bit & 7)) & ((1u << n) - 1);
}

/* The row checks: the padding bits after the last pair code and after the last exponent code
 * are zero, and a row with an odd number of groups gives its missing last group code 0.
 * 1 if the row passes. */
static inline int win_row_ok(const uint8_t *prow, const uint8_t *erow, int64_t gpr) {
    const int64_t pairs = (gpr + 1) / 2, pb = win_pattern_bytes(gpr), eb = win_code_bytes(gpr);
    if ((pairs * 6) % 8 && prow[pb - 1] >> ((pairs * 6) % 8)) return 0;
    if ((gpr * 6) % 8 && erow[eb - 1] >> ((gpr * 6) % 8)) return 0;
    return !(gpr % 2 && win_field(prow, pb, (pairs - 1) * 6, 6) % 6);
}

#endif
