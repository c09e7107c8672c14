"""The ``sparsecodecs`` command line.

Sub-commands: ``list`` (codecs), ``inspect FILE`` (accounting of a saved frame or a compressed
checkpoint), ``encode`` / ``decode`` (``.npy`` <-> frame files), ``compress`` / ``decompress``
(safetensors checkpoints) and ``bench`` (the benchmark). Heavy modules are imported
inside the sub-command that needs them, so ``sparsecodecs --help`` starts quickly.

Every error a user can cause prints one line to stderr and exits with code 2.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ._atomic import atomic_write, check_output
from .registry.errors import UsageError

__all__ = ["CLIError", "atomic_write", "build_parser", "main"]


CLIError = UsageError
"""A user error to report in one line (exit code 2): :class:`sparsecodecs.UsageError`, whose
old name this is (kept for scripts that import it)."""


def _read(path: str) -> bytes:
    p = Path(path)
    if not p.is_file():
        raise UsageError(f"{path}: no such file")
    return p.read_bytes()


def _cmd_list(args: argparse.Namespace) -> int:
    import sparsecodecs as sc

    rows = sc.list_codecs()
    if args.json:
        print(json.dumps([vars(r) | {"aliases": list(r.aliases)} for r in rows], indent=2))
        return 0
    width = max(len(r.name) for r in rows)
    for r in rows:
        extra = f"  (aliases: {', '.join(r.aliases)})" if r.aliases else ""
        origin = "" if r.source == "builtin" else f"  [{r.source}]"
        text = f"failed to load: {r.error}" if r.error else r.description
        print(f"{r.name:<{width}}  {text}{extra}{origin}")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    import sparsecodecs as sc
    from sparsecodecs.checkpoint import is_safetensors

    path = Path(args.file)
    if not path.exists():
        raise UsageError(f"{path}: no such file or folder")
    is_frame = path.is_file() and not is_safetensors(path)
    if is_frame:
        if args.tensor is not None:
            raise UsageError(f"{path} holds a single frame; --tensor is for checkpoints")
        report: Any = sc.inspect(path.read_bytes())
    elif args.tensor is not None:
        if path.is_dir():
            raise UsageError("--tensor needs a checkpoint file, not a folder")
        with sc.safe_open(path) as f:
            report = f.inspect(args.tensor)
    else:
        report = sc.inspect_checkpoint(path)
    print(json.dumps(report.to_dict(), indent=2) if args.json else report)
    return 0


def _progress(enabled: bool) -> Any:
    """A ``(name, done, total)`` callback drawing a progress bar on stderr, and its closer.

    rich's bar when rich is installed, else a plain counter; nothing unless stderr is a
    terminal (or ``enabled`` is false).
    """
    if not enabled or not sys.stderr.isatty():
        return None, lambda: None
    try:
        from rich.progress import Progress
    except ImportError:

        def plain(name: str, done: int, total: int) -> None:
            end = "\n" if done == total else ""
            print(f"\r[{done}/{total}] {name[:60]:<60}", end=end, file=sys.stderr, flush=True)

        return plain, lambda: None
    bar = Progress(transient=True)
    bar.start()
    task = bar.add_task("tensors", total=None)

    def tick(name: str, done: int, total: int) -> None:
        bar.update(task, completed=done, total=total, description=name[:40])

    return tick, bar.stop


_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def _parse_size(text: str) -> int:
    """``"32MiB"``, ``"512k"``, ``"1048576"`` or ``"0"`` as a number of bytes (binary units)."""
    import re

    match = re.fullmatch(r"\s*(\d+)\s*(?:([kmg])i?b?|b)?\s*", text, re.IGNORECASE)
    if match is None:
        raise UsageError(
            f"--block-bytes must be a size such as 32MiB, 512KiB or 1048576 (0: never split), "
            f"got {text!r}"
        )
    return int(match[1]) * _UNITS[(match[2] or "").lower()]


def _cmd_compress(args: argparse.Namespace) -> int:
    import contextlib

    import sparsecodecs as sc
    from sparsecodecs.checkpoint import DEFAULT_BLOCK_BYTES

    codec = sc.get_codec(args.codec, **_parse_params(args.param))
    block_bytes = DEFAULT_BLOCK_BYTES if args.block_bytes is None else _parse_size(
        args.block_bytes
    )
    if args.dask is not None:  # check the input and output before waiting for a scheduler
        check_output(Path(args.output), args.force)
        from sparsecodecs.io.checkpoint.files import _layout

        _layout(args.input)
    with contextlib.ExitStack() as stack:
        client = None
        if args.dask is not None:
            from sparsecodecs.io.dask import connect

            client = stack.enter_context(connect(args.dask, timeout=args.dask_timeout))
        tick, stop = _progress(not args.no_progress)
        stack.callback(stop)
        report = sc.compress(
            args.input, args.output, codec, prune=args.prune, cluster=args.cluster,
            prune_include=args.prune_include,
            prune_exclude=None if args.prune_exclude is None else [
                p for p in args.prune_exclude if p
            ],
            workers=args.workers, force=args.force, progress=tick, block_bytes=block_bytes,
            client=client,
        )
    print(json.dumps(report.to_dict(), indent=2) if args.json else report)
    if report.transforms:
        print(
            f"WARNING: the output is LOSSY: {len(report.transforms['tensors'])} floating-point "
            f"tensors of {args.input} were changed by --prune/--cluster and are NOT "
            "bit-identical to the input (recorded in the output's metadata)",
            file=sys.stderr,
        )
    return 0


def _cmd_decompress(args: argparse.Namespace) -> int:
    import sparsecodecs as sc

    tick, stop = _progress(not args.no_progress)
    try:
        report = sc.decompress(args.input, args.output, force=args.force, progress=tick,
                               threads=args.threads)
    finally:
        stop()
    print(
        f"wrote {args.output}: {len(report.tensors)} tensors, {report.input_bytes:,} bytes "
        f"from {report.file_bytes:,} in {report.seconds:.2f} s"
    )
    return 0


def _parse_params(items: Sequence[str]) -> dict[str, Any]:
    params: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"codec parameter {item!r} must look like key=value")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


def _cmd_encode(args: argparse.Namespace) -> int:
    import numpy as np

    import sparsecodecs as sc
    from sparsecodecs.registry import SUPPORTED_DTYPES

    try:
        array = np.load(args.input, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise UsageError(f"{args.input}: cannot read a .npy array: {exc}") from exc
    if args.dtype is not None:
        target = SUPPORTED_DTYPES.get(args.dtype)
        if target is None:
            raise UsageError(f"--dtype {args.dtype!r} is not one of {', '.join(SUPPORTED_DTYPES)}")
        if target.itemsize != array.dtype.itemsize:
            raise UsageError(
                f"--dtype {args.dtype} has {target.itemsize}-byte items but {args.input} holds "
                f"{array.dtype} ({array.dtype.itemsize} bytes)"
            )
        array = array.view(target)
    elif array.dtype.kind == "V":
        raise UsageError(
            f"{args.input} holds raw {array.dtype.itemsize}-byte items ({array.dtype}): that is "
            "how np.save writes bfloat16 and float8; say which with --dtype, e.g. --dtype bfloat16"
        )
    codec = sc.get_codec(args.codec, **_parse_params(args.param))
    frame = codec.encode(array)
    atomic_write(Path(args.output), frame, force=args.force)
    print(sc.inspect(frame))
    return 0


def _cmd_decode(args: argparse.Namespace) -> int:
    import io

    import numpy as np

    import sparsecodecs as sc

    array = sc.decode(_read(args.input))
    if array.dtype.kind == "V" or array.dtype.name not in np.sctypeDict:
        # .npy cannot describe ml_dtypes types (bfloat16, float8): keep the bit patterns.
        name = array.dtype.name
        array = array.view(f"u{array.dtype.itemsize}")
        print(
            f"note: .npy cannot hold {name}; wrote its bit patterns as {array.dtype}: read it "
            f"with np.load(path).view(ml_dtypes.{name}) or re-encode with --dtype {name}",
            file=sys.stderr,
        )
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    atomic_write(Path(args.output), buf.getvalue(), force=args.force)
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    try:
        from sparsecodecs.bench import run_cli
    except ImportError as exc:  # an optional dependency of the bench is missing
        raise UsageError(f"the benchmark needs the 'bench' extra: {exc}") from exc
    return run_cli(args)


def _version() -> str:
    """``sparsecodecs X.Y.Z`` (the installed distribution's version when it is installed)."""
    from importlib import metadata

    from sparsecodecs import __version__

    try:
        installed = metadata.version("sparsecodecs")
    except metadata.PackageNotFoundError:  # run from a source tree
        installed = __version__
    python = ".".join(map(str, sys.version_info[:3]))
    if installed != __version__:
        return f"sparsecodecs {__version__} (Python {python}; installed metadata: {installed})"
    return f"sparsecodecs {__version__} (Python {python})"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparsecodecs",
        description="Lossless, accounted compression of sparse neural-network weights.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("list", help="list the available codecs")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_list)

    p = sub.add_parser(
        "inspect", help="show where the bytes of a frame file or compressed checkpoint went"
    )
    p.add_argument("file", help="a frame file, or a compressed checkpoint (file or folder)")
    p.add_argument("--tensor", help="only this tensor of a checkpoint")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=_cmd_inspect)

    p = sub.add_parser("compress", help="compress a safetensors checkpoint (file or folder)")
    p.add_argument("input", help=".safetensors file, or a folder of shards with its *.index.json")
    p.add_argument("-o", "--output", required=True, help="file or folder to write")
    p.add_argument("-c", "--codec", default="hybrid", help="codec name (default: hybrid)")
    p.add_argument("-p", "--param", action="append", default=[], help="codec parameter key=value")
    p.add_argument("--prune", metavar="N:M", help="LOSSY: N:M magnitude pruning, e.g. 2:4")
    p.add_argument(
        "--prune-include", metavar="REGEX", action="append",
        help="prune only tensors whose names match REGEX (repeatable; default: all)",
    )
    p.add_argument(
        "--prune-exclude", metavar="REGEX", action="append",
        help="never prune tensors whose names match REGEX (repeatable; replaces the default, "
             "which leaves embeddings, norms and lm_head alone; '' excludes nothing)",
    )
    p.add_argument("--cluster", metavar="K", type=int, help="LOSSY: cluster to K values")
    p.add_argument("--workers", type=int, default=1, help="processes (output is identical)")
    p.add_argument(
        "--block-bytes", metavar="SIZE",
        help="split tensors larger than SIZE into row blocks of at most SIZE dense bytes, one "
             "frame each (e.g. 16MiB; 0: never; default 32MiB)",
    )
    p.add_argument(
        "--dask", metavar="ADDRESS",
        help="encode on the Dask cluster whose scheduler is at ADDRESS (e.g. "
             "tcp://scheduler:8786); its workers read the input at the same path",
    )
    p.add_argument("--dask-timeout", type=float, default=10.0, metavar="SECONDS",
                   help="how long to wait for the Dask scheduler (default 10)")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the summary as JSON")
    p.set_defaults(func=_cmd_compress)

    p = sub.add_parser("decompress", help="turn a compressed checkpoint back into safetensors")
    p.add_argument("input", help="compressed checkpoint (file or folder)")
    p.add_argument("-o", "--output", required=True, help="file or folder to write")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="threads decoding each tensor (default 1; 0: every core)")
    p.set_defaults(func=_cmd_decompress)

    p = sub.add_parser("encode", help="encode a .npy array into a frame file")
    p.add_argument("input", help=".npy file")
    p.add_argument("-o", "--output", required=True, help="frame file to write")
    p.add_argument("-c", "--codec", default="hybrid", help="codec name (default: hybrid)")
    p.add_argument("-p", "--param", action="append", default=[], help="codec parameter key=value")
    p.add_argument(
        "--dtype", help="reinterpret the .npy's items as this dtype (e.g. bfloat16, float8_e4m3fn)"
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=_cmd_encode)

    p = sub.add_parser("decode", help="decode a frame file into a .npy array")
    p.add_argument("input", help="frame file")
    p.add_argument("-o", "--output", required=True, help=".npy file to write")
    p.add_argument("--force", action="store_true", help="overwrite an existing output")
    p.set_defaults(func=_cmd_decode)

    from sparsecodecs.bench import add_arguments  # light: the harness is imported on use

    p = sub.add_parser("bench", help="run the benchmark (the main job)")
    add_arguments(p)
    p.set_defaults(func=_cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except UsageError as exc:
        print(f"sparsecodecs: error: {exc}", file=sys.stderr)
        return 2
    except ValueError as exc:  # SparseCodecsError and friends: user input problems
        print(f"sparsecodecs {args.command}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
