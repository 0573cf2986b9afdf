"""The teacher's outputs: computed once per training example, then reused (distill.cache)."""

from dataclasses import replace

import pytest
import torch

import edgernn.distill.cache as cache_module
from edgernn.config import TrainConfig
from edgernn.data import collate, encode, load_raw
from edgernn.distill import DistillConfig, StudentConfig, distill
from edgernn.distill.cache import TeacherCache, teacher_cache
from edgernn.distill.loss import DistillObjective
from edgernn.train import train

QUICK = TrainConfig(epochs=2, batch_size=8, progress=False)


@pytest.fixture(autouse=True)
def no_cached_teachers(monkeypatch):
    # Teachers trained alike have equal weights: each test starts without another's rows.
    monkeypatch.setattr(cache_module, "_CACHES", {})


def _teacher(path, task, **choices):
    checkpoint = train(str(path), task, QUICK, hidden=16, embed=8, dropout=0.0, **choices)
    data = encode(load_raw(str(path), task), checkpoint.meta, checkpoint.spec.max_len)
    return checkpoint.build().eval(), data


@pytest.mark.parametrize(
    "task, choices", [("tag", {"bidirectional": True}), ("classify", {}), ("regress", {})]
)
def test_cached_rows_equal_the_teacher_on_other_batches(task, choices, data_files):
    teacher, data = _teacher(data_files[task], task, **choices)
    student = replace(teacher.spec, hidden=8)
    objective = DistillObjective(teacher, student, DistillConfig(hidden_match=1.0))
    train_rows = data.splits["train"][:12]
    cache = TeacherCache(per_step=task == "tag")
    run = lambda b: objective._run(teacher, b)  # noqa: E731
    with torch.no_grad():
        cache.outputs(collate(train_rows[:6], task), run)
        cache.outputs(collate(train_rows[6:], task), run)
        # Other batch mates, another order, another padding: every row is found.
        shuffled = collate(train_rows[::-2], task)
        got = cache.outputs(shuffled, run)
        want = run(shuffled)
    assert (cache.misses, cache.hits) == (2, 1)
    for g, w in zip(got, want, strict=True):
        assert g.shape == w.shape
        if task == "tag":  # padded steps come back as zeros; every loss masks them
            real = shuffled.targets != -100
            g, w = g[real], w[real]
        assert torch.allclose(g, w, atol=1e-6)


def test_a_second_student_reuses_the_first_ones_teacher_outputs(classify_csv):
    teacher, data = _teacher(classify_csv, "classify")
    config = DistillConfig(train=QUICK)
    distill(teacher, data, StudentConfig(hidden=8), config)
    cache = teacher_cache(teacher, features=True)
    batches = -(-len(data.splits["train"]) // QUICK.batch_size)
    assert cache.misses == batches and cache.hits == batches  # epoch 2 ran on the cache
    distill(teacher, data, StudentConfig(hidden=4, cell="gru"), config)
    assert cache.misses == batches and cache.hits == 3 * batches


def test_the_cache_gives_the_student_the_uncached_one_gets(tag_conll, monkeypatch):
    teacher, data = _teacher(tag_conll, "tag")
    config = DistillConfig(train=QUICK, hidden_match=0.5)
    cached = distill(teacher, data, StudentConfig(hidden=8), config)
    assert teacher_cache(teacher, features=True).hits > 0
    monkeypatch.setattr("edgernn.distill.stage.teacher_cache", lambda *args, **kwargs: None)
    plain = distill(teacher, data, StudentConfig(hidden=8), config)
    for name, value in plain.state_dict().items():
        assert torch.allclose(cached.state_dict()[name], value, atol=1e-5), name


def test_rows_past_the_memory_bound_are_computed_not_kept(classify_csv):
    teacher, data = _teacher(classify_csv, "classify")
    objective = DistillObjective(teacher, teacher.spec, DistillConfig(hidden_match=0.0))
    cache = TeacherCache(per_step=False, max_bytes=3 * teacher.spec.num_outputs * 4)
    batch = collate(data.splits["train"][:8], "classify")
    with torch.no_grad():
        for _ in range(2):
            cache.outputs(batch, lambda b: objective._run(teacher, b))
    assert cache.bytes <= cache.max_bytes and (cache.misses, cache.hits) == (2, 0)


def test_a_new_teacher_drops_the_last_ones_rows(classify_csv, lm_txt):
    first, _ = _teacher(classify_csv, "classify")
    teacher_cache(first, features=False)
    second, _ = _teacher(lm_txt, "lm")
    teacher_cache(second, features=False)
    assert len(cache_module._CACHES) == 1
    assert teacher_cache(second, features=True) is not None  # another kind of output: kept
    assert len(cache_module._CACHES) == 2
