"""Storage and interop: compressed checkpoints (:mod:`sparsecodecs.io.checkpoint`, also
importable as :mod:`sparsecodecs.checkpoint`). Nothing heavy is imported here."""
