"""The searched dimensions: what one trial's student, pruning and int8 are, from the teacher.

Each dimension is suggested from the Optuna trial unless a fixed compress flag pinned it.
Widths are searched on a log scale between 1/16 of the teacher's and the teacher's (a small
student is the point, and equal steps in log width are roughly equal steps in size).
Token models also search the student's vocabulary (as a share of the training tokens it
covers), the embedding's rank and the bits of its table in the int8 graph.
Distillation's peak learning rate is searched too, on a log scale: a small student wants a
larger step than plain compress's 3e-3 (measured: a 1/8-size NER student reached 98.3 valid
F1 at 1e-2 and stopped at 96.4 at 3e-3, the teacher 98.2).
Direction is a choice only for a bidirectional teacher that is not a language model: a
unidirectional teacher (every lm, every streaming model) keeps unidirectional students, as
a bidirectional one could neither stream nor predict the next token.
"""

from __future__ import annotations

from dataclasses import replace

from edgernn.compress.config import DEFAULT_PRUNE_AMOUNT, EMBED_BITS, CompressOptions
from edgernn.config import CELLS, ModelSpec, TrainConfig
from edgernn.distill.config import StudentConfig
from edgernn.distill.student import student_spec
from edgernn.distill.vocab import TASKS as VOCAB_TASKS
from edgernn.errors import EdgeRNNError

# Token models: the share of training tokens the student's vocabulary covers (1: all of the
# teacher's), the embedding rank as a share of its width (0: a full table), and table bits.
VOCAB_COVERAGES = (1.0, 0.995, 0.99, 0.98, 0.95)
RANK_SHARES = (0.0, 0.125, 0.25, 0.5)
INT8_BITS = 8
MAX_PRUNE = 0.75  # of the student's hidden units; beyond that, a narrower student is cheaper
PRUNE_STEP = 0.05
SMALLEST_FRACTION = 16  # widths down to 1/16 of the teacher's
DEFAULT_PARAM_RATIO = StudentConfig.max_param_ratio  # plain compress's student: 1/4
# The seeded trials' parameter shares: plain compress's, then students about 2x, 2.5x, 4x
# and 5x smaller than its pruned one (1/4 with a quarter of the units gone is about 1/6).
LADDER = (DEFAULT_PARAM_RATIO, 1 / 12, 1 / 16, 1 / 24, 1 / 32)
LR_RANGE = (1e-3, 3e-2)  # distillation's peak learning rate, searched on a log scale
LADDER_LR = 1e-2  # the smaller seeded students' (plain compress's stays TrainConfig.lr)


def suggest_choices(trial, teacher: ModelSpec, pinned: dict) -> dict:
    """The trial's value of every dimension (pinned ones as pinned), recorded as its params.

    Example::

        choices = suggest_choices(trial, teacher.spec, {"cell": "gru"})
    """

    def pick(name, suggest):
        return pinned[name] if name in pinned else suggest()

    choices = {
        "cell": pick("cell", lambda: trial.suggest_categorical("cell", CELLS)),
        "layers": pick("layers", lambda: trial.suggest_int("layers", 1, teacher.layers)),
        "bidirectional": pick("bidirectional", lambda: _direction(trial, teacher)),
        "hidden": pick("hidden", lambda: _width(trial, "hidden", teacher.hidden)),
        "embed": pick("embed", lambda: _embed(trial, teacher)),
        # Rounded: the float steps of suggest_float print as 0.7000000000000001.
        "prune": pick(
            "prune",
            lambda: round(trial.suggest_float("prune", 0.0, MAX_PRUNE, step=PRUNE_STEP), 4),
        ),
        "int8": pick("int8", lambda: trial.suggest_categorical("int8", (True, False))),
        "lr": pick("lr", lambda: _two_digits(trial.suggest_float("lr", *LR_RANGE, log=True))),
    }
    return choices | _embedding_choices(trial, teacher, choices["embed"], pick)


def _embedding_choices(trial, teacher: ModelSpec, embed: int | None, pick) -> dict:
    """Vocabulary coverage, embedding rank and table bits: token models only."""
    if teacher.vocab_size == 0:
        return {"vocab": None, "rank": 0, "embed_bits": INT8_BITS}
    vocab = None
    if teacher.task in VOCAB_TASKS:
        coverage = pick("vocab", lambda: trial.suggest_categorical("vocab", VOCAB_COVERAGES))
        vocab = None if coverage == 1.0 else coverage
    return {
        "vocab": vocab,
        "rank": pick("rank", lambda: _rank(trial, embed)),  # --embed-rank pins the rank
        "embed_bits": pick(
            "embed_bits", lambda: trial.suggest_categorical("embed_bits", EMBED_BITS)
        ),
    }


def _two_digits(value: float) -> float:
    # 0.0071 rather than 0.007123456: the report and the trial lines stay readable.
    return float(f"{value:.2g}")


def _rank(trial, embed: int) -> int:
    # Searched as a share of the trial's width: Optuna's choices must not change per trial.
    share = trial.suggest_categorical("rank", RANK_SHARES)
    return max(1, round(share * embed)) if share else 0


def seed_params(teacher: ModelSpec, pinned: dict) -> list[dict]:
    """The first trials of a new study: plain compress's student, then the same shape at
    each smaller ``LADDER`` share of the teacher's parameters (duplicates dropped), those
    distilled at ``LADDER_LR`` and not pruned.

    A 30-minute search on one core runs 10-20 trials, too few for TPE's random start to
    find the small end of the space; the ladder measures it first, smallest last. Its small
    students are not pruned: the search sizes them itself, and a pruned student only
    fine-tunes for a few epochs on the labels, where a narrower one distills from the start
    (measured on builtin:charlm: pruning a quarter of a 1/8 student's units took its test
    perplexity from 2.17 to 2.33, the teacher's 2.14).
    """
    ladder = [default_params(teacher, pinned)]
    ladder += [default_params(teacher, pinned, ratio, LADDER_LR, 0.0) for ratio in LADDER[1:]]
    unique = []
    for params in ladder:
        if params is not None and params not in unique:
            unique.append(params)
    return unique


def default_params(
    teacher: ModelSpec,
    pinned: dict,
    ratio: float = DEFAULT_PARAM_RATIO,
    lr: float = TrainConfig.lr,
    prune: float = DEFAULT_PRUNE_AMOUNT,
) -> dict | None:
    """Plain compress's student (1/4 of the teacher's parameters, its shape, a quarter of its
    units pruned, int8, its learning rate) as the params of a first trial, so the search
    starts from the answer compress gives without it; another ``ratio``, ``lr`` or
    ``prune``: that student at ``ratio`` of the parameters, distilled at ``lr``, with
    ``prune`` of its units pruned. None when the student cannot be built.
    """
    config = StudentConfig(
        hidden=pinned.get("hidden"),
        embed=pinned.get("embed"),
        layers=pinned.get("layers"),
        cell=pinned.get("cell"),
        bidirectional=pinned.get("bidirectional"),
        max_param_ratio=ratio,
    )
    try:
        student = student_spec(teacher, config)
    except EdgeRNNError:
        return None
    params = {
        "cell": student.cell,
        "layers": student.layers,
        "prune": prune,
        "int8": True,
        "lr": lr,
    }
    if teacher.vocab_size > 0:  # the teacher's whole vocabulary, a full table, 8 bits
        params |= {"vocab": 1.0, "rank": 0.0, "embed_bits": INT8_BITS}
        if teacher.task not in VOCAB_TASKS:
            del params["vocab"]
    if _direction_searched(teacher):
        params["bidirectional"] = student.bidirectional
    for name, width, teacher_width in (
        ("hidden", student.hidden, teacher.hidden),
        ("embed", student.embed, teacher.embed if teacher.vocab_size > 0 else None),
    ):
        bounds = _width_bounds(teacher_width) if teacher_width else None
        if bounds is not None:
            params[name] = min(max(width, bounds[0]), bounds[1])
    return {name: value for name, value in params.items() if name not in pinned}


def _direction_searched(teacher: ModelSpec) -> bool:
    return teacher.bidirectional and teacher.task != "lm"


def _direction(trial, teacher: ModelSpec) -> bool:
    if not _direction_searched(teacher):
        return teacher.bidirectional
    return trial.suggest_categorical("bidirectional", (True, False))


def _width_bounds(teacher_width: int) -> tuple[int, int] | None:
    """The searched range of a width, or None when it is too narrow to search."""
    low = max(1, teacher_width // SMALLEST_FRACTION)
    return None if low == teacher_width else (low, teacher_width)


def _width(trial, name: str, teacher_width: int) -> int:
    bounds = _width_bounds(teacher_width)
    if bounds is None:
        return teacher_width
    return trial.suggest_int(name, *bounds, log=True)


def _embed(trial, teacher: ModelSpec) -> int | None:
    # Numeric inputs have no embedding: nothing to search.
    return _width(trial, "embed", teacher.embed) if teacher.vocab_size > 0 else None


def trial_options(base: CompressOptions, choices: dict) -> CompressOptions:
    """``base`` (the user's other flags) with the trial's student, pruning and int8.

    Every stage is kept whatever it costs (``tolerance=inf``): the search judges the final
    model against the budget itself, so a trial measures exactly the model its params name.
    """
    prune = choices["prune"]
    return replace(
        base,
        student_hidden=choices["hidden"],
        student_embed=choices["embed"],
        student_layers=choices["layers"],
        student_cell=choices["cell"],
        student_unidirectional=not choices["bidirectional"],
        prune=prune if prune > 0 else base.prune,
        no_prune=prune == 0,
        no_quantize=not choices["int8"],
        no_distill=False,
        tolerance=float("inf"),
        vocab_coverage=choices["vocab"],  # None keeps base.vocab_size, pinned by --vocab-size
        embed_rank=choices["rank"],
        embed_bits=choices["embed_bits"],
        lr=choices["lr"],
    )
