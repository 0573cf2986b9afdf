"""Compressing the embedding: pruned student vocabularies and low-rank tables."""

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from click.testing import CliRunner

from edgernn.bundle.manifest import manifest_text
from edgernn.checkpoint import load_checkpoint, save_checkpoint
from edgernn.cli import main
from edgernn.config import ModelSpec, TrainConfig, parameter_count
from edgernn.data import TaskData, encode, fit_meta, load_raw
from edgernn.data.vocab import UNK_ID
from edgernn.distill import StudentConfig, student_spec, student_vocab
from edgernn.errors import EdgeRNNError
from edgernn.models import build_model
from edgernn.models.embedding import HashedEmbedding, LowRankEmbedding, low_rank_init
from edgernn.runtime import Runtime
from edgernn.train import train

QUICK = TrainConfig(epochs=1, batch_size=16, progress=False)


def test_a_low_rank_spec_counts_and_stores_its_parameters():
    spec = ModelSpec(task="classify", vocab_size=500, embed=16, embed_rank=4, hidden=8)
    model = build_model(spec)
    assert isinstance(model.encoder.embedding, LowRankEmbedding)
    assert parameter_count(spec) == sum(p.numel() for p in model.parameters())
    assert spec.to_dict()["embed_rank"] == 4
    # A model without it writes no such field, so older edgernn versions still read it.
    assert "embed_rank" not in ModelSpec(task="classify", vocab_size=50).to_dict()


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"vocab_size": 50, "embed": 8, "embed_rank": 9}, "embed_rank must be in [1, embed=8]"),
        ({"input_size": 3, "embed_rank": 2}, "numeric inputs have no embedding"),
    ],
)
def test_an_impossible_rank_is_refused(values, fragment):
    with pytest.raises(EdgeRNNError, match=fragment.replace("[", r"\[")):
        ModelSpec(task="classify", **values)


def test_svd_start_is_exact_at_full_rank_and_optimal_below():
    table = torch.randn(40, 8)
    full = LowRankEmbedding(40, 8, 8)
    low_rank_init(full, table)
    ids = torch.arange(40)
    assert torch.allclose(full(ids), table, atol=1e-5)
    low = LowRankEmbedding(40, 3, 8)
    low_rank_init(low, table)
    # Eckart-Young: the best rank-3 approximation leaves exactly the other singular values.
    tail = torch.linalg.svdvals(table)[3:].square().sum()
    assert torch.allclose((low(ids) - table).square().sum(), tail, rtol=1e-4)


def test_a_hashed_embedding_gives_every_token_its_own_pair_of_rows():
    spec = ModelSpec(task="classify", vocab_size=3000, embed=4, embed_buckets=111, hidden=8)
    model = build_model(spec)
    embedding = model.encoder.embedding
    assert isinstance(embedding, HashedEmbedding)
    assert parameter_count(spec) == sum(p.numel() for p in model.parameters()) < 3000 * 4
    m, n = embedding.first.num_embeddings, embedding.second.num_embeddings
    assert (m, n) == (56, 55)  # consecutive sizes: coprime, so m * n = 3080 distinct pairs
    ids = torch.arange(spec.vocab_size)
    assert len(set(zip((ids % m).tolist(), (ids % n).tolist(), strict=True))) == 3000
    vectors = embedding(ids)
    assert vectors[0].abs().sum() == 0  # <pad>
    assert len(torch.unique(vectors[1:], dim=0)) == 2999


def _data(task_file, task="classify") -> TaskData:
    raw = load_raw(str(task_file), task)
    return encode(raw, fit_meta(raw), 512)


def test_the_student_keeps_the_most_frequent_tokens(classify_csv):
    data = _data(classify_csv)
    vocab = student_vocab(data, StudentConfig(vocab_size=7))
    ids = torch.cat([x for x, _ in data.splits["train"]])
    counts = torch.bincount(ids, minlength=len(data.meta.vocab))
    kept = vocab.kept.tolist()
    assert kept[:4] == [0, 1, 2, 3]
    dropped = sorted(set(range(4, len(counts))) - set(kept))
    assert min(counts[kept[4:]]) >= max(counts[dropped])
    assert vocab.ids(torch.tensor(dropped)).eq(UNK_ID).all()
    assert vocab.ids(torch.tensor(kept)).tolist() == list(range(7))
    assert vocab.coverage == pytest.approx(float(counts[kept[4:]].sum() / counts[4:].sum()))


def test_a_coverage_target_keeps_as_few_tokens_as_reach_it(classify_csv):
    data = _data(classify_csv)
    vocab = student_vocab(data, StudentConfig(vocab_coverage=0.6))
    smaller = student_vocab(data, StudentConfig(vocab_size=len(vocab) - 1))
    assert vocab.coverage >= 0.6 > smaller.coverage
    assert student_vocab(data, StudentConfig(vocab_size=10_000)) is None  # already that small


def test_vocabulary_pruning_is_refused_where_it_cannot_apply(lm_txt):
    with pytest.raises(EdgeRNNError, match="not to a lm model"):
        student_vocab(_data(lm_txt, "lm"), StudentConfig(vocab_size=8))
    with pytest.raises(EdgeRNNError, match="not both"):
        StudentConfig(vocab_size=8, vocab_coverage=0.9)


def test_a_student_spec_takes_the_pruned_vocabulary_and_rank():
    teacher = ModelSpec(task="classify", vocab_size=300, embed=16, hidden=16, num_outputs=2)
    spec = student_spec(teacher, StudentConfig(hidden=8, embed=16, embed_rank=4), 40)
    assert (spec.vocab_size, spec.embed_rank, spec.embed) == (40, 4, 16)


def _compress(data, tmp_path, *embedding):
    teacher = train(str(data), "classify", QUICK, hidden=16, embed=16)
    path = save_checkpoint(teacher, tmp_path / "teacher.pt")
    flags = ["--student-hidden", "8", *embedding]
    flags += ["--epochs", "1", "--quiet", "--tolerance", "inf", "--json"]
    out = tmp_path / "bundle"
    result = CliRunner().invoke(main, ["compress", str(path), *flags, "-o", str(out)])
    assert result.exit_code == 0, result.output
    return teacher, out, json.loads(result.output.strip().splitlines()[-1])


@pytest.fixture
def compressed(classify_csv, tmp_path):
    return _compress(classify_csv, tmp_path, "--vocab-size", "7", "--embed-rank", "4")


def _onnx_equals_pytorch(bundle, checkpoint, ids):
    expected = checkpoint.build()(ids, torch.tensor([ids.size(1)])).detach().numpy()
    session = ort.InferenceSession(str(bundle / "model.onnx"))
    got = session.run(None, {"inputs": ids.numpy(), "lengths": np.array([ids.size(1)])})[0]
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.slow
def test_the_bundle_reads_the_students_vocabulary(compressed):
    teacher, out, summary = compressed
    student = load_checkpoint(out / "student.pt")
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["vocab"] == student.meta.vocab and len(student.meta.vocab) == 7
    assert (student.spec.vocab_size, student.spec.embed_rank) == (7, 4)
    assert student.compression["vocabulary"]["teacher"] == len(teacher.meta.vocab)
    notes = student.compression["notes"]
    assert any("vocabulary: the student keeps 7" in note for note in notes)
    assert summary["ratios"]["params"] < 1

    # A dropped word is an unknown word: the runtime maps both to <unk> alike.
    dropped = [w for w in teacher.meta.vocab[4:] if w not in student.meta.vocab]
    runtime = Runtime(out)
    a, b = runtime.predict([f"good {dropped[0]} film", "good zzzunseen film"])
    assert a["probabilities"] == b["probabilities"]

    # The graph is the low-rank student: ONNX fp32 equals PyTorch on the same ids.
    _onnx_equals_pytorch(out, student, torch.tensor([[4, 5, UNK_ID, 6]]))


@pytest.mark.slow
def test_a_hashed_student_exports_and_runs_in_int8(classify_csv, tmp_path):
    flags = ("--embed-buckets", "9", "--embed-bits", "4", "--student-embed", "16")
    _, out, _ = _compress(classify_csv, tmp_path, *flags)
    student = load_checkpoint(out / "student.pt")
    assert student.spec.embed_buckets == 9 and student.compression["embed_bits"] == 4
    _onnx_equals_pytorch(out, student, torch.tensor([[4, 5, 9, 6]]))
    assert "Mod" in {node.op_type for node in onnx.load(out / "model.onnx").graph.node}
    manifest = json.loads((out / "manifest.json").read_text())
    int8 = next(entry for entry in manifest["files"] if entry["path"] == "model.int8.onnx")
    tables = int8["quantization"]["embedding_tables"]
    assert [table["bits"] for table in tables.values()] == [4, 4]  # both hash tables
    assert "GatherBlockQuantized" in int8["ops"]["com.microsoft"]
    assert Runtime(out).predict(["good film"])[0]["label"] in ("pos", "neg")


def test_a_manifest_writes_its_vocabulary_on_one_line():
    vocab = ["<pad>", "<unk>", "<bos>", "<eos>", 'say "hi"', "line\nbreak", "@x", "é"]
    manifest = {"vocab": vocab, "labels": ["a", "b"], "files": [{"path": "model.onnx"}]}
    text = manifest_text(manifest)
    assert json.loads(text) == manifest
    assert json.dumps(vocab, ensure_ascii=False) in text.splitlines()[-2]  # one line
    assert len(text) < len(json.dumps(manifest, indent=2, ensure_ascii=False))


@pytest.mark.parametrize("kind", [{"embed_rank": 8}, {"embed_buckets": 2001}])
def test_compressed_embeddings_run_under_pytorch_int8(kind):
    from edgernn.quantize import apply_plan, plan_quantization

    # Wide enough that int8 shrinks the tables, so they are quantized (and wrapped) too.
    spec = ModelSpec(task="classify", vocab_size=4000, embed=32, hidden=8, **kind)
    model = build_model(spec).eval()
    plan = plan_quantization(model)
    assert any("embedding" in name for name in plan.int8), plan.int8
    ids, lengths = torch.randint(4, 4000, (3, 5)), torch.tensor([5, 3, 1])
    int8 = apply_plan(model, plan)(ids, lengths)
    assert torch.allclose(int8, model(ids, lengths), atol=0.1)
