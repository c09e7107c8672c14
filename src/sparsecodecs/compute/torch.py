"""Run PyTorch models on compressed weights: a drop-in ``nn.Linear`` that never decodes its weight.

``torch`` is an optional dependency (``pip install "sparsecodecs[torch]"``); ``import sparsecodecs``
never imports it, this module does.

* :class:`SparseLinear` holds a weight as sparsecodecs frames (one per row block for large
  weights) and computes ``x @ W.T + b`` with :func:`sparsecodecs.matmul`, straight from the
  frames: zero-skipping for ``nm`` / ``bitmask`` / ``csr`` / ``csc`` / sparse ``hybrid``, one
  block at a time otherwise. Inference first: the weight is frozen (buffers, no parameters);
  gradients flow to the *input* (``grad @ W``, also from the frames) so layers before it can
  still train, and a weight gradient cannot be asked for because there is no weight parameter.
* :func:`compress_model` replaces the ``nn.Linear`` modules of a model in place, optionally
  pruning them (lossy, reported), and returns a :class:`ModelReport`.
* :func:`save_compressed` / :func:`load_compressed` write and read the whole model as one
  compressed safetensors checkpoint (:mod:`sparsecodecs.checkpoint`); loading into a skeleton
  built under :func:`empty_weights` never holds a dense linear weight.

CPU only: a tensor or module on another device raises
:class:`~sparsecodecs.registry.errors.DeviceError`. ``docs/torch.md`` has a walk-through.

>>> import torch, sparsecodecs.torch as sct
>>> model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
>>> report = sct.compress_model(model, codec="nm", prune="2:4")
>>> model[0]  # doctest: +ELLIPSIS
SparseLinear(in_features=8, out_features=4, codec=nm, dtype=float32, frames=1, ..., pruned=2:4)
>>> model(torch.ones(3, 8)).shape
torch.Size([3, 2])
"""

from __future__ import annotations

import contextlib
import itertools
import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

try:
    import torch
    from torch import nn
except ModuleNotFoundError as _exc:  # pragma: no cover - exercised without torch installed
    raise ModuleNotFoundError(
        "sparsecodecs.torch needs PyTorch, which is not installed: pip install "
        "'sparsecodecs[torch]'", name=_exc.name
    ) from _exc

from sparsecodecs._atomic import atomic_file
from sparsecodecs.compute import CompressedLinear, matmul
from sparsecodecs.io.checkpoint.container import (
    DEFAULT_BLOCK_BYTES,
    _as_numpy,
    _checkpoint_metadata,
    _st_dtype,
)
from sparsecodecs.io.checkpoint.files import (
    _check_block_bytes,
    _codec_of,
    _row_bounds,
    _sq_sums,
    _write_checkpoint,
    inspect_checkpoint,
)
from sparsecodecs.io.checkpoint.reading import (
    CheckpointReport,
    safe_open,
)
from sparsecodecs.registry import (
    CheckpointError,
    Codec,
    CodecConfigError,
    DeviceError,
    ShapeError,
    SparseCodecsError,
    UnsupportedDtypeError,
    resolve_threads,
)
from sparsecodecs.transforms import parse_pattern, prune, prune_scope

__all__ = [
    "SAVE_BLOCK_BYTES",
    "LayerReport",
    "ModelReport",
    "SparseLinear",
    "compress_model",
    "empty_weights",
    "load_compressed",
    "save_compressed",
]

#: The metadata key of a checkpoint written by :func:`save_compressed` (JSON: the weight entries
#: that are :class:`SparseLinear` frames).
METADATA_KEY = "sparsecodecs.torch"

#: The row blocks :func:`save_compressed` splits a model's other tensors into (4 MiB, where
#: checkpoints use :data:`~sparsecodecs.checkpoint.DEFAULT_BLOCK_BYTES`, 32 MiB).
#: :func:`load_compressed` decodes such a tensor into the model block by block, and while a
#: block decodes its frame, its top fields and its output exist beside the tensor: about three
#: blocks more than the model holds (measured in docs/torch.md). Each block has entropy tables
#: of its own, which costs a few hundred bytes a block and can save more.
SAVE_BLOCK_BYTES = 4 << 20

#: Input dtypes :meth:`SparseLinear.forward` takes (computed in float32, returned in this dtype).
INPUT_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


def _check_cpu(t: torch.Tensor, what: str) -> None:
    if not t.is_cpu:  # not t.device.type: that builds a torch.device, 0.5 us on every forward
        raise DeviceError(
            f"{what} is on device {t.device}; sparsecodecs computes on the CPU only: call "
            ".cpu() first"
        )


def _frame_bytes(frame: object, i: int) -> bytes | bytearray | memoryview:
    if isinstance(frame, (bytes, bytearray, memoryview)):
        return frame
    if isinstance(frame, np.ndarray) and frame.dtype == np.uint8 and frame.ndim == 1:
        return np.ascontiguousarray(frame).data
    if isinstance(frame, torch.Tensor) and frame.dtype == torch.uint8 and frame.dim() == 1:
        _check_cpu(frame, f"frame {i}")
        return frame.detach().contiguous().numpy().data
    raise UnsupportedDtypeError(
        f"frame {i} must be bytes or a 1-D uint8 array or tensor, got {type(frame).__name__}"
        + (f" of dtype {frame.dtype}" if hasattr(frame, "dtype") else "")
    )


class _Product(torch.autograd.Function):
    """``y = x @ W.T`` with a backward for ``x`` only (``grad @ W``, from the frames)."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, layer: SparseLinear,
                compressed: CompressedLinear) -> torch.Tensor:
        ctx.layer = layer
        ctx.dtype = x.dtype
        return layer._matmul(x, compressed)

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        layer: SparseLinear = ctx.layer
        g = grad.detach().to(torch.float32).contiguous().numpy()
        gx = g @ layer._compressed()  # x @ W, the matrix W read from the frames
        return torch.from_numpy(gx).to(ctx.dtype), None, None


class SparseLinear(nn.Module):
    """A linear layer ``y = x @ W.T + b`` whose weight ``W`` (``out x in``) stays compressed.

    Parameters
    ----------
    frames
        The frames of ``W`` in row order: one frame of the whole 2-D weight, or one per block of
        rows (as :meth:`from_linear` and compressed checkpoints store large weights). bytes, or
        1-D uint8 numpy arrays or CPU tensors.
    bias
        ``None`` or a tensor of shape ``(out,)``.
    threads
        Passed to :func:`sparsecodecs.matmul` when it takes a ``threads`` argument.

    Notes
    -----
    The frames are the buffer ``frames`` (uint8, concatenated) with ``frame_offsets`` (int64,
    one more than the frames), the bias the buffer ``bias``: ``state_dict()`` holds them and
    ``load_state_dict`` accepts frames of any size (they are parsed and checked). There are no
    parameters: the layer is frozen. In grad mode with an input that requires grad, the input
    gradient is computed from the frames (``grad @ W``); nothing is ever trained in the layer.
    """

    frames: torch.Tensor
    frame_offsets: torch.Tensor
    bias: torch.Tensor | None

    def __init__(
        self,
        frames: Sequence[Any],
        bias: torch.Tensor | None = None,
        *,
        threads: int | None = None,
    ) -> None:
        super().__init__()
        views = [_frame_bytes(f, i) for i, f in enumerate(frames)]
        if not views:
            raise ShapeError("a SparseLinear needs at least one frame")
        sizes = [len(v) if not isinstance(v, memoryview) else v.nbytes for v in views]
        blob = np.empty(sum(sizes), np.uint8)
        pos = 0
        for v, n in zip(views, sizes, strict=True):
            blob[pos : pos + n] = np.frombuffer(v, np.uint8)
            pos += n
        self.register_buffer("frames", torch.from_numpy(blob))
        self.register_buffer(
            "frame_offsets", torch.tensor([0, *np.cumsum(sizes).tolist()], dtype=torch.int64)
        )
        self.register_buffer("bias", None)
        self.threads = threads
        #: The lossy transform applied before encoding (e.g. ``"2:4"``), or ``None``.
        self.pruned: str | None = None
        self._cache: tuple[tuple[int, int, int], CompressedLinear] | None = None
        layer = self._compressed()
        if bias is not None:
            self.bias = self._check_bias(bias, layer.shape[0])

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())  # type: ignore[no-untyped-call]
        state["_cache"] = None  # views of the frames, rebuilt on demand (copy.deepcopy works)
        return state

    # -- construction -----------------------------------------------------------------------------

    @classmethod
    def from_linear(
        cls,
        linear: nn.Linear,
        codec: str | Mapping[str, Any] | Codec = "hybrid",
        *,
        prune: str | None = None,
        block_bytes: int = DEFAULT_BLOCK_BYTES,
        threads: int | None = None,
    ) -> SparseLinear:
        """Encode ``linear``'s weight (split into row blocks of at most ``block_bytes`` dense
        bytes, as checkpoints do), optionally N:M-pruned first (``prune="2:4"``, lossy)."""
        layer, _ = _from_linear(linear, _codec_of(codec), _pattern(prune), block_bytes, threads)
        return layer

    @staticmethod
    def _check_bias(bias: object, rows: int) -> torch.Tensor:
        if not isinstance(bias, torch.Tensor):
            raise UnsupportedDtypeError(f"bias must be a torch tensor, got {type(bias).__name__}")
        _check_cpu(bias, "bias")
        if tuple(bias.shape) != (rows,):
            raise ShapeError(
                f"bias must have shape ({rows},), one value per output row, got "
                f"{tuple(bias.shape)}"
            )
        if not bias.is_floating_point():
            raise UnsupportedDtypeError(f"bias must be floating point, got {bias.dtype}")
        return bias.detach().clone()

    # -- what it holds ----------------------------------------------------------------------------

    def _compressed(self) -> CompressedLinear:
        """The frames parsed (and checked) as a :class:`CompressedLinear`, rebuilt when the
        buffers change (``load_state_dict``, ``.to()``)."""
        # the buffers read from _buffers: through nn.Module.__getattr__ each name costs about
        # a microsecond, and this runs on every forward
        frames, frame_offsets = self._buffers["frames"], self._buffers["frame_offsets"]
        if not isinstance(frames, torch.Tensor) or not isinstance(frame_offsets, torch.Tensor):
            raise UnsupportedDtypeError(
                "SparseLinear frames and frame_offsets must be tensors, got "
                f"{type(frames).__name__} and {type(frame_offsets).__name__}"
            )
        key = (frames.data_ptr(), frame_offsets.data_ptr(), frames.numel())
        cached = self._cache
        if cached is not None and cached[0] == key:
            return cached[1]
        _check_cpu(frames, "SparseLinear frames")
        if frames.dtype != torch.uint8 or frames.dim() != 1:
            raise UnsupportedDtypeError(
                f"SparseLinear frames must be a 1-D uint8 tensor, got {frames.dtype} "
                f"{tuple(frames.shape)}"
            )
        offsets = frame_offsets.tolist()
        n = frames.numel()
        if (
            len(offsets) < 2 or offsets[0] != 0 or offsets[-1] != n
            or any(b <= a for a, b in itertools.pairwise(offsets))
        ):
            raise ShapeError(
                f"SparseLinear frame_offsets must rise strictly from 0 to {n} (the frame bytes), "
                f"got {offsets[:8]}{'...' if len(offsets) > 8 else ''}"
            )
        mv = frames.numpy().data
        layer = CompressedLinear([mv[a:b] for a, b in itertools.pairwise(offsets)])
        self._cache = (key, layer)
        return layer

    @property
    def in_features(self) -> int:
        return self._compressed().shape[1]

    @property
    def out_features(self) -> int:
        return self._compressed().shape[0]

    @property
    def weight_dtype(self) -> np.dtype[Any]:
        """The dtype the weight is stored in (numpy; ``bfloat16`` from ml_dtypes)."""
        return self._compressed().dtype

    @property
    def codecs(self) -> list[str]:
        """The codecs of the frames (usually one)."""
        return list(dict.fromkeys(p.codec_id for p in self._compressed()._parsed))

    @property
    def nbytes(self) -> int:
        """Bytes held: the frames (with their offsets table) and the bias."""
        extra = self.frame_offsets.numel() * 8
        if self.bias is not None:
            extra += self.bias.numel() * self.bias.element_size()
        return self.frames.numel() + extra

    @property
    def dense_nbytes(self) -> int:
        """Bytes of ``W`` and the bias as dense tensors of the weight's dtype."""
        out, inp = self._compressed().shape
        bias = 0 if self.bias is None else self.bias.numel() * self.bias.element_size()
        return out * inp * self.weight_dtype.itemsize + bias

    def extra_repr(self) -> str:
        layer = self._compressed()
        pct = 100 * self.nbytes / self.dense_nbytes if self.dense_nbytes else 0.0
        text = (
            f"in_features={layer.shape[1]}, out_features={layer.shape[0]}, "
            f"codec={'+'.join(self.codecs)}, dtype={layer.dtype}, frames={len(layer.frames)}, "
            f"bytes={self.nbytes} ({pct:.1f}% of dense), bias={self.bias is not None}"
        )
        return text + (f", pruned={self.pruned}" if self.pruned else "")

    def decode_weight(self) -> torch.Tensor:
        """``W`` as a dense tensor (for checking; the layer itself never does this)."""
        w = self._compressed().decode()
        if w.dtype.name == "bfloat16":
            return torch.from_numpy(w.view(np.int16)).view(torch.bfloat16)
        return torch.from_numpy(w)

    # -- products ---------------------------------------------------------------------------------

    def _matmul(self, x: torch.Tensor, layer: CompressedLinear) -> torch.Tensor:
        if x.dtype == torch.bfloat16:  # as bfloat16: 2:4 bfloat16 weights take pair products
            import ml_dtypes

            xa = x.detach().contiguous().view(torch.int16).numpy().view(ml_dtypes.bfloat16)
        else:
            xa = x.detach().to(torch.float32).contiguous().numpy()
        y = torch.from_numpy(matmul(xa, layer, threads=resolve_threads(self.threads)))
        bias = self._buffers["bias"]
        if bias is not None:
            y += bias if bias.dtype == torch.float32 else bias.to(torch.float32)
        return y if x.dtype == torch.float32 else y.to(x.dtype)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x @ W.T + b`` for ``x`` of shape ``(..., in_features)`` (float32, bfloat16 or
        float16, CPU), computed in float32 from the frames and returned in ``x``'s dtype (a
        bfloat16 ``x`` on 2:4 bfloat16 frames: pairs of bfloat16 products, see
        :func:`sparsecodecs.matmul`)."""
        if not isinstance(x, torch.Tensor):
            raise UnsupportedDtypeError(
                f"SparseLinear takes a torch tensor, got {type(x).__name__}"
            )
        _check_cpu(x, "SparseLinear input")
        if x.dtype not in INPUT_DTYPES:
            raise UnsupportedDtypeError(
                f"SparseLinear input must be float32, bfloat16 or float16, got {x.dtype}"
            )
        layer = self._compressed()  # checks the frames (device, dtype) whenever they change
        if x.dim() == 0 or x.shape[-1] != layer.shape[1]:
            raise ShapeError(
                f"SparseLinear(in_features={layer.shape[1]}, out_features={layer.shape[0]}) "
                f"needs an input of shape (..., {layer.shape[1]}), got {tuple(x.shape)}"
            )
        if torch.is_grad_enabled() and x.requires_grad:
            out: torch.Tensor = _Product.apply(x, self, layer)  # type: ignore[no-untyped-call]
            return out
        return self._matmul(x, layer)

    # -- state_dict -------------------------------------------------------------------------------

    def _load_from_state_dict(
        self,
        state_dict: Mapping[str, Any],
        prefix: str,
        local_metadata: Any,
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        """Take the frames whatever their size (a fresh layer holds other frames), then check
        them (bad frames raise the library's errors, as decoding would, and leave the layer as
        it was); a bias may appear or disappear with the frames."""
        names = ("frames", "frame_offsets", "bias")
        got = {n: state_dict[prefix + n] for n in names if prefix + n in state_dict}
        for n in names[:2]:
            if n not in got:
                missing_keys.append(prefix + n)
        if strict:
            unexpected_keys.extend(
                k for k in state_dict
                if k.startswith(prefix) and "." not in k[len(prefix):]
                and k[len(prefix):] not in names
            )
        if "frames" not in got or "frame_offsets" not in got:
            return
        frames, offsets = got["frames"], got["frame_offsets"]
        if not isinstance(frames, torch.Tensor) or not isinstance(offsets, torch.Tensor):
            raise UnsupportedDtypeError(f"{prefix}frames and {prefix}frame_offsets must be tensors")
        _check_cpu(frames, f"{prefix}frames")
        old = (self.frames, self.frame_offsets, self.bias, self._cache)
        self.frames = frames.detach().contiguous().clone()
        self.frame_offsets = offsets.detach().to(torch.int64).clone()
        try:
            rows = self._compressed().shape[0]
            self.bias = None if got.get("bias") is None else self._check_bias(got["bias"], rows)
        except BaseException:
            self.frames, self.frame_offsets, self.bias, self._cache = old
            raise


# -- compressing a model ----------------------------------------------------------------------


def _pattern(prune_: str | None) -> str | None:
    if prune_ is None:
        return None
    nm = parse_pattern(prune_)
    if nm is None:  # pragma: no cover - parse_pattern(None) only
        raise CodecConfigError(f"prune must be an N:M pattern such as '2:4', got {prune_!r}")
    return f"{nm[0]}:{nm[1]}"


def _weight_array(linear: nn.Linear, name: str) -> np.ndarray:
    _check_cpu(linear.weight, f"the weight of {name or 'the module'}")
    return _as_numpy(linear.weight.detach(), f"{name}.weight")


def _from_linear(
    linear: nn.Linear,
    codec: Codec,
    pattern: str | None,
    block_bytes: int,
    threads: int | None,
    name: str = "",
) -> tuple[SparseLinear, float | None]:
    """The layer, and the relative RMS error of the pruning (``None``: not pruned)."""
    block_bytes = _check_block_bytes(block_bytes)
    w = _weight_array(linear, name)
    error = None
    if pattern is not None:
        pruned, _ = prune(w, pattern)
        num, den = _sq_sums(w, pruned)
        error = math.sqrt(num / den) if den else 0.0
        w = pruned
    rows = _row_bounds(w.shape, w.itemsize, block_bytes) or [0, w.shape[0]]
    frames = [codec.encode(w[a:b]) for a, b in itertools.pairwise(rows)]
    bias = None if linear.bias is None else linear.bias.detach()
    layer = SparseLinear(frames, bias, threads=threads)
    layer.pruned = pattern
    return layer, error


@dataclass(frozen=True)
class LayerReport:
    """One replaced layer: what it holds against what it held."""

    name: str
    shape: tuple[int, int]
    dtype: str
    codec: str
    nbytes: int
    dense_nbytes: int
    pruned: str | None = None
    #: Relative RMS error of the pruning, ``None`` if not pruned.
    error: float | None = None

    @property
    def ratio(self) -> float:
        return self.nbytes / self.dense_nbytes if self.dense_nbytes else math.nan


@dataclass(frozen=True)
class ModelReport:
    """What :func:`compress_model` did: per layer, and in total; ``skipped`` maps module names to
    why they were left as they are."""

    layers: list[LayerReport]
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self.layers)

    @property
    def dense_nbytes(self) -> int:
        return sum(r.dense_nbytes for r in self.layers)

    @property
    def lossy(self) -> bool:
        return any(r.pruned for r in self.layers)

    def to_dict(self) -> dict[str, Any]:
        return {
            "nbytes": self.nbytes, "dense_nbytes": self.dense_nbytes,
            "layers": [asdict(r) for r in self.layers], "skipped": dict(self.skipped),
        }

    def __str__(self) -> str:
        width = max([len(r.name) for r in self.layers] + [5])
        lines = [f"{'layer':<{width}}  {'shape':<12} {'dtype':<9} {'codec':<8} {'dense':>12} "
                 f"{'held':>12} {'%':>7}  pruning (rel. RMS error)"]
        for r in self.layers:
            shape = f"{r.shape[0]}x{r.shape[1]}"
            prune_text = "-" if r.pruned is None else f"{r.pruned} ({r.error:.3g})"
            lines.append(f"{r.name:<{width}}  {shape:<12} {r.dtype:<9} {r.codec:<8} "
                         f"{r.dense_nbytes:>12,} {r.nbytes:>12,} {100 * r.ratio:6.2f}%  "
                         f"{prune_text}")
        pct = 100 * self.nbytes / self.dense_nbytes if self.dense_nbytes else 0.0
        lines.append(f"{len(self.layers)} layers: {self.dense_nbytes:,} dense bytes -> "
                     f"{self.nbytes:,} held ({pct:.2f}%)")
        for name, why in self.skipped.items():
            lines.append(f"skipped {name}: {why}")
        if self.lossy:
            errors = [r.error for r in self.layers if r.error is not None]
            lines.append(f"LOSSY: {sum(1 for r in self.layers if r.pruned)} layers pruned "
                         f"(worst relative RMS error {max(errors):.3g})")
        return "\n".join(lines)

    __repr__ = __str__


def _matches(patterns: Sequence[str] | str | None, name: str, what: str) -> bool | None:
    if patterns is None:
        return None
    if isinstance(patterns, str):
        patterns = [patterns]
    for p in patterns:
        try:
            if re.search(p, name):
                return True
        except (re.error, TypeError) as exc:
            raise CodecConfigError(f"{what}: {p!r} is not a valid regular expression") from exc
    return False


def compress_model(
    model: nn.Module,
    codec: str | Mapping[str, Any] | Codec = "hybrid",
    prune: str | None = None,
    include: Sequence[str] | str | None = None,
    exclude: Sequence[str] | str | None = None,
    threads: int | None = None,
    *,
    prune_include: Sequence[str] | str | None = None,
    prune_exclude: Sequence[str] | str | None = None,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> ModelReport:
    """Replace the ``nn.Linear`` modules of ``model`` by :class:`SparseLinear`, in place.

    Parameters
    ----------
    model
        Any module on the CPU (its linear weights are read once and dropped).
    codec
        Codec name, config or instance for every weight (default ``"hybrid"``).
    prune
        LOSSY, off by default: N:M magnitude pruning (``"2:4"``) of the weights along their
        input axis before encoding, reported per layer as a relative RMS error.
    include, exclude
        Regular expressions searched in module names (``model.named_modules()``): a linear
        module is replaced if it matches one of ``include`` (``None``: all) and none of
        ``exclude`` (``None``: none).
    threads
        Stored on each layer and passed to :func:`sparsecodecs.matmul` when it takes it.
    prune_include, prune_exclude
        Which replaced layers ``prune`` touches, by module name, as in
        :func:`sparsecodecs.compress`: by default (``prune_exclude=None``) an output head named
        ``lm_head`` (or anything embedding- or norm-like) is compressed losslessly, not pruned.
    block_bytes
        Weights larger than this are stored as row blocks of at most this many dense bytes.

    Returns
    -------
    ModelReport
        Per layer: bytes held, dense bytes, pruning error; ``print(report)`` gives a table.

    Linear modules inside ``nn.MultiheadAttention`` (which reads their ``weight`` directly) are
    skipped and listed in ``report.skipped``.
    """
    if isinstance(model, nn.Linear):
        raise CodecConfigError(
            "compress_model replaces the linear modules inside a model; for one nn.Linear use "
            "SparseLinear.from_linear(linear)"
        )
    codec_obj = _codec_of(codec)
    pattern = _pattern(prune)
    block_bytes = _check_block_bytes(block_bytes)
    in_scope = prune_scope(prune_include, prune_exclude)
    targets: list[tuple[str, nn.Module, str, nn.Linear]] = []
    skipped: dict[str, str] = {}
    for parent_name, parent in model.named_modules():
        for child_name, child in parent.named_children():
            if not isinstance(child, nn.Linear):
                continue
            name = f"{parent_name}.{child_name}" if parent_name else child_name
            if _matches(include, name, "include") is False:
                continue
            if _matches(exclude, name, "exclude"):
                continue
            if isinstance(parent, nn.MultiheadAttention):
                skipped[name] = "inside nn.MultiheadAttention, which reads .weight itself"
                continue
            _check_cpu(child.weight, f"the weight of {name}")  # all checked before any change
            targets.append((name, parent, child_name, child))
    layers = []
    built = []  # every layer is encoded before any is replaced: an error leaves the model as is
    for name, parent, child_name, child in targets:
        layer_pattern = pattern if pattern is not None and in_scope(name) else None
        try:
            new, error = _from_linear(child, codec_obj, layer_pattern, block_bytes, threads, name)
        except SparseCodecsError as exc:
            why = " (not pruned: outside prune_include/prune_exclude)" if pattern else ""
            raise type(exc)(f"layer {name!r}{why}: {exc}") from exc
        new.train(child.training)
        built.append((parent, child_name, new))
        out, inp = new._compressed().shape
        layers.append(LayerReport(
            name, (out, inp), str(new.weight_dtype), "+".join(new.codecs), new.nbytes,
            new.dense_nbytes, layer_pattern, error,
        ))
    for parent, child_name, new in built:
        setattr(parent, child_name, new)
    return ModelReport(layers, skipped)


# -- one file ---------------------------------------------------------------------------------


def _sparse_layers(model: nn.Module) -> dict[str, SparseLinear]:
    return {n: m for n, m in model.named_modules() if isinstance(m, SparseLinear)}


def save_compressed(
    model: nn.Module,
    path: str | Path,
    *,
    codec: str | Mapping[str, Any] | Codec = "hybrid",
    force: bool = False,
    block_bytes: int = SAVE_BLOCK_BYTES,
    metadata: Mapping[str, str] | None = None,
) -> CheckpointReport:
    """Write ``model`` (after :func:`compress_model`) as one compressed safetensors checkpoint.

    Each :class:`SparseLinear` weight is written as its frames, untouched, under the name the
    ``nn.Linear`` weight had (``<module>.weight``); every other tensor of the ``state_dict``
    (embeddings, norms, biases, buffers) is encoded losslessly with ``codec``, in row blocks of
    at most ``block_bytes`` dense bytes (default :data:`SAVE_BLOCK_BYTES`, 4 MiB: see there).
    The file is a normal compressed checkpoint (:func:`sparsecodecs.safe_open`, ``sparsecodecs
    decompress`` turns it into a plain safetensors file of the same, possibly pruned, weights),
    written atomically; an existing ``path`` is replaced only with ``force=True``. A pruned
    model is recorded as lossy in the metadata.

    Returns the checkpoint's accounting (:func:`sparsecodecs.inspect_checkpoint`).
    """
    codec_obj = _codec_of(codec)
    block_bytes = _check_block_bytes(block_bytes)
    user = {} if metadata is None else dict(metadata)
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in user.items()):
        raise CheckpointError(f"metadata must be a dict of str to str, got {metadata!r:.200}")
    sparse = _sparse_layers(model)
    own = {f"{n}.{b}" if n else b: n for n in sparse for b in ("frames", "frame_offsets")}
    # name -> (frames and row bounds) or an array
    entries: dict[str, tuple[list[bytes], list[int] | None] | np.ndarray] = {}
    table: dict[str, tuple[str, list[int]]] = {}
    for key, t in model.state_dict().items():
        if key in own:
            if key.endswith("frame_offsets"):
                continue
            layer_name = own[key]
            layer = sparse[layer_name]
            _check_cpu(layer.frames, f"{key}")
            cl = layer._compressed()
            name = f"{layer_name}.weight" if layer_name else "weight"
            blocks = [bytes(f) for f in cl.frames]
            entries[name] = (blocks, list(cl.offsets) if len(blocks) > 1 else None)
            dense = np.empty((0,), cl.dtype)
            table[name] = (_st_dtype(dense, name), list(cl.shape))
            continue
        if not isinstance(t, torch.Tensor):
            continue
        _check_cpu(t, f"tensor {key!r}")
        array = np.ascontiguousarray(_as_numpy(t, key))
        if array.dtype.byteorder == ">":  # pragma: no cover - torch is little-endian here
            array = array.astype(array.dtype.newbyteorder("<"))
        st = _st_dtype(array, key)
        entries[key] = array.view(np.uint8) if st == "BOOL" else array
        table[key] = (st, list(array.shape))
    linear = [f"{n}.weight" if n else "weight" for n in sparse]
    pruned = [f"{n}.weight" if n else "weight" for n, m in sparse.items() if m.pruned]
    patterns = sorted({m.pruned for m in sparse.values() if m.pruned})
    user[METADATA_KEY] = json.dumps({"linear": linear}, separators=(",", ":"))
    record = None
    if pruned:
        record = {"lossy": True, "prune": "+".join(patterns), "tensors": pruned}
    meta = _checkpoint_metadata(table, user, record)
    plan: list[tuple[str, list[int] | None]] = []
    for name, e in entries.items():
        if isinstance(e, np.ndarray):
            plan.append((name, _row_bounds(e.shape, e.itemsize, block_bytes)))
        else:
            plan.append((name, e[1]))

    def frames() -> Iterator[bytes]:
        for name, rows in plan:
            e = entries[name]
            if not isinstance(e, np.ndarray):
                yield from e[0]
            elif rows is None:
                yield codec_obj.encode(e)
            else:
                for a, b in itertools.pairwise(rows):
                    yield codec_obj.encode(e[a:b])

    out = Path(path)
    with atomic_file(out, force) as fh:
        _write_checkpoint(fh, plan, meta, frames())
    return inspect_checkpoint(out)


@contextlib.contextmanager
def empty_weights() -> Iterator[None]:
    """Build a model skeleton whose parameters are on the ``meta`` device (no memory), buffers
    on the CPU, for :func:`load_compressed` (what ``accelerate.init_empty_weights`` does).

    >>> import torch, sparsecodecs.torch as sct
    >>> with sct.empty_weights():
    ...     skeleton = torch.nn.Linear(4096, 4096)
    >>> skeleton.weight.device
    device(type='meta')
    """
    register = nn.Module.register_parameter

    def to_meta(module: nn.Module, name: str, param: nn.Parameter | None) -> None:
        register(module, name, param)
        if param is not None:
            kind = type(param)
            module._parameters[name] = kind(param.to("meta"), requires_grad=param.requires_grad)

    nn.Module.register_parameter = to_meta  # type: ignore[method-assign, assignment]
    try:
        yield
    finally:
        nn.Module.register_parameter = register  # type: ignore[method-assign]


def _set_module(model: nn.Module, name: str, new: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = model.get_submodule(parent_name) if parent_name else model
    setattr(parent, child, new)


def load_compressed(
    model: nn.Module,
    path: str | Path,
    *,
    strict: bool = True,
    threads: int | None = None,
) -> nn.Module:
    """Load a compressed checkpoint into ``model`` (a skeleton of the right architecture).

    Every linear layer (an ``nn.Linear`` or a :class:`SparseLinear`) whose ``<name>.weight`` the
    file holds becomes a :class:`SparseLinear` built from the stored frames, which are never
    decoded; every other tensor is decoded into the model (``assign``: a skeleton built under
    :func:`empty_weights` takes the loaded tensors, so no dense linear weight ever exists). Works
    with files from :func:`save_compressed` and from ``sparsecodecs compress`` alike.

    With ``strict`` (default), a tensor of the model missing from the file, or a tensor of the
    file the model has no place for, raises :class:`CheckpointError` before the model is
    changed. File tensors named like the model's non-persistent buffers (which the skeleton
    builds itself) are skipped. Returns ``model``.
    """
    for name, t in [*model.named_parameters(), *model.named_buffers()]:
        if t.device.type not in ("cpu", "meta"):
            raise DeviceError(f"model tensor {name!r} is on device {t.device}; sparsecodecs "
                              "loads into CPU models only: call .cpu() first (or build the "
                              "skeleton under sparsecodecs.torch.empty_weights())")
    with safe_open(path, framework="pt") as f:
        keys = set(f.keys())
        linears = {
            n: m for n, m in model.named_modules()
            if isinstance(m, (nn.Linear, SparseLinear)) and n and f"{n}.weight" in keys
            and len(f.shape(f"{n}.weight")) == 2
        }
        layer_keys = {f"{n}.{b}" for n in linears for b in ("weight", "bias", "frames",
                                                              "frame_offsets")}
        wanted = [k for k in model.state_dict() if k not in layer_keys]
        missing = [k for k in wanted if k not in keys]
        for n, m in linears.items():
            has_bias = m.bias is not None
            if has_bias and f"{n}.bias" not in keys:
                missing.append(f"{n}.bias")
        used = set(wanted) | {f"{n}.weight" for n in linears} | {
            f"{n}.bias" for n in linears if f"{n}.bias" in keys
        }
        # A file written from a model whose buffers were persistent (e.g. an older
        # transformers' position_ids) has them; the skeleton rebuilds them itself: skipped.
        transient = {n for n, _ in model.named_buffers()} - set(model.state_dict())
        unexpected = sorted(keys - used - transient)
        if strict and (missing or unexpected):
            raise CheckpointError(
                f"{path}: does not fit the model: missing {sorted(missing)[:10]}"
                f"{'...' if len(missing) > 10 else ''}, unexpected {unexpected[:10]}"
                f"{'...' if len(unexpected) > 10 else ''} (strict=False loads what fits)"
            )
        pruned = set((f.transforms() or {}).get("tensors", []))
        prune_spec = (f.transforms() or {}).get("prune")
        new_layers = {}
        for n in linears:
            bias = f.get_tensor(f"{n}.bias") if f"{n}.bias" in keys else None
            layer = SparseLinear(f.get_block_frames(f"{n}.weight"), bias, threads=threads)
            if layer._compressed().shape != tuple(f.shape(f"{n}.weight")):
                raise CheckpointError(
                    f"{path}: tensor {n}.weight: its frames hold "
                    f"{list(layer._compressed().shape)}, the tensor table says "
                    f"{list(f.shape(f'{n}.weight'))}"
                )
            layer.pruned = prune_spec if f"{n}.weight" in pruned else None
            new_layers[n] = layer
        rest = {k: f.get_tensor(k) for k in wanted if k in keys}
    for n, layer in new_layers.items():
        _set_module(model, n, layer)
    model.load_state_dict(rest, strict=False, assign=True)
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()]
            if t.device.type == "meta"]
    if left and strict:
        raise CheckpointError(f"{path}: tensors of the model still on the meta device after "
                              f"loading: {left[:10]}")
    return model
