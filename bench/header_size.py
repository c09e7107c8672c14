"""What a frame header costs: plain JSON (format version 1), plain DEFLATE, and version 2's
DEFLATE against the frozen preset dictionary (``registry/header_v2.dict``).

Run: ``python bench/header_size.py``. Encodes small tensors of every built-in codec, six dtypes,
seven shapes and three sparsities, and prints the mean stored header size of each way. (The
dictionary itself was built once from headers like these, the likeliest last, and is frozen
with format version 2: this script measures it, it never rewrites it.)
"""

from __future__ import annotations

import json
import struct
import zlib

import ml_dtypes
import numpy as np

import sparsecodecs as sc
from sparsecodecs.registry.frame import header_dictionary, pack_header, unpack_header
from sparsecodecs.transforms import prune

DTYPES = [ml_dtypes.bfloat16, np.float16, np.float32, np.int8, np.uint8, ml_dtypes.float8_e4m3fn]
SHAPES = [(384,), (1536,), (384, 384), (96, 1152), (1000, 999), (64, 3, 3, 3), (4096, 1024)]
CODECS = ["hybrid", "nm", "bitmask", "raw", "csr", "csc", "huffman", "centroid"]


def headers() -> list[bytes]:
    rng = np.random.default_rng(0)
    out = []
    for codec in CODECS:
        for dt in DTYPES:
            ints = dt in (np.int8, np.uint8)
            for shape in SHAPES:
                if np.prod(shape) > 600_000:
                    continue
                x = rng.standard_normal(shape).astype(np.float32) * (30 if ints else 0.02)
                for variant in ("dense", "2:4", "unstructured"):
                    if variant == "2:4" and len(shape) < 2:
                        continue
                    y = prune(x, "2:4")[0] if variant == "2:4" else x
                    y = prune(y, None, density=0.3)[0] if variant == "unstructured" else y
                    if codec == "centroid" and not ints:
                        y = np.round(y * 200) / 200
                    try:
                        frame = sc.get_codec(codec).encode(y.astype(dt))
                    except sc.SparseCodecsError:
                        continue  # e.g. nm refuses what is not N:M
                    (hlen,) = struct.unpack_from("<I", frame, 8)
                    version = struct.unpack_from("<H", frame, 4)[0]
                    out.append(unpack_header(frame[12 : 12 + hlen], version))
    return out


def main() -> None:
    heads = headers()

    def deflate(h: bytes) -> int:
        c = zlib.compressobj(9, zlib.DEFLATED, -15, 9)
        return len(c.compress(h) + c.flush())

    n = len(heads)
    print(f"{n} headers; dictionary of {len(header_dictionary())} bytes")
    print(f"  plain JSON (version 1)     {sum(map(len, heads)) / n:7.1f} bytes on average")
    print(f"  DEFLATE, no dictionary     {sum(map(deflate, heads)) / n:7.1f}")
    print(f"  version 2 (dictionary)     {sum(len(pack_header(h)) for h in heads) / n:7.1f}")
    assert all(json.loads(unpack_header(pack_header(h), 2)) == json.loads(h) for h in heads)


if __name__ == "__main__":
    main()
