import pytest
import torch

from edgernn.config import ModelSpec, TrainConfig
from edgernn.data import collate, encode, load_raw
from edgernn.errors import EdgeRNNError
from edgernn.models import build_model
from edgernn.models.size import serialized_size
from edgernn.quantize import (
    QuantizeConfig,
    QuantPlan,
    apply_plan,
    candidate_layers,
    plan_quantization,
    quantize,
)
from edgernn.train import train

QUICK = TrainConfig(epochs=2, batch_size=16, progress=False)


def _batch(vocab: int = 40, batch: int = 4, steps: int = 10):
    torch.manual_seed(1)
    lengths = torch.tensor([steps, 7, 3, 1][:batch])
    return torch.randint(4, vocab, (batch, steps)), lengths


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("bidirectional", [False, True])
def test_int8_outputs_stay_close_and_shrink(cell, bidirectional):
    torch.manual_seed(0)
    spec = ModelSpec(
        task="tag", vocab_size=40, num_outputs=5, hidden=16, embed=16, cell=cell,
        bidirectional=bidirectional, dropout=0.0,
    )  # fmt: skip
    model = build_model(spec).eval()
    int8 = quantize(model)
    tokens, lengths = _batch()
    reference = model(tokens, lengths)
    assert (int8(tokens, lengths) - reference).abs().max() < 0.05 * reference.abs().max()
    assert serialized_size(int8) < 0.7 * serialized_size(model)
    assert type(model.encoder.rnn).__name__ == cell.upper()  # the input is untouched


def test_seq2seq_int8_decodes_like_fp32():
    torch.manual_seed(0)
    spec = ModelSpec(
        task="seq2seq", vocab_size=30, num_outputs=20, hidden=16, embed=8, attention="luong",
        dropout=0.0,
    )  # fmt: skip
    model = build_model(spec).eval()
    int8 = quantize(model)
    src, lengths = _batch(30)
    tgt_in = torch.randint(4, 20, (4, 6))
    reference = model(src, lengths, tgt_in)
    assert (int8(src, lengths, tgt_in) - reference).abs().max() < 0.05 * reference.abs().max()
    assert len(int8.beam_search(src, lengths, 2, 8)) == 4


def test_vanilla_rnn_and_unselected_layers_stay_fp32():
    spec = ModelSpec(task="classify", vocab_size=40, num_outputs=3, hidden=8, embed=4, cell="rnn")
    candidates, fp32 = candidate_layers(build_model(spec), QuantizeConfig())
    assert set(candidates) == {"head", "encoder.embedding"}
    assert "vanilla RNN" in fp32["encoder.rnn"]
    candidates, fp32 = candidate_layers(build_model(spec), QuantizeConfig(kinds=("rnn",)))
    assert candidates == {} and "not selected" in fp32["head"]


def test_layers_stay_fp32_where_int8_does_not_pay():
    torch.manual_seed(0)
    spec = ModelSpec(task="classify", vocab_size=40, num_outputs=3, hidden=16, embed=16)
    model = build_model(spec)
    plan = plan_quantization(model)
    assert set(plan.int8) == {"encoder.embedding", "encoder.rnn"}  # a 16 x 3 head grows
    assert "does not pay" in plan.fp32["head"]
    assert serialized_size(apply_plan(model, plan)) < serialized_size(model)


def test_sensitivity_keeps_costly_layers_in_float(regress_npz):
    checkpoint = train(str(regress_npz), "regress", QUICK, hidden=16)
    data = encode(load_raw(str(regress_npz), "regress"), checkpoint.meta, 512)
    model = checkpoint.build()
    strict = plan_quantization(model, QuantizeConfig(threshold=0.0), data)
    costly = {name for name, drop in strict.sensitivity.items() if drop > 0}
    assert costly and costly <= set(strict.fp32)
    assert set(strict.int8) == set(strict.sensitivity) - costly
    loose = plan_quantization(model, QuantizeConfig(threshold=1e9), data)
    assert set(loose.int8) == set(strict.sensitivity)


def test_plan_round_trips_and_is_checked(classify_csv):
    checkpoint = train(str(classify_csv), "classify", QUICK, hidden=16, embed=8)
    model = checkpoint.build()
    plan = plan_quantization(model)  # no data: every supported layer, nothing measured
    assert plan.sensitivity == {} and "encoder.rnn" in plan.int8
    again = QuantPlan.from_dict(plan.to_dict())
    batch = collate(encode(load_raw(str(classify_csv), "classify"), checkpoint.meta, 64)
                    .splits["test"], "classify")  # fmt: skip
    first = apply_plan(model, plan)(batch.inputs, batch.lengths)
    assert torch.equal(first, apply_plan(model, again)(batch.inputs, batch.lengths))
    with pytest.raises(EdgeRNNError, match="lacks"):
        apply_plan(model, QuantPlan(("decoder",)))


def test_unknown_layer_kinds_are_refused():
    with pytest.raises(EdgeRNNError, match="unknown layer kinds"):
        QuantizeConfig(kinds=("conv",))
