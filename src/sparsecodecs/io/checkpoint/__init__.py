"""Compressed checkpoints: safetensors files whose entries are sparsecodecs frames.

A compressed checkpoint is a valid `safetensors <https://github.com/huggingface/safetensors>`_
file: every tensor of the original is one entry of dtype ``U8`` and shape ``[n]`` holding the
tensor's frame, and the ``__metadata__`` names the format (``"format": "sparsecodecs"``) and keeps
what a frame does not (the original safetensors dtype and shape of each tensor, the user's own
metadata, and any lossy transform applied). Existing safetensors tooling can list such a file and
read single entries lazily; :class:`safe_open` here reads and decodes one tensor at a time.

The safetensors container is read and written by this module (it is a length, a JSON header and
the concatenated data), so the ``safetensors`` package is not needed; the tests check the files
against it. Compressing or decompressing a checkpoint streams tensor by tensor: one input tensor,
its transformed copy and its frame are in memory at a time (``workers`` of them with
``workers > 1``). Tensors larger than ``block_bytes`` are split into row blocks, each its own
frame, concatenated in the tensor's one entry with a block table in the metadata (container
version 2): blocks are the unit of parallel work (processes or a Dask cluster) and of reading by
row range (:meth:`safe_open.get_slice`). ``docs/checkpoints.md`` describes the layout and the
memory behaviour, ``docs/scaling.md`` the parallel work.

>>> import numpy as np, tempfile, os, sparsecodecs as sc
>>> w = np.zeros((4, 8), np.float32); w[:, ::4] = 1.5
>>> path = os.path.join(tempfile.mkdtemp(), "model.sc.safetensors")
>>> sc.save_file({"w": w}, path, metadata={"format": "pt"})
>>> with sc.safe_open(path) as f:
...     f.keys(), f.metadata(), f.get_tensor("w").tobytes() == w.tobytes()
(['w'], {'format': 'pt'}, True)
"""

from __future__ import annotations

from .container import (
    DEFAULT_BLOCK_BYTES,
    FORMAT_NAME,
)
from .files import (
    compress,
    decompress,
    inspect_checkpoint,
    is_safetensors,
    save_file,
)
from .reading import (
    CheckpointReport,
    TensorSlice,
    load_file,
    safe_open,
)

__all__ = [
    "DEFAULT_BLOCK_BYTES",
    "FORMAT_NAME",
    "CheckpointReport",
    "TensorSlice",
    "compress",
    "decompress",
    "inspect_checkpoint",
    "is_safetensors",
    "load_file",
    "safe_open",
    "save_file",
]
