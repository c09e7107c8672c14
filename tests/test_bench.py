"""``sparsecodecs bench``: the harness on tiny corpora, its files, and its error handling."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

import sparsecodecs as sc
from sparsecodecs.bench import corpus, harness, peers
from sparsecodecs.cli import main
from sparsecodecs.codecs import Raw

safetensors_numpy = pytest.importorskip("safetensors.numpy")
pytest.importorskip("scipy")

FAST = ["--repeats", "1", "--peers", "nvidia,zstd-3,lz4,scipy"]


def run_bench(out: Path, *args: str) -> int:
    return main(["bench", "--out", str(out), *args])


def load(out: Path) -> dict[str, Any]:
    return json.loads((out / "results.json").read_text())


def cell(results: dict[str, Any], set_name: str, dtype: str, variant: str) -> dict[str, Any]:
    (found,) = [c for c in results["cells"]
                if (c["set"], c["dtype"], c["variant"]) == (set_name, dtype, variant)]
    return found


def write_model(path: Path, **tensors: np.ndarray) -> Path:
    safetensors_numpy.save_file(tensors, str(path))
    return path


@pytest.fixture
def model(tmp_path: Path) -> Path:
    rng = np.random.default_rng(0)
    return write_model(
        tmp_path / "model.safetensors",
        **{
            "layer.weight": (rng.standard_normal((8, 16)) * 0.02).astype(np.float32),
            "layer.bias": np.zeros(16, np.float32),
            "other.weight": (rng.standard_normal((4, 12)) * 0.02).astype(ml_dtypes.bfloat16),
            "position_ids": np.arange(6, dtype=np.int64).reshape(1, 6),
        },
    )


def test_tiny_run_writes_json_markdown_and_chart(tmp_path, capsys):
    out = tmp_path / "results"
    assert run_bench(out, "--tiny", "--dtype", "bf16", *FAST) == 0
    stdout = capsys.readouterr().out
    assert "Effective size, % of dense" in stdout and "0 failure(s)" in stdout
    assert (out / "results.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    md = (out / "results.md").read_text()
    assert "## Cells" in md and "### gaussian bf16 2:4" in md
    results = load(out)
    # sets x (dtypes x float variants + the default quantized cells)
    assert len(results["cells"]) == 2 * (1 * 4 + len(corpus.DEFAULT_QUANT))
    assert {c["dtype"] for c in results["cells"]} == {"bf16", "uint8", "int8", "int4"}
    assert results["failures"] == []
    assert results["machine"]["cores"] >= 1
    for lib in ("python", "numpy", "ml_dtypes", "zstandard", "lz4", "scipy", "zipnn",
                "torch"):
        assert lib in results["versions"]
    assert results["command"].startswith("sparsecodecs bench")
    names = {m["name"] for m in results["methods"]}
    assert {i.name for i in sc.list_codecs() if i.error is None} <= names
    for c in results["cells"]:
        for r in c["results"].values():
            assert r["status"] in ("ok", "n/a", "computed")
            if r["status"] == "ok":
                assert r["verified"] is True and r["encode_mbps"] > 0 and r["decode_mbps"] > 0
    dense, pruned = (cell(results, "gaussian", "bf16", v) for v in ("dense", "2:4"))
    assert dense["results"]["nm"]["status"] == "n/a"
    assert "PatternError" in dense["results"]["nm"]["reason"]
    assert pruned["results"]["nm"]["status"] == "ok"
    assert pruned["results"]["nvidia-2:4"]["status"] == "computed"
    assert 0 < pruned["bound_pct"] < 50 < dense["bound_pct"] < 100
    fixed = {(r["probe"], r["method"]): r for r in results["fixed_cost"]}
    assert len(fixed) == 2 * len(results["methods"])
    assert fixed[("384 float32", "hybrid")]["status"] == "ok"
    assert fixed[("1536 bfloat16", "hybrid")]["verified"] is True
    assert "## Per-frame fixed cost" in md and "## hybrid against ZipNN" in md
    assert "Per-frame fixed cost" in stdout


def test_sizes_are_real_frames_of_the_builtin_corpus(tmp_path):
    out = tmp_path / "r"
    assert run_bench(out, "--tiny", "--dtype", "fp16", "--codecs", "nm,bitmask,raw",
                     "--peers", "none", "--repeats", "1") == 0
    results = load(out)
    (tset,) = [s for s in corpus.builtin_sets("tiny") if s.name == "student-t"]
    variant = corpus.DEFAULT_VARIANTS[3]  # 2:4 + 16 centroids
    c = cell(results, "student-t", "fp16", variant.name)
    for i, (_, base) in enumerate(tset.tensors):
        array, _ = variant.apply(base.astype(np.float16))
        for name in ("nm", "bitmask", "raw"):
            frame = sc.get_codec(name).encode(array)
            assert c["results"][name]["per_tensor_bytes"][i] == len(frame)
            assert c["tensors"][i]["dense_bytes"] == array.nbytes
    assert c["results"]["bitmask"]["bytes"] == sum(c["results"]["bitmask"]["per_tensor_bytes"])


def test_model_run_keeps_dtypes_and_matches_real_frames(tmp_path, model):
    out = tmp_path / "r"
    assert run_bench(out, "--model", str(model), "--dtype", "keep", "--prune", "2:4",
                     "--codecs", "nm,bitmask", "--peers", "zstd-3", "--repeats", "1") == 0
    results = load(out)
    assert [c["variant"] for c in results["cells"]] == ["dense", "2:4"]
    (tset,) = results["corpus"]
    assert [t["name"] for t in tset["tensors"]] == ["layer.weight", "other.weight"]
    assert {s["name"] for s in tset["skipped"]} == {"layer.bias", "position_ids"}
    arrays = safetensors_numpy.load_file(str(model))
    pruned = cell(results, "model", "keep", "2:4")
    assert [t["dtype"] for t in pruned["tensors"]] == ["float32", "bfloat16"]
    for i, name in enumerate(["layer.weight", "other.weight"]):
        array, _ = sc.transforms.prune(arrays[name], "2:4")
        for codec in ("nm", "bitmask"):
            assert pruned["results"][codec]["per_tensor_bytes"][i] == len(
                sc.get_codec(codec).encode(array))
        report = sc.inspect(sc.get_codec("nm").encode(array))
        assert pruned["tensors"][i]["nnz"] == np.count_nonzero(array)
        assert report.frame_bytes == pruned["results"]["nm"]["per_tensor_bytes"][i]


def test_model_folder_of_shards(tmp_path):
    shards = tmp_path / "shards"
    shards.mkdir()
    write_model(shards / "a.safetensors", w1=np.ones((4, 8), np.float16))
    write_model(shards / "b.safetensors", w2=np.ones((8, 4), np.float16))
    tset = corpus.load_model(shards)
    assert [n for n, _ in tset.tensors] == ["w1", "w2"]


def one_line_error(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "{tmp}/missing.safetensors"], "no such file or directory"),
        (["--model", "{tmp}/notes.txt"], "not a readable safetensors file"),
        (["--model", "{tmp}/empty_dir"], "no *.safetensors files"),
        (["--model", "{tmp}/bool.safetensors"], "has dtype BOOL, which sparsecodecs does not"),
        (["--model", "{tmp}/vectors.safetensors"], "no floating-point tensor of rank >= 2"),
        (["--codecs", "nosuch"], "unknown codec 'nosuch'"),
        (["--codecs", "bitmsk"], "did you mean 'bitmask'"),
        (["--peers", "zstd,brotli"], "unknown peer 'brotli'"),
        (["--prune", "5:4"], "--prune '5:4'"),
        (["--prune", "unstructured:2"], "kept fraction in (0, 1]"),
        (["--prune", "magnitude"], "expected n:m"),
        (["--cluster", "0"], "--cluster must be in [1, 65536]"),
        (["--dtype", "fp8"], "--dtype 'fp8': choose from bf16, fp16, fp32, keep"),
        (["--repeats", "0"], "--repeats must be >= 1"),
        (["--quant", "int3"], "'int3' is not KIND or KIND-N:M with KIND one of int8, uint8"),
        (["--quant", "int8-5:4"], "--quant 'int8-5:4': 'int8-5:4'"),
        (["--quant", ","], "--quant needs at least one of int8"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path, capsys, args, message):
    (tmp_path / "notes.txt").write_text("not a model\n" * 10)
    (tmp_path / "empty_dir").mkdir()
    write_model(tmp_path / "bool.safetensors", mask=np.ones((2, 2), bool))
    write_model(tmp_path / "vectors.safetensors", bias=np.ones(4, np.float32))
    out = tmp_path / "out"
    args = [a.format(tmp=tmp_path) for a in args]
    assert run_bench(out, "--tiny", *args) == 2
    assert message in one_line_error(capsys)
    assert not out.exists()


def test_existing_results_need_force(tmp_path, capsys):
    out = tmp_path / "r"
    quick = ["--tiny", "--dtype", "bf16", "--prune", "none", "--codecs", "raw", "--peers", "none"]
    assert run_bench(out, *quick) == 0
    before = (out / "results.json").read_bytes()
    capsys.readouterr()
    assert run_bench(out, *quick) == 2
    assert "pass --force" in one_line_error(capsys)
    assert (out / "results.json").read_bytes() == before
    assert run_bench(out, *quick, "--force") == 0
    assert sorted(p.name for p in out.iterdir()) == ["results.json", "results.md", "results.png"]
    (tmp_path / "file").write_text("x")
    assert run_bench(tmp_path / "file", *quick) == 2
    assert "not a directory" in one_line_error(capsys)


@dataclass(frozen=True, kw_only=True)
class Liar(Raw):
    """Writes valid raw frames of the wrong data: the round trip must catch it."""

    def encode(self, array: np.ndarray) -> bytes:
        return super().encode(np.full_like(array, 1))


@dataclass(frozen=True, kw_only=True)
class Crash(Raw):
    def encode(self, array: np.ndarray) -> bytes:
        raise RuntimeError("boom")


def test_failures_are_shown_and_exit_1(tmp_path, capsys, monkeypatch):
    methods = [harness.Method("liar", "codec", "wrong data", codec=Liar()),
               harness.Method("crash", "codec", "raises", codec=Crash()),
               harness.Method("raw", "codec", "raw", codec=Raw())]
    monkeypatch.setattr(harness, "select_codecs", lambda spec: methods)
    out = tmp_path / "r"
    assert run_bench(out, "--tiny", "--dtype", "fp32", "--prune", "none", "--peers", "none") == 1
    assert "FAILED" in capsys.readouterr().out
    results = load(out)
    c = results["cells"][0]
    assert c["results"]["liar"]["status"] == "FAILED"
    assert c["results"]["liar"]["verified"] is False
    assert c["results"]["liar"]["failures"] == [t["name"] for t in c["tensors"]]
    assert c["results"]["crash"] == {"status": "FAILED", "reason": "RuntimeError: boom",
                                     "verified": False, "failures": ["crash"]}
    assert c["results"]["raw"]["status"] == "ok"
    assert {f["method"] for f in results["failures"]} == {"liar", "crash"}
    assert "## Failures" in (out / "results.md").read_text()


def tensors_of(array: np.ndarray) -> list[harness.Tensor]:
    return [harness.Tensor("t", array, sc.registry.as_bits(array)[0], {})]


@pytest.mark.parametrize("dtype", [ml_dtypes.bfloat16, np.float16, np.float32])
def test_zipnn_peer_round_trip_leaves_the_input_alone(dtype):
    pytest.importorskip("zipnn")
    array = (np.random.default_rng(0).standard_normal((64, 96)) * 0.02).astype(dtype)
    before = array.copy()
    (peer,) = peers.select_peers("zipnn")
    method = harness.Method("zipnn", "peer", "", peer=peer)
    result, _ = harness.run_method(method, tensors_of(array), array.nbytes, 50.0, repeats=2)
    assert result["status"] == "ok" and result["verified"] is True
    assert 0 < result["bytes"] < array.nbytes
    assert np.array_equal(array.view(np.uint8), before.view(np.uint8))


def test_zipnn_is_not_applicable_to_other_dtypes():
    pytest.importorskip("zipnn")
    (peer,) = peers.select_peers("zipnn")
    array = np.ones((4, 4), np.float64)
    result, _ = harness.run_method(harness.Method("zipnn", "peer", "", peer=peer),
                                   tensors_of(array), array.nbytes, 0.0, repeats=1)
    assert result["status"] == "n/a" and "float64" in result["reason"]


def test_missing_peer_is_skipped_with_its_install_hint():
    ghost = peers.Zstd("ghost", "ghost", "not installed", "no_such_module_xyz",
                       "pip install ghost")
    method = harness.Method("ghost", "peer", "", peer=ghost)
    harness.resolve_peers([method])
    assert method.skipped and "pip install ghost" in method.skipped
    result, _ = harness.run_method(method, tensors_of(np.ones((2, 4), np.float32)), 32, 0.0, 1)
    assert result == {"status": "skipped", "reason": method.skipped}
    assert peers.ZIPNN_HINT == "pip install torch==2.13.0 zipnn"


def test_nvidia_2_4_size_is_computed_from_the_layout():
    array, _ = sc.transforms.prune(np.random.default_rng(1).standard_normal((8, 16))
                                   .astype(np.float16), "2:4")
    (peer,) = peers.select_peers("nvidia-2:4")
    result, _ = harness.run_method(harness.Method("n", "peer", "", peer=peer),
                                   tensors_of(array), array.nbytes, 0.0, 1)
    groups = array.size // 4
    assert result["status"] == "computed"
    assert result["bytes"] == groups * 2 * 2 + groups // 2
    assert "encode_mbps" not in result


@pytest.mark.parametrize("fmt", ["scipy-csr", "scipy-csc"])
def test_scipy_size_is_what_scipy_stores(fmt):
    import scipy.sparse

    array, _ = sc.transforms.prune(np.random.default_rng(2).standard_normal((10, 12))
                                   .astype(np.float32), None, density=0.3)
    (peer,) = peers.select_peers(fmt)
    result, _ = harness.run_method(harness.Method(fmt, "peer", "", peer=peer),
                                   tensors_of(array), array.nbytes, 0.0, 1)
    kind = scipy.sparse.csr_array if fmt == "scipy-csr" else scipy.sparse.csc_array
    m = kind(array.view(np.uint32))
    assert result["bytes"] == m.data.nbytes + m.indices.nbytes + m.indptr.nbytes
    assert result["verified"] is True


def test_peer_selection():
    assert [p.name for p in peers.select_peers("zstd")] == ["zstd-3", "zstd-19"]
    assert [p.name for p in peers.select_peers("lz4, nvidia")] == ["nvidia-2:4", "lz4"]
    assert peers.select_peers("none") == []
    assert len(peers.select_peers(None)) == len(peers.PEERS)


def test_variants_from_options():
    assert corpus.parse_variants(None, None) == list(corpus.DEFAULT_VARIANTS)
    assert [v.name for v in corpus.parse_variants("1:4", 8)] == ["dense", "1:4 + 8 centroids"]
    assert [v.name for v in corpus.parse_variants("unstructured:0.3", None)] == [
        "dense", "unstructured 30%"]
    assert [v.name for v in corpus.parse_variants("none", None)] == ["dense"]
    assert corpus.parse_dtypes("fp32, bf16,fp32") == ["fp32", "bf16"]


def test_builtin_corpus_is_seeded_and_subsets_agree():
    full = {s.name: dict(s.tensors) for s in corpus.builtin_sets("full")}
    default = {s.name: dict(s.tensors) for s in corpus.builtin_sets("default")}
    for name, tensors in default.items():
        for key, array in tensors.items():
            assert np.array_equal(array, full[name][key])
    assert set(full["gaussian"]) == {"384x384", "1536x384", "384x1536", "1024x4096"}
    if corpus.minilm_path() is not None:
        assert len(full["minilm"]) > len(default["minilm"]) >= 1
        assert all(a.ndim == 2 for a in full["minilm"].values())


def test_quant_options():
    names = [(v.quant_dtype, v.name) for v in corpus.parse_quant(None)]
    assert names == [("uint8", "asym 2:4"), ("int8", "sym dense"), ("int8", "sym 2:4"),
                     ("int4", "sym dense")]
    assert corpus.parse_quant(None, default=False) == []
    assert corpus.parse_quant("none") == []
    (v,) = corpus.parse_quant("uint4-1:4, uint4-1:4")
    assert (v.quant, v.pattern, v.name) == ((4, "asymmetric"), (1, 4), "asym 1:4")


def test_quantized_cells_are_real_frames_with_their_bound(tmp_path):
    from sparsecodecs.bench.entropy import h0_bits, layout_bits

    out = tmp_path / "r"
    assert run_bench(out, "--tiny", "--dtype", "fp32", "--prune", "none", "--quant",
                     "uint8-2:4,int8,int8-2:4,int4", "--codecs", "raw,hybrid",
                     "--peers", "nvidia,zstd-19,scipy", "--repeats", "1") == 0
    results = load(out)
    labels = [(c["set"], c["dtype"], c["variant"]) for c in results["cells"]]
    assert labels[:5] == [("gaussian", "fp32", "dense"), ("gaussian", "uint8", "asym 2:4"),
                          ("gaussian", "int8", "sym dense"), ("gaussian", "int8", "sym 2:4"),
                          ("gaussian", "int4", "sym dense")]
    assert results["failures"] == []
    (tset,) = [s for s in corpus.builtin_sets("tiny") if s.name == "gaussian"]
    for variant in corpus.parse_quant(None):
        c = cell(results, "gaussian", variant.quant_dtype, variant.name)
        bound_bits = 0.0
        for i, (_, base) in enumerate(tset.tensors):
            q, info, fill = variant.transform(base)
            assert q.dtype.name == variant.quant_dtype
            assert info["quantize"]["axis"] == 0 and info["quantize"]["channels"] == q.shape[0]
            assert c["tensors"][i]["dense_bytes"] == (q.size if q.dtype.itemsize == 1
                                                      and variant.quant[0] == 8 else q.size // 2)
            frame = sc.get_codec("hybrid").encode(q)
            assert c["results"]["hybrid"]["per_tensor_bytes"][i] == len(frame)
            bits = q.view(np.uint8)
            if variant.pattern is None:  # dense: H0 of every value (nibbles for int4)
                bound_bits += h0_bits(bits)
            else:  # the 2:4 pattern around the fill (the row's zero point) + the kept values
                kept = bits != fill
                bound_bits += layout_bits(kept.astype(np.uint8))[1] + h0_bits(bits[kept])
        assert c["bound_bytes"] == pytest.approx(bound_bits / 8)
    sym24 = cell(results, "gaussian", "int8", "sym 2:4")
    assert sym24["results"]["nvidia-2:4"]["effective_pct"] == pytest.approx(62.5)
    assert sym24["density"] <= 0.5
    asym24 = cell(results, "gaussian", "uint8", "asym 2:4")
    assert asym24["results"]["nvidia-2:4"]["status"] == "n/a"  # pruned slots hold zero points
    assert asym24["density"] <= 0.5 and asym24["bound_pct"] < 70
    int4 = cell(results, "gaussian", "int4", "sym dense")
    assert int4["results"]["scipy-csr"]["status"] == "n/a"
    # zstd saw the packed bytes, as GPTQ/AWQ store them
    import zstandard

    variant = corpus.parse_quant("int4")[0]
    q, _, _ = variant.transform(tset.tensors[0][1])
    packed = sc.transforms.pack_int4(q).tobytes()
    assert int4["results"]["zstd-19"]["per_tensor_bytes"][0] == len(
        zstandard.ZstdCompressor(level=19).compress(packed))


def test_the_products_section_times_every_compute_codec_against_torch():
    pytest.importorskip("torch")
    from sparsecodecs.bench.products import products_section
    from sparsecodecs.bench.report import _products_md

    section = products_section(shape="128x256", stack_mib=2, repeat=1)
    assert section["status"] == "ok"
    rows = section["rows"]
    assert [(r["codec"], r["batch"], r["x"]) for r in rows] == [
        ("nm", 1, "float32"), ("window", 1, "float32"), ("hybrid/256", 1, "float32"),
        ("bitmask@50%", 1, "float32"), ("csr@50%", 1, "float32"),
        ("hybrid/256@dense", 1, "float32"), ("nm", 8, "float32"), ("nm", 8, "bfloat16"),
        ("nm", 64, "float32"), ("nm", 64, "bfloat16")]
    for r in rows:  # 2 MiB of 64 KiB layers: 32 of them, 2 distinct
        assert r["layers"] == 32 and r["distinct"] == 2
        assert r["ms_ours"] > 0 and r["ratio"] == pytest.approx(
            r["ms_ours"] / min(r["ms_torch_bf16"], r["ms_torch_f32"]))
    window = next(r for r in rows if r["codec"] == "window")
    assert window["stack_bytes_ours"] < 0.45 * window["stack_bytes_bf16"]
    # the other weights: CSR of 50% (a 1-byte index and a value a kept entry), dense hybrid
    csr = next(r for r in rows if r["codec"] == "csr@50%")
    assert 0.7 < csr["stack_bytes_ours"] / csr["stack_bytes_bf16"] < 0.8
    dense = next(r for r in rows if r["codec"] == "hybrid/256@dense")
    assert 0.6 < dense["stack_bytes_ours"] / dense["stack_bytes_bf16"] < 1.0
    text = "\n".join(_products_md(section))
    assert "## Products on compressed weights" in text and "| 128x256 | window | 1 |" in text
    assert "| 128x256 | nm | 64 | bfloat16 |" in text
    skipped = "\n".join(_products_md({"status": "skipped", "reason": "no torch"}))
    assert skipped.endswith("Skipped: no torch")


def test_the_stack_runs_weights_are_what_their_names_say():
    from sparsecodecs.bench.products import STACK_OTHERS, stack_codec, weight

    assert stack_codec("nm") == ("nm", "2:4") and stack_codec("csr@50%") == ("csr", "50%")
    assert {stack_codec(name)[1] for name in STACK_OTHERS} == {"50%", "dense"}
    zeros = {kind: float((weight((64, 64), kind) == 0).mean()) for kind in ("2:4", "50%", "dense")}
    assert zeros["2:4"] == 0.5 and zeros["50%"] == 0.5 and zeros["dense"] < 0.01
    groups = (weight((64, 64), "50%").reshape(-1, 4) != 0).sum(axis=1)
    assert (groups != 2).any()  # unstructured: not every group of four keeps two
    with pytest.raises(ValueError, match="'30%'"):
        weight((4, 4), "30%")


def test_the_products_section_steps_aside_when_memory_is_short(monkeypatch):
    pytest.importorskip("torch")
    from sparsecodecs.bench import products

    monkeypatch.setattr(products, "_available_mib", lambda: 600)  # < 4 x the 256 MiB floor
    section = products.products_section()
    assert section["status"] == "skipped" and "600 MiB of memory available" in section["reason"]
