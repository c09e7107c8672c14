"""The one error hierarchy of sparsecodecs.

Every error a user can cause, with bad input, bad parameters or a bad frame, is a subclass of
:class:`SparseCodecsError`, which is a :class:`ValueError`. Where an error is also naturally a
``LookupError``, ``TypeError`` or ``ImportError`` it inherits from that too, so callers can catch
whichever they think of first. ``docs/errors.md`` lists every class with its message format.
"""

from __future__ import annotations

__all__ = [
    "BadMagicError",
    "CheckpointError",
    "ChecksumError",
    "ClusterError",
    "CodecConfigError",
    "DecodeLimitError",
    "DeviceError",
    "FillError",
    "FrameError",
    "FrameHeaderError",
    "FrameLayoutError",
    "OutputDirError",
    "OutputExistsError",
    "PatternError",
    "PluginError",
    "RegistryError",
    "ShapeError",
    "SliceError",
    "SparseCodecsError",
    "TensorNotFoundError",
    "TruncatedFrameError",
    "UnknownCodecError",
    "UnsupportedDtypeError",
    "UnsupportedVersionError",
    "UsageError",
]


class SparseCodecsError(ValueError):
    """Base class of every error sparsecodecs raises on purpose."""


class CodecConfigError(SparseCodecsError):
    """A codec parameter or config is invalid (wrong type, out of range, unknown key)."""


class FillError(CodecConfigError):
    """A layout's ``fill`` (the value that counts as empty) does not fit the input: a number
    the dtype cannot represent exactly, or a per-row sequence of the wrong length."""


class UnsupportedDtypeError(SparseCodecsError, TypeError):
    """The input is not a numeric ndarray of a supported dtype."""


class PatternError(SparseCodecsError):
    """The input does not have the structure the codec requires (e.g. a group that is not N:M)."""


class ShapeError(SparseCodecsError):
    """Array shapes do not fit an operation (e.g. ``x``'s last axis is not the weight's input
    size in :func:`sparsecodecs.matmul`, or the weight is not 2-D)."""


class UnknownCodecError(SparseCodecsError, LookupError):
    """No codec is registered or installed under the requested name."""


class RegistryError(SparseCodecsError):
    """A registration was refused (e.g. an id already taken by a different class)."""


class PluginError(SparseCodecsError, ImportError):
    """A third-party codec, declared through an entry point, could not be loaded."""


class FrameError(SparseCodecsError):
    """A frame could not be decoded. Subclasses say which check failed."""


class BadMagicError(FrameError):
    """The bytes do not start with the sparsecodecs magic."""


class UnsupportedVersionError(FrameError):
    """The frame's format version is not one this library reads."""


class TruncatedFrameError(FrameError):
    """The frame is shorter than its own header says it is."""


class ChecksumError(FrameError):
    """The frame's checksum does not match its bytes."""


class FrameHeaderError(FrameError):
    """The JSON header is malformed or a field has the wrong type or value."""


class FrameLayoutError(FrameError):
    """The sections do not add up: a size, count or index disagrees with the shape or config."""


class DecodeLimitError(FrameError):
    """Decoding would allocate more than the configured limit."""


class CheckpointError(SparseCodecsError):
    """A checkpoint (a safetensors file, a folder of shards or its index) is malformed or
    incomplete: not safetensors, truncated, a bad header, a missing shard."""


class TensorNotFoundError(CheckpointError, LookupError):
    """A checkpoint has no tensor of the requested name."""


class OutputExistsError(SparseCodecsError, FileExistsError):
    """The output path exists and overwriting it was not asked for (``force=True``)."""


class SliceError(SparseCodecsError, IndexError):
    """A row slice of a checkpoint tensor is out of range, has a step, or is of a kind
    ``safe_open(...).get_slice(name)[...]`` does not support."""


class DeviceError(SparseCodecsError):
    """A tensor or module is not on the CPU: :mod:`sparsecodecs.torch` computes on the CPU only
    (move it with ``.cpu()``)."""


class ClusterError(SparseCodecsError):
    """The Dask cluster asked for cannot be used: a bad scheduler address, a scheduler that does
    not answer, or ``dask.distributed`` not installed."""


class OutputDirError(SparseCodecsError, FileNotFoundError):
    """The folder an output file or folder should be written into does not exist."""


class UsageError(SparseCodecsError):
    """A command-line option or argument is invalid, inconsistent or names a missing path.

    Raised by the CLI and the bench (``sparsecodecs bench``) for what the user typed; the CLI
    prints it as one line and exits with code 2. ``sparsecodecs.cli.CLIError`` is this class.
    """
