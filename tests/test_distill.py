import copy
import math
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from edgernn.config import TrainConfig
from edgernn.data import Batch, collate, encode, load_raw
from edgernn.data.batching import IGNORE_INDEX
from edgernn.data.vocab import SPECIALS
from edgernn.distill import (
    DistillConfig,
    StudentConfig,
    count_params,
    distill,
    sequence_kd_data,
    student_spec,
)
from edgernn.distill.loss import (
    DistillObjective,
    feature_width,
    hidden_loss,
    matching_loss,
    perturb,
    regression_kd_loss,
    soft_target_loss,
)
from edgernn.errors import EdgeRNNError
from edgernn.evaluate import evaluate
from edgernn.metrics import METRICS_BY_TASK
from edgernn.models import build_model
from edgernn.tasks import TASKS
from edgernn.train import fit, train

TEACHER = {"hidden": 16, "embed": 8, "dropout": 0.0}
QUICK = TrainConfig(epochs=1, batch_size=16, progress=False)
LONGER = replace(QUICK, epochs=10, batch_size=8, lr=1e-2)


def _teacher(path, task, config=QUICK, **choices):
    checkpoint = train(str(path), task, config, **(TEACHER | choices))
    data = encode(load_raw(str(path), task), checkpoint.meta, checkpoint.spec.max_len)
    return checkpoint.build(), data


def _hand_kl(p: list[float], q: list[float]) -> float:
    return sum(a * math.log(a / b) for a, b in zip(p, q, strict=True))


def _softmax(logits: list[float], temperature: float) -> list[float]:
    exps = [math.exp(v / temperature) for v in logits]
    return [e / sum(exps) for e in exps]


def test_soft_target_loss_equals_hand_computed_value():
    student = [[1.0, 0.0, -1.0], [0.5, 0.2, 0.1]]
    teacher = [[2.0, 0.5, -0.5], [-1.0, 1.0, 0.0]]
    targets, temperature, alpha = [0, 2], 2.0, 0.3
    kl = sum(
        _hand_kl(_softmax(t, temperature), _softmax(s, temperature))
        for s, t in zip(student, teacher, strict=True)
    ) / len(student)
    ce = -sum(math.log(_softmax(s, 1.0)[y]) for s, y in zip(student, targets, strict=True)) / len(
        student
    )
    expected = alpha * temperature**2 * kl + (1 - alpha) * ce
    got = soft_target_loss(
        torch.tensor(student), torch.tensor(teacher), torch.tensor(targets), temperature, alpha
    )
    assert got.item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 4.0])
def test_soft_target_term_is_scaled_by_t_squared(temperature):
    student, teacher = torch.randn(5, 4), torch.randn(5, 4)
    targets = torch.zeros(5, dtype=torch.long)
    kl = torch.stack(
        [
            torch.tensor(
                _hand_kl(_softmax(t.tolist(), temperature), _softmax(s.tolist(), temperature))
            )
            for s, t in zip(student, teacher, strict=True)
        ]
    ).mean()
    got = soft_target_loss(student, teacher, targets, temperature, alpha=1.0)
    assert got.item() == pytest.approx(temperature**2 * kl.item(), rel=1e-5)


def test_soft_target_loss_skips_padding():
    student, teacher = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    targets = torch.tensor([[1, 2, IGNORE_INDEX], [3, IGNORE_INDEX, IGNORE_INDEX]])
    valid = targets != IGNORE_INDEX
    full = soft_target_loss(student, teacher, targets, 2.0, 0.5)
    kept = soft_target_loss(student[valid], teacher[valid], targets[valid], 2.0, 0.5)
    assert full.item() == pytest.approx(kept.item(), rel=1e-6)


def test_regression_losses_by_hand():
    student, teacher = torch.tensor([[1.0], [0.0]]), torch.tensor([[0.5], [0.5]])
    targets = torch.tensor([[0.0], [0.0]])
    hard = (1.0 + 0.0) / 2
    pulled = regression_kd_loss(student, teacher, targets, alpha=0.25)
    assert pulled.item() == pytest.approx(0.25 * (0.25 + 0.25) / 2 + 0.75 * hard)
    # Bounded: only the first example is worse than the teacher (1.0 > 0.25) and adds its error.
    bounded = regression_kd_loss(student, teacher, targets, alpha=0.25, bounded=True)
    assert bounded.item() == pytest.approx(0.25 * (1.0 + 0.0) / 2 + 0.75 * hard)


def test_matching_loss_is_the_soft_term_alone():
    student, teacher = torch.randn(2, 3, 5), torch.randn(2, 3, 5)
    targets = torch.tensor([[1, 2, IGNORE_INDEX], [3, IGNORE_INDEX, IGNORE_INDEX]])
    soft = soft_target_loss(student, teacher, targets, 2.0, alpha=1.0)
    assert matching_loss(student, teacher, targets, 2.0).item() == pytest.approx(soft.item())
    floats = torch.zeros(2, 1)
    got = matching_loss(torch.tensor([[1.0], [0.0]]), torch.tensor([[0.0], [0.0]]), floats, 1.0)
    assert got.item() == pytest.approx(0.5)


def test_perturb_keeps_padding_and_specials():
    torch.manual_seed(0)
    lengths = torch.tensor([12, 5])
    tokens = torch.randint(4, 9, (2, 12))
    tokens[1, 5:] = 0
    batch = Batch(tokens, lengths, torch.zeros(2, dtype=torch.long))
    swapped = perturb(batch, 0.5, vocab_size=9).inputs
    assert torch.equal(swapped[1, 5:], tokens[1, 5:])  # padding untouched
    changed = swapped != tokens
    assert 0 < changed.sum() < 17 and int(swapped[changed].min()) >= len(SPECIALS)
    assert torch.equal(perturb(batch, 0.0, vocab_size=9).inputs, tokens)
    numbers = torch.zeros(2, 12, 3)
    noisy = perturb(Batch(numbers, lengths, torch.zeros(2, 1)), 0.2, vocab_size=0).inputs
    assert torch.equal(noisy[1, 5:], numbers[1, 5:])
    assert noisy[0].std().item() == pytest.approx(0.2, rel=0.3)


@pytest.mark.parametrize("task", ["classify", "regress", "tag"])
def test_function_matching_vanishes_only_for_a_perfect_imitation(task, data_files):
    teacher, data = _teacher(data_files[task], task)
    batch = collate(data.splits["train"][:8], task)
    config = DistillConfig(alpha=1.0, augment=0.3, regression_kd="mse")
    # A student that is the teacher matches it on every input, perturbed or not.
    same = DistillObjective(teacher, teacher.spec, config)(copy.deepcopy(teacher), batch)
    assert same.item() == pytest.approx(0.0, abs=1e-6)
    other = build_model(teacher.spec)
    with_matching = DistillObjective(teacher, teacher.spec, config)(other, batch)
    torch.manual_seed(0)
    without = DistillObjective(teacher, teacher.spec, replace(config, augment=0.0))(other, batch)
    assert with_matching.item() > without.item() > 0


def test_default_student_fits_a_quarter_and_follows_the_teacher(classify_csv):
    teacher, _ = _teacher(classify_csv, "classify", bidirectional=True, cell="gru")
    spec = student_spec(teacher.spec, StudentConfig())
    assert count_params(spec) <= 0.25 * count_params(teacher.spec)
    assert (spec.cell, spec.bidirectional, spec.layers) == ("gru", True, 1)
    assert spec.hidden < teacher.spec.hidden and spec.vocab_size == teacher.spec.vocab_size
    one_way = student_spec(teacher.spec, StudentConfig(bidirectional=False, cell="rnn", hidden=8))
    assert (one_way.cell, one_way.bidirectional, one_way.hidden) == ("rnn", False, 8)


@pytest.mark.parametrize(
    "student, fragment",
    [
        (StudentConfig(hidden=64), "bigger than the teacher"),
        (StudentConfig(bidirectional=True), "cannot be bidirectional"),
    ],
)
def test_bad_students_fail_before_training(student, fragment, lm_txt):
    teacher, data = _teacher(lm_txt, "lm")
    with pytest.raises(EdgeRNNError, match=fragment):
        distill(teacher, data, student, DistillConfig(train=QUICK))


def test_bad_configs_are_user_errors():
    with pytest.raises(EdgeRNNError, match="unknown student cell"):
        StudentConfig(cell="transformer")
    with pytest.raises(EdgeRNNError, match="temperature"):
        DistillConfig(temperature=0)
    with pytest.raises(EdgeRNNError, match="alpha"):
        DistillConfig(alpha=1.5)
    with pytest.raises(EdgeRNNError, match="seq2seq distillation"):
        DistillConfig(seq_kd="phrase")
    with pytest.raises(EdgeRNNError, match="augment"):
        DistillConfig(augment=-0.1)


def test_distilling_never_mutates_the_teacher(tag_conll):
    teacher, data = _teacher(tag_conll, "tag")
    teacher.train()
    before = {name: value.clone() for name, value in teacher.state_dict().items()}
    distill(teacher, data, StudentConfig(hidden=8), DistillConfig(train=QUICK, hidden_match=1.0))
    assert teacher.training
    assert all(torch.equal(before[name], value) for name, value in teacher.state_dict().items())
    assert all(p.grad is None for p in teacher.parameters())


def test_function_matching_defaults_to_noise_on_regression_only():
    assert DistillConfig().for_task("regress").augment == 0.3
    assert all(DistillConfig().for_task(t).augment == 0.0 for t in ("classify", "tag", "lm"))
    assert DistillConfig(augment=0.1).for_task("regress").augment == 0.1


@pytest.mark.parametrize("augment", [0.0, 0.2])
def test_alpha_zero_is_training_from_scratch(classify_csv, augment):
    # alpha weighs the teacher's outputs (and function matching); the hidden states have
    # their own weight.
    teacher, data = _teacher(classify_csv, "classify")
    config = DistillConfig(alpha=0.0, augment=augment, hidden_match=0.0, train=QUICK)
    student = distill(teacher, data, StudentConfig(hidden=8), config)
    torch.manual_seed(QUICK.seed)
    scratch = fit(build_model(student.spec), data, QUICK)
    for name, value in scratch.state_dict().items():
        assert torch.allclose(student.state_dict()[name], value, atol=1e-6), name


CASES = [
    ("classify", {}, {"hidden_match": 1.0, "augment": 0.2}),
    ("regress", {"bidirectional": True}, {"hidden_match": 1.0, "augment": 0.2}),
    ("tag", {"bidirectional": True}, {"hidden_match": 0.5, "augment": 0.2}),
    ("lm", {"cell": "gru"}, {"hidden_match": 1.0, "augment": 0.2}),
    ("seq2seq", {"attention": "luong"}, {"seq_kd": "word", "augment": 0.2, "hidden_match": 1.0}),
    ("seq2seq", {"bidirectional": True}, {"seq_kd": "sequence"}),
    ("seq2seq", {"cell": "gru"}, {"seq_kd": "both", "beam": 2, "hidden_match": 1.0}),
]


def _distance_to(teacher: nn.Module, model: nn.Module, data) -> float:
    """How far ``model``'s test outputs are from the teacher's: the KL divergence of their
    output distributions at every real position (the MSE of the values for regression)."""
    task = TASKS[data.meta.task]
    batch = collate(data.splits["test"], data.meta.task)
    with torch.no_grad():
        ours, theirs = task.forward(model.eval(), batch), task.forward(teacher.eval(), batch)
    if data.meta.task == "regress":
        return F.mse_loss(ours, theirs).item()
    kl = F.kl_div(ours.log_softmax(-1), theirs.log_softmax(-1), log_target=True, reduction="none")
    return kl.sum(-1)[batch.targets != IGNORE_INDEX].mean().item()


@pytest.mark.parametrize("task, teacher_choices, options", CASES)
def test_every_task_distills(task, teacher_choices, options, data_files):
    # A teacher trained long enough to have something to teach (one epoch is near uniform).
    teacher, data = _teacher(data_files[task], task, LONGER, **teacher_choices)
    student_config = StudentConfig(hidden=8, bidirectional=False)
    config = DistillConfig(train=LONGER, **options)
    student = distill(teacher, data, student_config, config)
    assert student.spec.hidden == 8 and not student.spec.bidirectional
    scores = evaluate(student, data.splits["test"], data.meta)
    expected = set(METRICS_BY_TASK[task]) - ({"bits_per_char"} if task != "lm" else set())
    assert set(scores) == expected and all(math.isfinite(v) for v in scores.values())
    # It learned from the teacher: closer to it than the same student before training.
    torch.manual_seed(config.train.seed)  # distill's own initialisation
    untrained = build_model(student.spec)
    assert _distance_to(teacher, student, data) < 0.95 * _distance_to(teacher, untrained, data)


def test_sequence_level_targets_are_the_teachers_beams(seq2seq_tsv):
    teacher, data = _teacher(seq2seq_tsv, "seq2seq")
    relabelled = sequence_kd_data(teacher, data, beam=3, device="cpu")
    assert relabelled.splits["valid"] is data.splits["valid"]
    src, target = relabelled.splits["train"][5]
    beams = teacher.beam_search(src[None], torch.tensor([len(src)]), 3, 2 * len(src) + 10)
    assert target[1:-1].tolist() == beams[0]


def test_seq2seq_hidden_matching_compares_every_decoder_step(seq2seq_tsv):
    teacher, data = _teacher(seq2seq_tsv, "seq2seq", bidirectional=True)
    batch = collate(data.splits["train"][:4], "seq2seq")
    config = DistillConfig(alpha=0.0, hidden_match=1.0)
    itself = DistillObjective(teacher, teacher.spec, config)
    assert isinstance(itself.project, nn.Identity)
    assert torch.allclose(itself(teacher, batch), TASKS["seq2seq"].loss(teacher, batch))
    student = build_model(student_spec(teacher.spec, StudentConfig(hidden=8)))
    _, features = DistillObjective(teacher, student.spec, config)._run(student, batch)
    assert features.shape == (*batch.targets.shape, feature_width(student.spec))


def test_per_step_hidden_matching_ignores_padded_steps():
    targets = torch.tensor([[4, 5, IGNORE_INDEX], [6, IGNORE_INDEX, IGNORE_INDEX]])
    batch = Batch(torch.zeros(2, 3, dtype=torch.long), torch.tensor([3, 3]), targets)
    student, teacher = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    padded = student.clone()
    padded[targets == IGNORE_INDEX] = 1e6
    real = targets != IGNORE_INDEX
    expected = ((student[real] - teacher[real]) ** 2).mean()
    assert torch.allclose(hidden_loss(padded, teacher, batch), expected)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize(
    "task, options", [("tag", {"hidden_match": 1.0}), ("seq2seq", {"seq_kd": "both"})]
)
def test_distills_on_cuda(task, options, data_files):
    teacher, data = _teacher(data_files[task], task)
    config = DistillConfig(train=QUICK, **options)
    student = distill(teacher, data, StudentConfig(hidden=8), config, device="cuda")
    assert next(student.parameters()).is_cuda and next(teacher.parameters()).device.type == "cpu"
    scores = evaluate(student, data.splits["test"], data.meta, device="cuda")
    assert all(math.isfinite(v) for v in scores.values())
