"""Compression pipeline: distill -> prune -> quantize, each stage optional, one report row each.

``compress`` is pure (no files); ``write_compressed`` writes ``student.pt`` (the final fp32
model as a normal edgernn checkpoint plus the int8 quantization plan) and the report.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
from torch import nn

from edgernn.checkpoint import Checkpoint, checkpoint_data, save_checkpoint
from edgernn.compress.config import DEFAULT_TOLERANCE, CompressConfig
from edgernn.compress.precision import NO_QUANTIZE
from edgernn.config import ModelSpec
from edgernn.data import TaskData
from edgernn.distill import distill, student_spec
from edgernn.distill.vocab import StudentVocab, student_vocab
from edgernn.errors import EdgeRNNError
from edgernn.evaluate import evaluate
from edgernn.metrics import drop_unit, metric_drop
from edgernn.models import build_model
from edgernn.models.size import parameter_counts, serialized_size, size_by_part
from edgernn.prune import prune
from edgernn.prune.stage import check_prunable
from edgernn.quantize import QuantizeConfig, QuantPlan, apply_plan, plan_quantization
from edgernn.report.rows import ModelRow, build_report
from edgernn.report.schema import write_report
from edgernn.tasks import primary_metric

STUDENT_FILE = "student.pt"


@dataclass
class Compressed:
    """What ``compress`` produced: the final fp32 checkpoint, report rows and notes."""

    checkpoint: Checkpoint  # fp32 weights + compression record (incl. the int8 plan)
    rows: list[ModelRow]
    notes: list[str]

    @classmethod
    def from_checkpoint(cls, checkpoint: Checkpoint) -> Compressed:
        """The result again from the ``student.pt`` it was saved as (its record holds all).

        Example::

            result = Compressed.from_checkpoint(load_checkpoint("runs/demo/compress/student.pt"))
        """
        record = checkpoint.compression
        if not record or "rows" not in record:
            raise EdgeRNNError("not a compressed checkpoint: it has no compression record")
        rows = [ModelRow(**row) for row in record["rows"]]
        return cls(checkpoint, rows, list(record.get("notes", [])))


def compress(
    checkpoint: Checkpoint,
    config: CompressConfig | None = None,
    data: str | None = None,
    device: str = "cpu",
) -> Compressed:
    """Distill, prune and quantize a trained model, measuring after every stage.

    Every setting and the data are checked before any training starts. Pruning and int8 are
    kept only while the model stays within ``config.tolerance`` of the teacher on the valid
    split; a rejected stage still gets its report row. Without data only the data-free stage
    runs (int8, without its sensitivity pass) and no metric is measured.

    Args:
        checkpoint: the teacher; not modified.
        config: the stages; default: distill to 1/4 of the parameters, structured pruning of a
            quarter of the hidden units, dynamic int8.
        data: DATA argument; default: the data recorded in the checkpoint.
        device: where distillation trains (pruning fine-tunes and int8 runs on CPU).

    Returns:
        ``Compressed`` with the final checkpoint and one report row per model.

    Example::

        result = compress(load_checkpoint("teacher.pt"), CompressConfig())
        write_compressed(result, "out/")
    """
    config = config or CompressConfig()
    _check_before_work(checkpoint.spec, config)
    encoded, data_note = checkpoint_data(checkpoint, data)
    run = _Run(checkpoint, encoded, [*_adoption_notes(checkpoint), data_note], config.tolerance)
    model = run.measure(checkpoint.build(), "teacher", "teacher", None)
    if config.student is not None and run.needs_data("distillation"):
        vocab = student_vocab(encoded, config.student)
        student = distill(model, encoded, config.student, config.distill, device, vocab).cpu()
        if vocab is not None:  # from here on every model reads the student's vocabulary
            run.use_student_vocab(vocab)
        model = run.measure(student, "student", "student", "distill")
    if config.prune is not None and run.needs_data("pruning"):
        pruned = prune(model, config.prune, run.data).cpu()
        model, _ = run.keep_if_close(model, pruned, "pruned", "prune")
    plan, int8_refused = _int8_stage(run, model, config.quantize)
    if encoded is None:
        run.notes.append("accuracy was not measured: no data")
    checkpoint = run.final_checkpoint(model, plan, int8_refused, config)
    return Compressed(checkpoint, run.rows, run.notes)


def _int8_stage(
    run: _Run, model: nn.Module, config: QuantizeConfig | None
) -> tuple[QuantPlan | None, str | None]:
    """The kept int8 plan (or None), and why the bundle must ship no int8 (or None).

    The one int8 decision: int8 is refused when the user turned it off or the accuracy
    guard measured it too lossy; the ONNX export of the checkpoint follows the record
    (``edgernn.compress.precision``), so the bundle notes why its graphs are fp32 only.
    When PyTorch merely has nothing to quantize (no int8 vanilla RNN layer, packed weights
    that would not shrink a tiny model) nothing was refused: the ONNX export, whose int8
    covers every cell, measures its nodes itself.
    """
    if config is None:
        return None, NO_QUANTIZE
    plan = plan_quantization(model, config, run.data)
    if not plan.int8:
        reasons = "; ".join(f"{name}: {why}" for name, why in plan.fp32.items())
        run.notes.append(f"PyTorch int8 skipped: no layer qualifies ({reasons})")
        too_lossy = any(name in plan.sensitivity for name in plan.fp32)
        return None, run.notes[-1] if too_lossy else None
    int8 = apply_plan(model, plan)
    kept, why = run.keep_if_close(model, int8, "int8", "quantize", source=model)
    return (plan, None) if kept is int8 else (None, f"int8 not kept: {why}")


def _adoption_notes(teacher: Checkpoint) -> list[str]:
    # A user's own model, adopted (edgernn.own.adopt) or a black box (edgernn.own.blackbox).
    adopted, black_box = teacher.compression.get("adopted_from"), black_box_record(teacher)
    if adopted:
        return [
            f"teacher: your model {adopted['class']} ({adopted['source']}), adopted as an "
            f"edgernn model that reads {adopted['readout']} (max abs difference "
            f"{adopted['parity']:.1g}); its rows measure the adopted model, which computes "
            "the same outputs"
        ]
    if black_box:
        return [
            f"teacher: your model {black_box['class']} ({black_box['source']}), used as a "
            f"black-box teacher (its forward on the data; {black_box['reason']}); its row "
            "measures your model",
            *black_box.get("notes", []),
        ]
    return []


def black_box_record(checkpoint: Checkpoint) -> dict | None:
    """How a black-box teacher (``edgernn.own.blackbox``) was made, or None for a model."""
    return checkpoint.compression.get("black_box")


def _check_before_work(teacher: ModelSpec, config: CompressConfig) -> None:
    spec = teacher if config.student is None else student_spec(teacher, config.student)
    if config.prune is not None:
        with torch.device("meta"):  # the shapes are all the check needs
            check_prunable(build_model(spec), config.prune, None)


class _Run:
    """Measures each stage's model into a report row, keeping what the checkpoint records."""

    def __init__(self, teacher: Checkpoint, data: TaskData | None, notes: list, tolerance):
        self.teacher, self.data, self.notes = teacher, data, notes
        self.rows: list[ModelRow] = []
        self.metric, self.higher = primary_metric(teacher.spec.task)
        self.tolerance = DEFAULT_TOLERANCE[self.higher] if tolerance is None else tolerance
        self.reference: float | None = None  # the teacher's valid score, once needed
        self.vocabulary: dict | None = None  # the student's pruned vocabulary, if any

    def use_student_vocab(self, vocab: StudentVocab) -> None:
        """Score from now on in the student's pruned vocabulary (the teacher's reference
        score is taken first, in its own)."""
        self.teacher_valid()
        self.notes.append(vocab.note(len(self.data.meta.vocab)))
        self.data = vocab.encode(self.data)
        self.vocabulary = {"teacher": len(vocab.remap), "student": len(vocab)}
        self.vocabulary["coverage"] = vocab.coverage

    def needs_data(self, stage: str) -> bool:
        if self.data is None:
            self.notes.append(f"{stage} skipped: it needs data to train and to check accuracy")
        return self.data is not None

    def measure(self, model, name, role, stage, source: nn.Module | None = None) -> nn.Module:
        # Quantized modules hide their weights; counts come from the fp32 model they came from.
        params, nonzero = parameter_counts(source if source is not None else model)
        scores = self.scores(model, "test")
        self.rows.append(
            ModelRow(
                name=name,
                role=role,
                stage=stage,
                precision="int8" if source is not None else "fp32",
                params=params,
                nonzero_params=nonzero,
                size_bytes=serialized_size(model),
                size_parts=size_by_part(model),
                metric=scores.get(self.metric),
                metrics=scores,
            )
        )
        return model

    def keep_if_close(
        self, model, candidate, name, stage, source=None
    ) -> tuple[nn.Module, str | None]:
        """``(candidate, None)`` if it stays close enough to the teacher on valid, else
        ``(model, why not)``.

        Close enough: within the tolerance; or, when ``model`` was already outside it (a
        student too small for the task), losing at most half the tolerance more.
        """
        self.measure(candidate, name, "student", stage, source)
        if self.data is None:
            return candidate, None
        before, drop = self.valid_drop(model), self.valid_drop(candidate)
        allowed = self.tolerance if before <= self.tolerance else before + self.tolerance / 2
        if drop <= allowed:
            return candidate, None
        unit = drop_unit(self.metric)
        self.rows[-1].kept = False
        why = (
            f"{drop:.3g} {unit} worse than the teacher on the valid split, "
            f"{before:.3g} before it (tolerance {self.tolerance:g})"
        )
        self.notes.append(f"{stage} not kept: {why}")
        return model, why

    def valid_drop(self, model: nn.Module) -> float:
        score = self.scores(model, "valid")[self.metric]
        return metric_drop(self.teacher_valid(), score, self.metric)

    def teacher_valid(self) -> float:
        if self.reference is None:
            self.reference = self.scores(self.teacher.build(), "valid")[self.metric]
        return self.reference

    def scores(self, model: nn.Module, split: str) -> dict:
        if self.data is None:
            return {}
        return evaluate(model, self.data.splits[split], self.data.meta)

    def final_checkpoint(
        self, model: nn.Module, plan, int8_refused: str | None, config: CompressConfig
    ) -> Checkpoint:
        record = {
            "teacher": {
                "spec": self.teacher.spec.to_dict(),
                "metrics": self.teacher.metrics,
                "adopted_from": self.teacher.compression.get("adopted_from"),
                "black_box": black_box_record(self.teacher),
            },
            "stages": [row.stage for row in self.rows if row.stage and row.kept],
            "vocabulary": self.vocabulary,
            "quantization": plan.to_dict() if plan is not None else None,
            "int8_refused": int8_refused,  # why the bundle ships no int8: its note
            "embed_bits": config.embed_bits,  # of the int8 graphs' embedding tables
            "rows": [row.to_dict() for row in self.rows],
            "notes": list(self.notes),
        }
        metrics = {split: self.scores(model, split) for split in ("valid", "test")}
        state = {name: tensor.detach().cpu() for name, tensor in model.state_dict().items()}
        if config.student is None:
            training = self.teacher.training
        else:
            training = asdict(config.distill.for_task(model.spec.task))
        meta = self.teacher.meta
        if self.vocabulary is not None:
            meta = replace(meta, vocab=self.data.meta.vocab)  # the student's pruned one
        return Checkpoint(model.spec, meta, state, metrics, training, record)


def adopted_source(result: Compressed) -> str | None:
    """The user's own model file the teacher was adopted from, if it was (``edgernn.own``)."""
    adopted = result.checkpoint.compression.get("teacher", {}).get("adopted_from")
    return adopted["source"] if adopted else None


def black_box_teacher(result: Compressed) -> bool:
    """Whether the teacher was a user's model used as a black box (it is not timed)."""
    return bool(result.checkpoint.compression.get("teacher", {}).get("black_box"))


def report_rows(result: Compressed, teacher_file: str | None = None) -> list[ModelRow]:
    """The result's rows as its report shows them: with the file each kept model is in.

    ``student.pt`` holds the last kept fp32 model and re-creates the kept int8 one from its
    plan; it is named alone, beside the report, wherever the bundle folder goes.
    """
    rows = [replace(row) for row in result.rows]
    rows[0].file = adopted_source(result) or teacher_file or ""
    kept = [row for row in rows if row.kept]
    last_fp32 = [row for row in kept if row.precision == "fp32"][-1]
    for row in kept[1:]:
        if row is last_fp32 or row.precision == "int8":
            row.file = STUDENT_FILE
    return rows


def save_student(result: Compressed, outdir: str | Path) -> Path:
    """Write ``outdir/student.pt``, the final fp32 model and its int8 plan."""
    outdir = Path(outdir)
    if outdir.exists() and not outdir.is_dir():
        raise EdgeRNNError(f"{outdir}: exists and is not a directory")
    return save_checkpoint(result.checkpoint, outdir / STUDENT_FILE)


def write_compressed(
    result: Compressed, outdir: str | Path, teacher_file: str | None = None
) -> dict[str, Path]:
    """Write ``student.pt`` and the stage report (``report.md``, ``.html``, ``.json`` last).

    The stage report has one row per stage and no latencies (``edgernn.compress.finish``
    writes the timed one of a bundle).

    Args:
        result: from ``compress``.
        outdir: the bundle directory; created if missing.
        teacher_file: the teacher's path, recorded in its report row.

    Returns:
        File role (``student``, ``report``, ``report_md``, ``report_html``) -> path.
    """
    student = save_student(result, outdir)
    task = result.checkpoint.spec.task
    metric = primary_metric(task)[0]
    report = build_report(task, metric, report_rows(result, teacher_file), result.notes)
    return {"student": student} | report_paths(write_report(report, outdir))


def report_paths(paths: dict[str, Path]) -> dict[str, Path]:
    """``write_report``'s paths under the names ``write_compressed`` returns."""
    return {"report": paths["json"], "report_md": paths["md"], "report_html": paths["html"]}
