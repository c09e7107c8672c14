"""Cold start: ``import sparsecodecs`` loads no heavy module; the lazy names still resolve.

Run in fresh subprocesses, so the test process's own imports do not hide an eager import.
No timing is asserted (``bench/cold_start.py`` measures the time).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"

#: Top-level packages ``import sparsecodecs`` must not import (each costs 0.1-1 s or more).
HEAVY = frozenset({
    "numba", "llvmlite", "scipy", "torch", "ml_dtypes", "zstandard", "matplotlib", "dask",
    "zarr", "numcodecs", "safetensors", "zipnn", "transformers", "hypothesis", "pytest",
})


def run(code: str) -> str:
    path = os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "PYTHONPATH": path}
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1]


def imported_after(code: str) -> list[str]:
    out = run(
        f"{code}\nimport sys, json\n"
        f"print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}} & {set(HEAVY)!r})))"
    )
    return list(json.loads(out))


def test_import_sparsecodecs_loads_no_heavy_module():
    assert imported_after("import sparsecodecs") == []


def test_importlib_metadata_waits_for_a_plugin_lookup():
    out = run(
        "import sys, sparsecodecs as sc\n"
        "before = 'importlib.metadata' in sys.modules\n"
        "sc.get_codec('nm')\n"
        "middle = 'importlib.metadata' in sys.modules\n"
        "try:\n    sc.get_codec('no-such-codec')\nexcept sc.UnknownCodecError:\n    pass\n"
        "print(before, middle, 'importlib.metadata' in sys.modules)"
    )
    assert out == "False False True"


def test_float32_round_trip_needs_no_heavy_module():
    code = (
        "import numpy as np, sparsecodecs as sc\n"
        "w = np.zeros((8, 16), np.float32); w[:, ::4] = 1.5\n"
        "for name in ('nm', 'hybrid', 'bitmask', 'csr', 'raw'):\n"
        "    f = sc.get_codec(name).encode(w)\n"
        "    assert sc.decode(f).tobytes() == w.tobytes()\n"
    )
    assert set(imported_after(code)) == set()  # the kernels are C: no JIT, nothing heavy


LAZY = ["load_file", "save_file", "safe_open", "CheckpointReport", "matmul", "CompressedLinear"]


@pytest.mark.parametrize("name", LAZY)
def test_lazy_public_names_resolve_and_are_listed(name):
    import sparsecodecs as sc

    assert name in sc.__all__ and name in dir(sc)
    value = getattr(sc, name)
    module = "checkpoint" if name in {"load_file", "save_file", "safe_open", "CheckpointReport"} \
        else "compute"
    assert value is getattr(__import__(f"sparsecodecs.{module}", fromlist=[name]), name)


def test_submodules_once_loaded_by_the_import_are_still_attributes():
    out = run(
        "import sparsecodecs as sc\n"
        "print(sc.checkpoint.save_file is sc.save_file, sc.compute.matmul is sc.matmul)"
    )
    assert out == "True True"


def test_unknown_attribute_is_an_attribute_error():
    import sparsecodecs as sc

    with pytest.raises(AttributeError, match="no_such_name"):
        sc.no_such_name  # noqa: B018


def test_supported_dtypes_names_need_no_ml_dtypes_and_values_match():
    out = run(
        "import sys, sparsecodecs.registry as r\n"
        "names = list(r.SUPPORTED_DTYPES); ok = 'bfloat16' in r.SUPPORTED_DTYPES\n"
        "lazy = 'ml_dtypes' not in sys.modules\n"
        "import ml_dtypes, numpy as np\n"
        "same = r.SUPPORTED_DTYPES['bfloat16'] == np.dtype(ml_dtypes.bfloat16)\n"
        "print(len(names), ok, lazy, same, len(dict(r.SUPPORTED_DTYPES)))"
    )
    assert out == "17 True True True 17"


def test_bfloat16_frame_decodes_in_a_process_that_never_imported_ml_dtypes():
    import ml_dtypes
    import numpy as np

    import sparsecodecs as sc

    w = np.arange(-8, 8, dtype=np.float32).reshape(2, 8).astype(ml_dtypes.bfloat16)
    frame = sc.get_codec("hybrid").encode(w)
    out = run(
        "import sys, sparsecodecs as sc\n"
        f"a = sc.decode({frame!r})\n"
        "print(a.dtype, a.view('u2').tobytes().hex(), 'ml_dtypes' in sys.modules)"
    )
    assert out == f"bfloat16 {w.view(np.uint16).tobytes().hex()} True"


def test_an_ml_dtypes_without_a_type_refuses_that_type_only():
    # pyproject.toml asks for ml_dtypes >= 0.5 (float4_e2m1fn); with an older one installed
    # anyway, the other types still work and the missing one is a library error naming it
    out = run(
        "import sys, types, ml_dtypes as real\n"
        "fake = types.ModuleType('ml_dtypes'); fake.__version__ = '0.4.1'\n"
        "for n in ('bfloat16', 'float8_e4m3fn', 'float8_e5m2', 'int4', 'uint4'):\n"
        "    setattr(fake, n, getattr(real, n))\n"
        "sys.modules['ml_dtypes'] = fake\n"
        "import sparsecodecs as sc\n"
        "from sparsecodecs.registry.dtypes import dtype_from_name\n"
        "ok = dtype_from_name('bfloat16') == real.bfloat16\n"
        "try:\n"
        "    dtype_from_name('float4_e2m1fn')\n"
        "except sc.UnsupportedDtypeError as exc:\n"
        "    print(ok, exc)\n"
    )
    assert out == ("True dtype float4_e2m1fn needs ml_dtypes >= 0.5, but ml_dtypes 0.4.1 is "
                   "installed")


def load_script():
    import importlib.util

    path = SRC.parent / "bench" / "cold_start.py"
    spec = importlib.util.spec_from_file_location("sparsecodecs_bench_cold_start", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_cold_start_script_reads_importtime_and_reports(capsys):
    script = load_script()
    log = (
        "import time: self [us] | cumulative | imported package\n"
        "import time:       100 |     900000 |   ml_dtypes\n"
        "import time:       300 |       5000 |     sparsecodecs.registry\n"
        "import time:      2000 |    1000000 | sparsecodecs\n"
    )
    assert script.importtime_top(log, n=1) == [("ml_dtypes", 0.9)]
    assert script.main(["--repeats", "1", "--no-first-call"]) == 0
    out = capsys.readouterr().out
    assert "| import sparsecodecs |" in out and "first encode" not in out
