"""Build of the compiled kernels: one C extension, ``sparsecodecs.kernels._native``.

Plain setuptools, as numcodecs builds its C extensions: ``pip install -e .`` compiles it with
the machine's C compiler. The kernels are portable C; their SIMD variants are compiled with
per-function ``target`` attributes and chosen at run time (see ``kernels/native.h``), so one
build runs on any x86-64 CPU. ``SPARSECODECS_SANITIZE=address`` builds a debug copy under
AddressSanitizer and UndefinedBehaviorSanitizer (for the fuzz runners, see docs/security.md).
"""

from __future__ import annotations

import os
from pathlib import Path

from setuptools import Extension, setup

HERE = Path(__file__).parent
KERNELS = Path("src", "sparsecodecs", "kernels")

# -falign-loops=32: a loop's head on a 32-byte boundary, so that where an unrelated change moves
# a short hot loop, it does not come to straddle a 64-byte line: the 16-bit histogram's loop
# (17 bytes) did once and ran 1.6x slower with the same instructions (222 -> 358 us on 589,824
# patterns; the row modes' table pass 1.15x; docs/benchmarks.md, issue 13's twenty-seventh
# pass)
compile_args = ["-std=c11", "-O3", "-falign-loops=32", "-pthread", "-fno-strict-aliasing",
                "-Wall", "-Wextra", "-Wno-unused-parameter", "-Wno-missing-field-initializers"]
link_args: list[str] = ["-pthread"]
if os.environ.get("SPARSECODECS_SANITIZE") == "address":
    flags = ["-fsanitize=address,undefined", "-fno-sanitize-recover=undefined",
             "-fno-omit-frame-pointer", "-g", "-O1"]
    compile_args += flags
    link_args += flags

setup(
    ext_modules=[
        Extension(
            "sparsecodecs.kernels._native",
            sources=sorted(str(KERNELS / p.name) for p in (HERE / KERNELS).glob("*.c")),
            depends=sorted(str(KERNELS / p.name) for p in (HERE / KERNELS).glob("*.h")),
            extra_compile_args=compile_args,
            extra_link_args=link_args,
        )
    ]
)
