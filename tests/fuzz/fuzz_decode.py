"""Coverage-guided fuzz target for ``sparsecodecs.decode``, for atheris (libFuzzer).

Each fuzzer input is a frame *body*, everything but the checksum: the target appends the
matching xxh3_64 checksum (``sparsecodecs.testing.seal``), so the fuzzer's mutations reach the
header, section and codec checks instead of all failing at the checksum. It then checks the
decoding guarantee with ``sparsecodecs.testing.assert_decodes_or_refuses``: ``decode`` and
``inspect`` either succeed (an array of the header's shape and dtype) or raise a
``SparseCodecsError``; any other exception or warning is a crash. Decodes are limited to 16 MiB
(``max_bytes``); hangs and runaway memory are caught by libFuzzer's ``-timeout`` and
``-rss_limit_mb``.

    pip install atheris
    python tests/fuzz/fuzz_decode.py --write-corpus fuzz-corpus      # golden + edge frames
    python tests/fuzz/fuzz_decode.py fuzz-corpus -dict=tests/fuzz/frame.dict -runs=1000000 \\
        -max_len=65536 -timeout=10 -rss_limit_mb=4096

Not collected by pytest (the file name does not start with ``test_``); importable without
atheris, which is imported only when fuzzing. ``tests/test_fuzz.py`` runs ``TestOneInput`` on
the seed corpus.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

#: Largest decoded array the target allows, in bytes.
MAX_BYTES = 1 << 24
_lib: dict[str, Any] = {}


def _load() -> None:
    """Import what the target uses (inside atheris' instrumentation when fuzzing)."""
    if not _lib:
        from sparsecodecs.testing import assert_decodes_or_refuses, seal

        _lib.update(check=assert_decodes_or_refuses, seal=seal)


def TestOneInput(data: bytes) -> None:  # the name atheris and libFuzzer expect
    _load()
    _lib["check"](_lib["seal"](data), f"fuzzer input of {len(data)} bytes", max_bytes=MAX_BYTES)


def write_corpus(folder: Path, frames: Sequence[bytes] | None = None) -> int:
    """Write the bodies (checksums stripped) of ``frames``, by default every seed frame of
    ``seeds.py``, into ``folder`` as a fuzzing corpus; returns the count."""
    if frames is None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from seeds import seed_frames

        frames = seed_frames()
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        (folder / f"seed-{i:04d}").write_bytes(frame[:-8])
    return len(frames)


def main(argv: list[str]) -> None:
    if len(argv) == 3 and argv[1] == "--write-corpus":
        print(f"wrote {write_corpus(Path(argv[2]))} seed inputs to {argv[2]}")
        return
    import atheris

    with atheris.instrument_imports(include=["sparsecodecs"]):
        _load()
    atheris.Setup(argv, TestOneInput)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv)
