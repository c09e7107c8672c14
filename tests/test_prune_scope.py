"""Which tensors ``--prune`` touches: include/exclude patterns on tensor names, and a default
that leaves embeddings, norms, the output head and 1-D tensors alone (issue 14, item 6)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import sparsecodecs as sc
from sparsecodecs.cli import main
from sparsecodecs.transforms import DEFAULT_PRUNE_EXCLUDE, prune_scope

st_numpy = pytest.importorskip("safetensors.numpy")

NAMES = {
    "embeddings.word_embeddings.weight": (64, 16),
    "model.embed_tokens.weight": (64, 16),
    "transformer.wte.weight": (64, 16),
    "h.0.ln_1.weight": (4, 16),  # 2-D on purpose: excluded by name, not by shape
    "encoder.layer.0.attention.output.LayerNorm.weight": (4, 16),
    "lm_head.weight": (64, 16),
    "encoder.layer.0.attention.self.query.weight": (16, 16),
    "encoder.layer.0.intermediate.dense.weight": (32, 16),
    "encoder.layer.0.intermediate.dense.bias": (32,),
}
PRUNED_BY_DEFAULT = {
    "encoder.layer.0.attention.self.query.weight",
    "encoder.layer.0.intermediate.dense.weight",
}


def tensors() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(1)
    return {n: rng.standard_normal(s).astype(np.float32) + 0.5 for n, s in NAMES.items()}


@pytest.fixture
def plain(tmp_path: Path) -> Path:
    path = tmp_path / "model.safetensors"
    st_numpy.save_file(tensors(), str(path))
    return path


def changed(path: Path) -> set[str]:
    """The tensors of a compressed checkpoint that differ (bit for bit) from the input."""
    want = tensors()
    with sc.safe_open(path) as f:
        names = f.keys()  # safe_open is not iterable
        return {n for n in names if f.get_tensor(n).tobytes() != want[n].tobytes()}


def test_default_scope_prunes_only_layer_weights(plain: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.safetensors"
    report = sc.compress(plain, out, prune="2:4")
    assert changed(out) == PRUNED_BY_DEFAULT
    assert set(report.transforms["tensors"]) == PRUNED_BY_DEFAULT
    assert set(report.errors) == PRUNED_BY_DEFAULT


def test_empty_exclude_prunes_every_2d_float_tensor(plain: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.safetensors"
    sc.compress(plain, out, prune="2:4", prune_exclude=())
    assert changed(out) == {n for n, s in NAMES.items() if len(s) == 2}


def test_include_and_exclude_patterns(plain: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.safetensors"
    sc.compress(plain, out, prune="2:4", prune_include=[r"\.dense\.", "lm_head"])
    assert changed(out) == {"encoder.layer.0.intermediate.dense.weight"}  # lm_head: excluded
    out2 = tmp_path / "d.safetensors"
    sc.compress(plain, out2, prune="2:4", prune_include="lm_head", prune_exclude=["query"])
    assert changed(out2) == {"lm_head.weight"}


def test_cluster_still_applies_to_every_2d_float_tensor(plain: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.safetensors"
    report = sc.compress(plain, out, cluster=4)
    assert set(report.transforms["tensors"]) == {n for n, s in NAMES.items() if len(s) == 2}


def test_bad_pattern_is_a_library_error_and_writes_nothing(plain: Path, tmp_path: Path) -> None:
    out = tmp_path / "c.safetensors"
    with pytest.raises(sc.CodecConfigError, match=r"'\(' is not a valid regular expression"):
        sc.compress(plain, out, prune="2:4", prune_exclude=["("])
    with pytest.raises(sc.CodecConfigError, match="regular expressions"):
        sc.compress(plain, out, prune="2:4", prune_include=[3])  # type: ignore[list-item]
    assert not out.exists()


def test_cli_prune_include_exclude(
    plain: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ["compress", str(plain), "--prune", "2:4", "--no-progress", "-o"]
    assert main([*base, str(tmp_path / "a")]) == 0
    assert changed(tmp_path / "a") == PRUNED_BY_DEFAULT
    assert main([*base, str(tmp_path / "b"), "--prune-exclude", ""]) == 0
    assert changed(tmp_path / "b") == {n for n, s in NAMES.items() if len(s) == 2}
    assert main([*base, str(tmp_path / "c"), "--prune-include", "query",
                 "--prune-exclude", "dense"]) == 0
    assert changed(tmp_path / "c") == {"encoder.layer.0.attention.self.query.weight"}
    capsys.readouterr()
    assert main([*base, str(tmp_path / "d"), "--prune-exclude", "["]) == 2
    assert "not a valid regular expression" in capsys.readouterr().err
    assert not (tmp_path / "d").exists()


@pytest.mark.parametrize(
    ("name", "pruned"),
    [
        ("bert.encoder.layer.3.output.dense.weight", True),
        ("model.layers.0.mlp.down_proj.weight", True),
        ("model.layers.0.input_layernorm.weight", False),
        ("model.norm.weight", False),
        ("transformer.h.0.ln_2.weight", False),
        ("transformer.wpe.weight", False),
        ("gpt_neox.embed_in.weight", False),
        ("embed_out.weight", False),
        ("lm_head.weight", False),
        ("model.lm_head_extra.weight", True),  # a whole name component, not a prefix
    ],
)
def test_default_exclude_names(name: str, pruned: bool) -> None:
    assert prune_scope()(name) is pruned
    assert prune_scope(exclude=())(name) is True
    assert prune_scope(exclude=DEFAULT_PRUNE_EXCLUDE)(name) is pruned
