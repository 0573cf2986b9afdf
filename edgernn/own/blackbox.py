"""A user's model that edgernn cannot adopt, used as a black-box teacher for distillation.

``BlackBoxTeacher`` wraps the user's module and takes edgernn batches like an edgernn model
(``model(inputs, lengths)``): it turns each row into the user's layout as ``--example`` shows
it (input names, dtypes, batch-first or time-major, token ids in the user's vocabulary through
adoption's ``token_map``), calls the user's ``forward`` on groups of rows of one exact length
(so padding never changes the teacher's outputs, whether or not forward takes lengths) and
gives the outputs back in batch order, in edgernn's label order (the user's output order,
named by ``--labels``). Outputs are cached by the row's ids: each training example costs one
call of the user's forward for the whole run.

``black_box_checkpoint`` wraps it as a ``Checkpoint`` whose ``build()`` is the teacher, so
``edgernn.compress.compress`` distills, prunes and quantizes a student from it as from an
edgernn teacher.

Example::

    teacher = black_box_checkpoint(own_model, "classify", word_to_idx, ["neg", "pos"])
    config, notes = black_box_config(CompressConfig(), "classify")
    result = compress(teacher, config, "data.csv")
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
from torch import Tensor, nn

from edgernn.checkpoint import Checkpoint
from edgernn.compress.config import CompressConfig
from edgernn.config import ModelSpec
from edgernn.distill.config import DEFAULT_AUGMENT
from edgernn.distill.student import count_params
from edgernn.errors import EdgeRNNError
from edgernn.own.adopt import adoption_meta
from edgernn.own.load import OwnModel, flatten_outputs, ids_lists_as_tensors, run_forward
from edgernn.own.vocab import token_map

BLACK_BOX_TASKS = ("classify", "regress", "tag")
DECIDED = 10.0  # score of a decoded id over the others: softmax 0.9995+ for up to 20 labels
MAX_SURROGATE_HIDDEN = 4096  # the widest LSTM the teacher's size is expressed as


@dataclass(frozen=True)
class Reading:
    """How an edgernn batch becomes the user's inputs."""

    main: str  # forward's sequence input
    lengths: str | None  # forward's lengths input, if it takes one
    axes: str  # batch_first | time_first | unbatched
    dtype: np.dtype  # of the sequence input, as the example gives it
    lengths_dtype: np.dtype | None
    to_user: Tensor | None  # edgernn token id -> the user's id; None for float features


class BlackBoxTeacher(nn.Module):
    """The user's module behind edgernn's model interface, its outputs cached per row."""

    def __init__(self, module: nn.Module, spec: ModelSpec, reading: Reading):
        super().__init__()
        self.module = module.eval()
        self.spec = spec
        self.reading = reading
        self.cache: dict[bytes, Tensor] = {}

    def train(self, mode: bool = True) -> BlackBoxTeacher:
        # The user's module always runs in eval mode: its outputs must not depend on dropout,
        # or one cached output would stand for a random one.
        super().train(mode)
        self.module.eval()
        return self

    def forward(self, inputs: Tensor, lengths: Tensor) -> Tensor:
        """Outputs like an edgernn model's: (B, C), (B, K) values, or (B, T, C) for tag."""
        rows = [inputs[i, :n] for i, n in enumerate(lengths.tolist())]
        keys = [row.detach().cpu().numpy().tobytes() for row in rows]
        missing: dict[int, dict[bytes, Tensor]] = {}  # length -> key -> row
        for key, row in zip(keys, rows, strict=True):
            if key not in self.cache:
                missing.setdefault(len(row), {})[key] = row
        for group in missing.values():
            outputs = self.outputs(torch.stack(list(group.values())))
            self.cache.update(zip(group, outputs, strict=True))
        outputs = [self.cache[key] for key in keys]
        if self.spec.task == "tag":  # padded steps are nobody's output: zeros
            steps = inputs.size(1)
            outputs = [nn.functional.pad(out, (0, 0, 0, steps - len(out))) for out in outputs]
        return torch.stack(outputs).to(inputs.device)

    @torch.no_grad()
    def outputs(self, rows: Tensor) -> Tensor:
        """The user's outputs for rows of one length, one per row, as float32 on the CPU."""
        if self.reading.axes == "unbatched":
            return torch.stack([self._call(row[None])[0] for row in rows])
        return self._call(rows)

    def _call(self, rows: Tensor) -> Tensor:
        reading, (count, steps) = self.reading, rows.shape[:2]
        x = rows.cpu()
        if reading.to_user is not None:
            x = reading.to_user[x.long()]
        arrays = {reading.main: x.numpy().astype(reading.dtype)}
        if reading.axes == "time_first":
            arrays[reading.main] = np.ascontiguousarray(arrays[reading.main].swapaxes(0, 1))
        elif reading.axes == "unbatched":
            arrays[reading.main] = arrays[reading.main][0]
        if reading.lengths is not None:
            arrays[reading.lengths] = np.full(count, steps, dtype=reading.lengths_dtype)
        name, output = teaching_output(run_forward(self.module, arrays, "a batch of --data"))
        return self._aligned(name, self._scores(name, output.detach().cpu()), count, steps)

    def _scores(self, name: str, output: Tensor) -> Tensor:
        """Float scores; decoded class or tag ids (a Viterbi ``forward``) as one-hot scores.

        A model that gives its decisions, not its scores, teaches those decisions: the
        chosen id gets ``DECIDED`` more than the others (softmax near 1 on it).
        """
        if output.is_floating_point() or self.spec.task not in ("classify", "tag"):
            return output.float()
        width = self.spec.num_outputs
        if output.numel() and not 0 <= int(output.min()) <= int(output.max()) < width:
            raise EdgeRNNError(
                f"your model's output {name!r} holds integers outside 0..{width - 1}; as "
                f"decoded ids they must name one of the {width} labels"
            )
        return nn.functional.one_hot(output.long(), width).float() * DECIDED

    def _aligned(self, name: str, output: Tensor, count: int, steps: int) -> Tensor:
        width = self.spec.num_outputs
        per_step = self.spec.task == "tag"
        shape = (count, steps, width) if per_step else (count, width)
        if output.numel() != int(np.prod(shape)):
            expected = "(rows, steps, tags)" if per_step else f"(rows, {width})"
            raise EdgeRNNError(
                f"your model's output {name!r} has shape {list(output.shape)} for {count} "
                f"rows of {steps} steps; a {self.spec.task} teacher must give {expected}, "
                f"{list(shape)} here"
            )
        if per_step and self.reading.axes == "time_first":
            return output.reshape(steps, count, width).transpose(0, 1)
        return output.reshape(shape)


class BlackBoxRunner:
    """The user's ``forward`` on random rows, uncached: a bench runner (``edgernn.bench``'s
    interface) that times the black-box teacher in this process, where the module lives."""

    def __init__(self, teacher: BlackBoxTeacher, seed: int = 0):
        self.teacher = teacher
        self.generator = torch.Generator().manual_seed(seed)
        self.threads = torch.get_num_threads()  # restored by close()

    def points(self, batches: list[int], seq_lens: list[int]) -> list[tuple[int, int]]:
        return [(batch, steps) for batch in batches for steps in seq_lens]

    def set_threads(self, threads: int) -> None:
        torch.set_num_threads(threads)

    def prepare(self, batch: int, seq_len: int):
        spec = self.teacher.spec
        if spec.vocab_size:
            low = 4 if spec.vocab_size > 4 else 0  # the user's own tokens, not <pad>/<unk>...
            shape = (batch, seq_len)
            rows = torch.randint(low, spec.vocab_size, shape, generator=self.generator)
        else:
            shape = (batch, seq_len, spec.input_size)
            rows = torch.randn(*shape, generator=self.generator)

        def call() -> Tensor:
            with torch.inference_mode():
                return self.teacher.outputs(rows)

        return call, {self.teacher.reading.main: list(shape)}

    def sync(self) -> None:
        pass

    def close(self) -> None:
        torch.set_num_threads(self.threads)


class BlackBoxCheckpoint(Checkpoint):
    """A ``Checkpoint`` whose model is a ``BlackBoxTeacher`` (no edgernn weights to save)."""

    def __init__(self, teacher: BlackBoxTeacher, meta, record: dict):
        super().__init__(teacher.spec, meta, {}, compression=record)
        self.teacher = teacher

    def build(self) -> nn.Module:
        """The same teacher every time, so its cache serves every stage."""
        return self.teacher.eval()


def black_box_checkpoint(
    model: OwnModel,
    task: str | None,
    vocab,
    labels,
    tokens: str | None = None,
    axes: dict | None = None,
    reason: str = "",
) -> BlackBoxCheckpoint:
    """The user's module as a teacher ``compress`` takes.

    Args:
        model: the user's module and its example (``OwnModel.prepare``).
        task: classify, regress or tag.
        vocab, labels, tokens: as for adoption (``edgernn.own.adopt.adopt``).
        axes: ``--axes`` roles; the sequence input's first role says time-major.
        reason: why it was not adopted, for the report.

    Raises:
        EdgeRNNError: no or another task, inputs it cannot feed, outputs of another shape.
    """
    if task not in BLACK_BOX_TASKS:
        raise EdgeRNNError(
            f"a black-box teacher needs --task {'|'.join(BLACK_BOX_TASKS)}, got {task}"
        )
    reading_axes = _axes(model, axes or {})
    mapping = _token_map(model, vocab)
    main = model.inputs[next(iter(model.inputs))]
    input_size = 0 if mapping is not None else int(main.shape[-1])
    spec = surrogate_spec(
        task, mapping, input_size, _outputs(model, task, reading_axes, labels), _param_count(model)
    )
    meta = adoption_meta(spec, model, mapping, labels, tokens)
    teacher = BlackBoxTeacher(model.module, spec, _reading(model, reading_axes, mapping))
    teacher.forward(*_probe(spec, mapping))  # fails now, in one line, if outputs do not fit
    teacher.cache.clear()
    record = {"black_box": {"class": model.class_name, "source": model.source}}
    record["black_box"] |= {"reason": reason, "axes": reading_axes}
    return BlackBoxCheckpoint(teacher, meta, record)


def _axes(model: OwnModel, axes: dict) -> str:
    name = next(iter(model.inputs))
    array = model.inputs[name]
    if array.ndim == (1 if array.dtype.kind in "iu" else 2):
        return "unbatched"
    if name in axes:
        return "time_first" if axes[name][0] == "time" else "batch_first"
    # Without --axes, the recurrent layers' own layout is the input's.
    layers = [m for m in model.module.modules() if isinstance(m, nn.RNNBase)]
    return "time_first" if layers and not any(m.batch_first for m in layers) else "batch_first"


def _token_map(model: OwnModel, vocab):
    array = model.inputs[next(iter(model.inputs))]
    if array.dtype.kind not in "iu":
        return None
    if vocab is None:
        raise EdgeRNNError(
            "a black-box teacher reading token ids needs its vocabulary to encode --data: "
            "--vocab word_to_idx.json (or a word_to_idx/vocab key in the checkpoint dict)"
        )
    tables = [m for m in model.module.modules() if isinstance(m, nn.Embedding)]
    if tables:
        return token_map(vocab, tables[0].num_embeddings, tables[0].padding_idx)
    if not isinstance(vocab, dict):
        return token_map(vocab, len(vocab), None)
    # token -> id (word_to_idx) or id -> token (idx_to_word): the ints are the ids.
    ids = [value if isinstance(value, int) else key for key, value in vocab.items()]
    return token_map(vocab, max(ids) + 1, None)


def _reading(model: OwnModel, axes: str, mapping) -> Reading:
    main, *rest = model.inputs
    lengths = [name for name in rest if _is_lengths(model.inputs[name])][:1]
    other = [name for name in rest if name not in lengths]
    if other:
        raise EdgeRNNError(
            f"forward takes {other[0]!r}, which is neither lengths nor the sequence; a "
            "black-box teacher feeds forward the sequence and optionally lengths: give it a "
            "default and leave it out of --example"
        )
    to_user = None
    if mapping is not None:
        # edgernn's <unk> (a token the vocabulary lacks) is the user's; without one, id 0.
        unknown = mapping.source_ids[1] if mapping.source_ids[1] is not None else 0
        ids = [unknown if user_id is None else user_id for user_id in mapping.source_ids]
        to_user = torch.tensor(ids)
    lengths_dtype = model.inputs[lengths[0]].dtype if lengths else None
    return Reading(
        main, lengths[0] if lengths else None, axes, model.inputs[main].dtype, lengths_dtype,
        to_user,
    )  # fmt: skip


def _is_lengths(array: np.ndarray) -> bool:
    return array.ndim == 1 and array.dtype.kind in "iu"


def _outputs(model: OwnModel, task: str, axes: str, labels) -> int:
    """How many scores or values per row (per step for tag) the example's output has; for
    decoded ids (a Viterbi ``forward``), how many labels ``--labels`` names."""
    name, output = teaching_output(run_forward(model.module, model.inputs))
    if not output.is_floating_point():
        if task == "regress" or not labels:
            raise EdgeRNNError(
                f"your model's first output {name!r} is {output.dtype}, not scores; decoded "
                "class or tag ids teach a classify or tag student only, with --labels"
            )
        return len(labels)
    if task != "regress":
        width = output.shape[-1] if output.ndim else 0
    elif output.ndim == 0 or (output.ndim == 1 and axes != "unbatched"):
        width = 1  # one value per row: (batch,), or a scalar for one sequence
    else:
        width = output.shape[-1]
    if task == "classify" and width < 2:
        raise EdgeRNNError(
            f"your model's output {name!r} has shape {list(output.shape)}; a classify teacher "
            "must give one score per class (2 or more), e.g. logits of shape (batch, classes)"
        )
    return int(width)


def teaching_output(value: object) -> tuple[str, Tensor]:
    """The output of ``forward`` a student learns from: the first that is not one number.

    A CRF tagger's forward often gives ``(path_score, tag_seq)`` (PyTorch's BiLSTM-CRF
    tutorial), the path a Python list of ints: the score of the whole path is not a per-row
    output, the path is. A model with only single numbers (a regressor on one sequence) gives
    its first.
    """
    outputs = flatten_outputs(ids_lists_as_tensors(value))
    return next(((name, out) for name, out in outputs if out.ndim), outputs[0])


def _param_count(model: OwnModel) -> int:
    return sum(p.numel() for p in model.module.parameters())


def surrogate_spec(task: str, mapping, input_size: int, num_outputs: int, params: int) -> ModelSpec:
    """The teacher's size as an edgernn spec: the widest one-layer LSTM (embedding as wide as
    its hidden state) with at most ``params`` parameters. Students are sized against it as
    against an edgernn teacher: by default the widest LSTM within 1/4 of it."""
    sizes = {"vocab_size": len(mapping.vocab) if mapping else 0, "input_size": input_size}

    def spec(hidden: int) -> ModelSpec:
        return ModelSpec(task, hidden=hidden, embed=hidden, num_outputs=num_outputs, **sizes)

    low, high = 1, MAX_SURROGATE_HIDDEN
    while low < high:  # parameters grow with the width: binary search
        middle = (low + high + 1) // 2
        low, high = (middle, high) if count_params(spec(middle)) <= params else (low, middle - 1)
    return spec(low)


def _probe(spec: ModelSpec, mapping) -> tuple[Tensor, Tensor]:
    # Two rows of different lengths, padded, so the exact-length grouping runs too.
    if mapping is None:
        return torch.zeros(2, 3, spec.input_size), torch.tensor([3, 2])
    token = 4 if len(mapping.vocab) > 4 else 1  # the first of the user's own tokens
    return torch.full((2, 3), token), torch.tensor([3, 2])


def black_box_config(config: CompressConfig, task: str) -> tuple[CompressConfig, list[str]]:
    """``config`` as a black-box teacher of ``task`` allows it, and notes on what it turned off.

    Raises:
        EdgeRNNError: a setting that needs the teacher's insides or the teacher as a model.
    """
    if config.student is None:
        raise EdgeRNNError(
            "--no-distill: a black-box teacher is not an edgernn model to prune or quantize; "
            "compress distills a student from it: drop --no-distill"
        )
    if config.student.embed_rank:
        raise EdgeRNNError(
            "--embed-rank starts the student's table from the teacher's, which a black-box "
            "teacher does not show: drop --embed-rank"
        )
    if config.distill.augment:
        raise EdgeRNNError(
            "--augment: a black-box teacher's outputs are cached per training example, and "
            "function matching asks it about new perturbed inputs at every step: drop --augment"
        )
    notes = []
    if config.distill.augment is None and DEFAULT_AUGMENT.get(task):
        notes.append("function matching off: a black-box teacher is asked about the data only")
    if config.distill.hidden_match > 0:
        notes.append(
            "hidden-state matching off: a black-box teacher shows its outputs, not its features"
        )
    distill = replace(config.distill, hidden_match=0.0, augment=0.0)
    return replace(config, distill=distill), notes


__all__ = [
    "BLACK_BOX_TASKS",
    "BlackBoxCheckpoint",
    "BlackBoxRunner",
    "BlackBoxTeacher",
    "black_box_checkpoint",
    "black_box_config",
    "surrogate_spec",
]
