import copy
import math

import pytest
import torch
from torch import nn

from edgernn.checkpoint import Checkpoint, load_checkpoint, save_checkpoint
from edgernn.config import ModelSpec, TrainConfig
from edgernn.data import collate, encode, fit_meta, load_raw
from edgernn.errors import EdgeRNNError
from edgernn.evaluate import evaluate
from edgernn.models import build_model
from edgernn.prune import (
    PruneConfig,
    agp_sparsity,
    count_nonzero,
    prune,
    select_units,
    shrink_hidden_units,
    sparsity_report,
    unit_groups,
    unit_importance,
    weight_targets,
)
from edgernn.prune.importance import activation_importance
from edgernn.prune.units import GATES, tied_groups
from edgernn.prune.unstructured import prune_unstructured
from edgernn.train import build_spec, fit

HIDDEN, VOCAB, FEATURES = 8, 20, 3


def _spec(task, cell="lstm", bidirectional=False, layers=2, **extra) -> ModelSpec:
    sizes = {"input_size": FEATURES} if task == "regress" else {"vocab_size": VOCAB}
    if task == "seq2seq":
        extra.setdefault("attention", "bahdanau")
    outputs = VOCAB if task in ("lm", "seq2seq") else 3
    return ModelSpec(
        task, cell=cell, hidden=HIDDEN, layers=layers, bidirectional=bidirectional, embed=6,
        num_outputs=outputs, **sizes, **extra,
    )  # fmt: skip


def _model(spec: ModelSpec, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return build_model(spec).eval()


def _inputs(spec: ModelSpec, batch: int = 5, seed: int = 1) -> tuple:
    generator = torch.Generator().manual_seed(seed)
    lengths = torch.tensor([12, 3, 7, 1, 9][:batch])
    if spec.input_size:
        inputs = torch.randn(batch, 12, FEATURES, generator=generator)
    else:
        inputs = torch.randint(4, VOCAB, (batch, 12), generator=generator)
    if spec.task != "seq2seq":
        return inputs, lengths
    return inputs, lengths, torch.randint(4, VOCAB, (batch, 6), generator=generator)


def _distinct_keep(spec: ModelSpec) -> dict:
    """Keep 5 of 8 units, a different set for every independent choice (tied groups share)."""
    base = torch.tensor([0, 1, 3, 4, 6])  # no rotation maps this set onto itself
    keep = {}
    for shift, tie in enumerate(tied_groups(spec)):
        keep |= dict.fromkeys(tie, ((base + shift) % spec.hidden).sort().values)
    return keep


def _masked_reference(model: nn.Module, keep: dict) -> nn.Module:
    """``model`` with every removed unit forced to exactly zero, by zeroing only rows.

    RNN: h = tanh(0) = 0. LSTM: i, f, o = sigmoid(0) = 1/2 and g = tanh(0) = 0, so
    c' = c/2 + 0 stays 0 from c0 = 0 and h = o * tanh(c) = 0. GRU: n = tanh(0 + r * 0) = 0
    and z = 1/2, so h' = h/2 stays 0 only from h0 = 0: the encoder starts from zeros, and
    the seq2seq decoder starts from tanh(bridge), so the bridge rows of removed decoder units
    are zeroed too (for LSTM both h0 and c0 come out 0). Bahdanau scoring unit / Luong
    attentional unit: zero rows give tanh(0) = 0. A unit that is always 0 adds nothing through
    any column that reads it, so the reference equals the model with those units cut out.
    """
    reference, spec = copy.deepcopy(model), model.spec
    gates = GATES[spec.cell]
    with torch.no_grad():
        for name, kept in keep.items():
            dropped = torch.tensor([i for i in range(spec.hidden) if i not in set(kept.tolist())])
            if len(dropped) == 0:
                continue
            if name in ("attention", "combine"):
                for weight in _aux_rows(reference, name):
                    weight[dropped] = 0
                continue
            stack, layer = name.rsplit(".", 1)
            rnn = reference.get_submodule(stack)
            rows = torch.cat([dropped + g * spec.hidden for g in range(gates)])
            for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(rnn, f"{kind}_{layer}")[rows] = 0
            if stack == "decoder":
                for bridge in reference.bridge:
                    bridge.weight[dropped] = 0
                    bridge.bias[dropped] = 0
    return reference


def _aux_rows(model: nn.Module, name: str) -> list:
    if name == "combine":
        return [model.combine.weight, model.combine.bias]
    attention = model.attention
    return [attention.query_proj.weight, attention.key_proj.weight, attention.key_proj.bias]


EXACT_MATRIX = [
    (task, cell, bidirectional, {})
    for task in ("classify", "tag", "lm", "regress")
    for cell in ("rnn", "lstm", "gru")
    for bidirectional in (False, True)
    if not (task == "lm" and bidirectional)
] + [
    ("classify", "gru", True, {"pooling": "mean"}),
    ("classify", "lstm", True, {"pooling": "max"}),
] + [
    ("seq2seq", cell, bidirectional, {"attention": attention})
    for cell in ("rnn", "lstm", "gru")
    for bidirectional in (False, True)
    for attention in ("bahdanau", "luong")
]  # fmt: skip


@pytest.mark.parametrize("task, cell, bidirectional, extra", EXACT_MATRIX)
def test_shrinking_equals_masking_the_removed_units(task, cell, bidirectional, extra):
    spec = _spec(task, cell, bidirectional, **extra)
    model = _model(spec)
    before = copy.deepcopy(model.state_dict())
    keep = _distinct_keep(spec)  # distinct sets: a mix-up of layers or directions cannot pass
    small = shrink_hidden_units(model, keep)
    assert small.spec == ModelSpec(**(spec.to_dict() | {"hidden": 5}))
    inputs = _inputs(spec)
    with torch.no_grad():
        expected = _masked_reference(model, keep)(*inputs)
        full = model(*inputs)
        got = small(*inputs)
    assert got.shape == expected.shape
    assert torch.allclose(got, expected, atol=1e-5, rtol=0)
    assert not torch.allclose(full, expected, atol=1e-3)  # the pruning did change something
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_every_layer_and_direction_chooses_its_own_units():
    spec = _spec("tag", "lstm", bidirectional=True)
    assert tied_groups(spec) == [[name] for name in unit_groups(spec)]
    seq = _spec("seq2seq", "gru", bidirectional=True, attention="luong")
    assert tied_groups(seq) == [
        ["encoder.rnn.l0", "encoder.rnn.l1"],
        ["encoder.rnn.l0_reverse", "encoder.rnn.l1_reverse"],
        ["decoder.l0", "decoder.l1"],
        ["combine"],
    ]
    generator = torch.Generator().manual_seed(0)
    scores = {name: torch.rand(HIDDEN, generator=generator) for name in unit_groups(seq)}
    chosen = select_units(seq, scores, 4)
    summed = scores["decoder.l0"] + scores["decoder.l1"]
    assert chosen["decoder.l1"].tolist() == sorted(summed.topk(4).indices.tolist())


def test_half_the_units_leaves_a_quarter_of_the_recurrent_weights():
    spec = ModelSpec("classify", hidden=16, layers=2, bidirectional=True, vocab_size=VOCAB)
    model = _model(spec)
    small = prune(model, PruneConfig(amount=0.5, mode="structured"))
    assert small.spec.hidden == 8
    names = [n for n, _ in model.named_parameters() if "weight_hh" in n]
    params, small_params = dict(model.named_parameters()), dict(small.named_parameters())
    assert len(names) == 4
    assert all(params[n].numel() == 4 * small_params[n].numel() for n in names)


def test_norm_importance_removes_the_weakest_units_first():
    spec = _spec("classify", "gru", bidirectional=True)
    model = _model(spec)
    with torch.no_grad():
        model.encoder.rnn.weight_hh_l1_reverse.mul_(1e-3)
        model.encoder.rnn.weight_ih_l1_reverse[[2, 2 + HIDDEN, 2 + 2 * HIDDEN]] = 0
        model.encoder.rnn.weight_hh_l1_reverse[:, 2] = 0
    scores = unit_importance(model, "norm")
    assert scores["encoder.rnn.l1_reverse"].argmin() == 2
    small = shrink_hidden_units(model, HIDDEN - 1)
    kept = select_units(spec, scores, HIDDEN - 1)["encoder.rnn.l1_reverse"]
    assert 2 not in kept.tolist() and small.spec.hidden == HIDDEN - 1


@pytest.fixture
def tag_data(tag_conll):
    raw = load_raw(str(tag_conll), "tag")
    return encode(raw, fit_meta(raw), 64)


@pytest.fixture
def seq2seq_data(seq2seq_tsv):
    raw = load_raw(str(seq2seq_tsv), "seq2seq")
    return encode(raw, fit_meta(raw), 64)


def _for_data(task, data, **choices) -> nn.Module:
    spec = build_spec(task, data.meta, hidden=HIDDEN, embed=6, **choices)
    return _model(spec)


def test_activation_importance_is_mean_absolute_output(tag_data):
    model = _for_data("tag", tag_data, bidirectional=True, layers=2, cell="gru")
    with torch.no_grad():  # a unit whose rows are all zero never activates
        rnn = model.encoder.rnn
        for kind in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(rnn, f"{kind}_l0")[[3, 3 + HIDDEN, 3 + 2 * HIDDEN]] = 0
    scores = activation_importance(model, tag_data)
    batch = collate(tag_data.splits["train"][:512], "tag")
    with torch.no_grad():
        outputs, _ = model.encoder(batch.inputs, batch.lengths)
    valid = torch.arange(outputs.size(1))[None] < batch.lengths[:, None]
    expected = outputs[valid].abs().mean(0)
    top = torch.cat([scores["encoder.rnn.l1"], scores["encoder.rnn.l1_reverse"]])
    assert torch.allclose(top, expected, atol=1e-5)
    assert scores["encoder.rnn.l0"][3] == 0
    kept = select_units(model.spec, unit_importance(model, "activation", tag_data), HIDDEN - 1)
    assert 3 not in kept["encoder.rnn.l0"].tolist()


def test_activation_importance_covers_the_decoder(seq2seq_data):
    model = _for_data("seq2seq", seq2seq_data, cell="lstm", layers=2, attention="luong")
    scores = unit_importance(model, "activation", seq2seq_data)
    assert set(scores) == set(unit_groups(model.spec))
    assert all(s.shape == (HIDDEN,) and (s >= 0).all() for s in scores.values())
    assert all(scores[f"decoder.l{layer}"].max() > 0 for layer in range(2))


def test_gradual_structured_pruning_with_fine_tuning(tag_data, tmp_path):
    model = _for_data("tag", tag_data, bidirectional=True, cell="lstm")
    before = copy.deepcopy(model.state_dict())
    config = PruneConfig(amount=0.5, steps=2, epochs=1, importance="activation")
    small = prune(model, config, tag_data)
    assert small.spec.hidden == HIDDEN // 2 and not small.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    scores = evaluate(small, tag_data.splits["test"], tag_data.meta)
    assert all(math.isfinite(v) for v in scores.values())
    path = save_checkpoint(
        Checkpoint(small.spec, tag_data.meta, small.state_dict()), tmp_path / "s.pt"
    )
    loaded = load_checkpoint(path).build()
    assert loaded.spec.hidden == HIDDEN // 2
    batch = collate(tag_data.splits["test"], "tag")
    assert torch.equal(loaded(batch.inputs, batch.lengths), small(batch.inputs, batch.lengths))


def test_seq2seq_structured_pruning_fine_tunes(seq2seq_data):
    model = _for_data("seq2seq", seq2seq_data, cell="gru", bidirectional=True)
    small = prune(model, PruneConfig(amount=0.25, schedule="one-shot", epochs=1), seq2seq_data)
    assert small.spec.hidden == 6
    assert small.decoder.hidden_size == 6 and small.bridge[0].weight.shape == (6, 12)
    scores = evaluate(small, seq2seq_data.splits["test"], seq2seq_data.meta)
    assert all(math.isfinite(v) for v in scores.values())


def test_agp_schedule_follows_the_cubic_formula():
    # s_t = s_f + (s_i - s_f) (1 - t / n)^3, worked by hand for n = 4, s_f = 0.8, s_i = 0
    assert [agp_sparsity(t, 4, 0.8) for t in range(5)] == pytest.approx(
        [0.0, 0.4625, 0.7, 0.7875, 0.8]
    )
    assert agp_sparsity(1, 2, 0.9, initial=0.1) == pytest.approx(0.8)  # 0.9 - 0.8 / 8
    with pytest.raises(ValueError):
        agp_sparsity(5, 4, 0.8)


@pytest.mark.parametrize("task, extra", [("classify", {}), ("seq2seq", {"attention": "luong"})])
def test_unstructured_reaches_the_target_per_tensor(task, extra):
    spec = _spec(task, "lstm", bidirectional=True, **extra)
    model = _model(spec)
    before = copy.deepcopy(model.state_dict())
    sparse = prune(model, PruneConfig(amount=0.8, mode="unstructured"))
    state = sparse.state_dict()
    assert list(state) == list(before)  # masks folded in: no weight_orig / weight_mask
    assert all(not module._forward_pre_hooks for module in sparse.modules())
    report = sparsity_report(sparse)
    targets = {f"{m}.{p}" for m, p in weight_targets(model, ("recurrent", "input", "linear"))}
    assert any("weight_hh" in t for t in targets) and "encoder.embedding.weight" not in targets
    for name, tensor in state.items():
        if name in targets:
            assert int((tensor == 0).sum()) == round(0.8 * tensor.numel()), name
            assert report[name] == pytest.approx(round(0.8 * tensor.numel()) / tensor.numel())
        else:  # biases and embeddings untouched
            assert torch.equal(tensor, before[name]), name
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    total = sum(t.numel() for t in state.values())
    zeros = sum(int((state[name] == 0).sum()) for name in targets)
    padding_rows = sum(int((t == 0).sum()) for n, t in state.items() if n not in targets)
    assert count_nonzero(sparse) == total - zeros - padding_rows


def test_fine_tuning_keeps_pruned_weights_at_zero(classify_csv):
    raw = load_raw(str(classify_csv), "classify")
    data = encode(raw, fit_meta(raw), 64)
    model = _model(build_spec("classify", data.meta, hidden=HIDDEN, embed=6, bidirectional=True))
    before = copy.deepcopy(model.state_dict())
    config = PruneConfig(amount=0.6, mode="unstructured", schedule="agp", steps=3, epochs=1)
    zeros_after_each_step = []

    def spy_finetune(current):  # what prune's fine-tuning does, in batches of 8 (tiny data)
        tuned = fit(current, data, TrainConfig(epochs=1, batch_size=8, progress=False))
        zeros_after_each_step.append({k: v == 0 for k, v in sparsity_tensors(tuned).items()})
        return tuned

    sparsities = [agp_sparsity(t, 3, 0.6) for t in (1, 2, 3)]
    sparse = prune_unstructured(model, config, sparsities, spy_finetune)
    final = sparse.state_dict()
    for earlier, later in zip(zeros_after_each_step, zeros_after_each_step[1:], strict=False):
        assert all((later[k] | ~earlier[k]).all() for k in earlier)  # zeros stay zero
    for name, zero in zeros_after_each_step[-1].items():
        assert torch.equal(final[name] == 0, zero)
        assert int(zero.sum()) == round(0.6 * zero.numel())
    untuned = prune(model, PruneConfig(amount=0.6, mode="unstructured"))  # no data
    weights = [n for n in final if n in zeros_after_each_step[-1]]
    assert any(not torch.equal(final[n], untuned.state_dict()[n]) for n in weights)
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    # through prune(): the same masks whatever the fine-tuning did to the other weights
    tuned = prune(model, PruneConfig(amount=0.6, mode="unstructured", schedule="one-shot",
                                     epochs=1), data)  # fmt: skip
    for name in weights:
        assert torch.equal(tuned.state_dict()[name] == 0, untuned.state_dict()[name] == 0)


def sparsity_tensors(model: nn.Module) -> dict:
    """Masked weights as the forward pass sees them, by parameter name."""
    found = {}
    for module_name, module in model.named_modules():
        for name, _ in module.named_buffers(recurse=False):
            if name.endswith("_mask"):
                base = name.removesuffix("_mask")
                found[f"{module_name}.{base}"] = getattr(module, base).detach().clone()
    return found


def test_gradual_without_retraining_equals_one_shot():
    model = _model(_spec("tag", "gru", bidirectional=True))
    config = PruneConfig(amount=0.8, mode="unstructured")
    ramp = prune_unstructured(model, config, [agp_sparsity(t, 4, 0.8) for t in (1, 2, 3, 4)], None)
    once = prune_unstructured(model, config, [0.8], None)
    assert all(torch.equal(v, once.state_dict()[k]) for k, v in ramp.state_dict().items())


def test_unstructured_prunes_own_modules():
    model = nn.Sequential(nn.Linear(4, 10), nn.ReLU(), nn.Linear(10, 2))
    sparse = prune(model, PruneConfig(amount=0.5, mode="unstructured"))
    assert sparsity_report(sparse) == pytest.approx(
        {"0.weight": 0.5, "0.bias": 0.0, "2.weight": 0.5, "2.bias": 0.0}
    )


@pytest.mark.parametrize(
    "values, message",
    [
        ({"amount": 1.0}, "amount must be in"),
        ({"amount": -0.1}, "amount must be in"),
        ({"mode": "channels"}, "unknown prune mode"),
        ({"schedule": "linear"}, "unknown prune schedule"),
        ({"importance": "taylor"}, "unknown prune importance"),
        ({"steps": 0}, "steps must be at least 1"),
        ({"epochs": -1}, "epochs must be at least 0"),
        ({"lr": 0.0}, "learning rate must be positive"),
        ({"targets": ("bias",)}, "unknown prune target"),
        ({"targets": "linear"}, "non-empty tuple"),
        ({"mode": "unstructured", "importance": "activation"}, "only applies to structured"),
    ],
)
def test_config_rejects_bad_values(values, message):
    with pytest.raises(EdgeRNNError, match=message):
        PruneConfig(**values)


def test_impossible_requests_fail_before_any_work(tag_data, monkeypatch):
    import edgernn.prune.stage as stage

    monkeypatch.setattr(stage, "shrink_hidden_units", lambda *a: pytest.fail("work started"))
    monkeypatch.setattr(stage, "fit", lambda *a: pytest.fail("work started"))
    tiny = _model(ModelSpec("tag", hidden=2, vocab_size=VOCAB, num_outputs=3))
    with pytest.raises(EdgeRNNError, match="leaves none"):
        prune(tiny, PruneConfig(amount=0.8), None)
    with pytest.raises(EdgeRNNError, match="needs data"):
        prune(_model(_spec("tag")), PruneConfig(importance="activation"))
    with pytest.raises(EdgeRNNError, match="data is for task tag"):
        prune(_model(_spec("classify")), PruneConfig(), tag_data)
    with pytest.raises(EdgeRNNError, match="needs an edgernn model"):
        prune(nn.LSTM(3, 4), PruneConfig())


def test_bad_keep_choices_are_explained():
    model = _model(_spec("seq2seq", "lstm", bidirectional=True))
    keep = _distinct_keep(model.spec)
    with pytest.raises(EdgeRNNError, match="missing \\['attention'\\]"):
        shrink_hidden_units(model, {k: v for k, v in keep.items() if k != "attention"})
    with pytest.raises(EdgeRNNError, match="same number of units"):
        shrink_hidden_units(model, keep | {"attention": [0, 1]})
    with pytest.raises(EdgeRNNError, match="keep at least one unit"):
        shrink_hidden_units(model, dict.fromkeys(keep, []))
    with pytest.raises(EdgeRNNError, match="share the seq2seq bridge"):
        shrink_hidden_units(model, keep | {"decoder.l1": [0, 1, 2, 3, 4]})
    with pytest.raises(EdgeRNNError, match="must be in 0..7"):
        shrink_hidden_units(model, dict.fromkeys(keep, [4, 5, 6, 7, 8]))
    with pytest.raises(EdgeRNNError, match="must not repeat"):
        shrink_hidden_units(model, dict.fromkeys(keep, [1, 1, 2, 3, 4]))
    with pytest.raises(EdgeRNNError, match="keep must be in 1..8"):
        shrink_hidden_units(model, 0)
