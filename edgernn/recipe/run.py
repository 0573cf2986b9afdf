"""Run a recipe stage by stage: teacher -> compress -> bundle, resumable and exclusive.

Everything lands in one output folder: ``teacher.pt``, the compress stage's ``compress/``
(student.pt and its stage report), the bundle (``student.pt``, ``manifest.json``, the ONNX
graphs, ``report.{json,md,html}``), and ``stages.json``, the record of finished stages. A rerun
skips every stage whose settings, inputs and artifacts are unchanged, so an interrupted run
resumes where it stopped. The bundle is published whole (``edgernn.bundle.staging``): a run killed
at any point leaves the previous bundle as it was.
"""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Callable
from pathlib import Path

from edgernn.atomic import atomic_path
from edgernn.bundle.staging import recover
from edgernn.errors import EdgeRNNError
from edgernn.lock import folder_lock
from edgernn.recipe.parse import Recipe
from edgernn.recipe.state import is_done, load_state, record_stage, sha256_file, stage_key

TEACHER_FILE = "teacher.pt"
COMPRESS_DIR = "compress"  # the compress stage's student.pt and report.json, before the bundle


def run_recipe(
    recipe: Recipe,
    outdir: str | Path,
    progress: bool = True,
    log: Callable[[str], None] | None = None,
    device: str = "cpu",
) -> dict:
    """Train the teacher, compress it and finish the bundle, skipping finished stages.

    Args:
        recipe: from ``load_recipe`` (or ``recipe.smoke(data)`` for a seconds-long run).
        outdir: the output folder; created if missing.
        progress: tqdm bars while training and measuring.
        log: receives one line per stage (``teacher: done, skipped``); default: silent.
        device: where the teacher and the student train (``cpu`` or ``cuda``); a finished
            stage is not redone on another device.

    Returns:
        ``edgernn.compress.bundle.bundle_summary`` (``bundle``, ``report``, ``files``,
        ``metrics``, ``teacher_metrics``, ``ratios``, as ``edgernn compress --json``) plus
        ``stages``: each stage -> ``ran`` or ``skipped``. Under torchrun, on ranks other
        than 0: None (rank 0 alone writes the bundle).

    Raises:
        EdgeRNNError: another command is writing into ``outdir``, or a stage refused its input.

    Example::

        summary = run_recipe(load_recipe("pipelines/sentiment_bilstm.toml"), "runs/demo")
    """
    from edgernn import distributed  # torch: imported to run a recipe, not to read one

    outdir = Path(outdir)
    if distributed.active():
        return _run_data_parallel(recipe, outdir, progress, log, device)
    with folder_lock(outdir):
        recover(outdir)  # a bundle swap a killed run left half done, before stages are judged
        run = _Run(recipe, outdir, progress, log or (lambda line: None), device)
        run.stage("teacher", run.teacher_key(), run.train_teacher)
        run.stage("compress", run.compress_key(), run.compress)
        run.stage("bundle", run.bundle_key(), run.bundle)
    return run.summary()


def _run_data_parallel(recipe: Recipe, outdir: Path, progress: bool, log, device: str):
    """``run_recipe`` under torchrun: every rank trains and compresses (data-parallel), rank 0
    alone holds the lock, writes, logs and finishes the bundle; the others return None.

    Every rank makes the same skip decisions: each reads the stages rank 0 recovered, and
    again after the teacher stage, which rank 0 recorded (and whose checkpoint it wrote).
    """
    from edgernn import distributed

    main = distributed.is_main()
    with folder_lock(outdir) if main else contextlib.nullcontext():
        if main:
            recover(outdir)
        distributed.barrier()
        silent = lambda line: None  # noqa: E731
        run = _Run(recipe, outdir, progress and main, (log or silent) if main else silent, device)
        run.stage("teacher", run.teacher_key(), run.train_teacher)
        distributed.barrier()
        run.stages = load_state(outdir)
        run.stage("compress", run.compress_key(), run.compress)
        if not main:
            return None
        run.stage("bundle", run.bundle_key(), run.bundle)
    return run.summary()


class _Run:
    """One run's settings and the stage records it has read and written."""

    def __init__(self, recipe: Recipe, outdir: Path, progress: bool, log, device: str) -> None:
        self.recipe, self.outdir, self.progress, self.log = recipe, outdir, progress, log
        self.device = device
        self.stages = load_state(outdir)
        self.outcome: dict[str, str] = {}
        self.teacher_file = outdir / TEACHER_FILE
        self.result = None  # the compress stage's result, once this run has it

    def stage(self, name: str, key: str, work: Callable[[], list[Path]]) -> None:
        if is_done(self.stages.get(name), key, self.outdir):
            self.log(f"{name}: done, skipped")
            self.outcome[name] = "skipped"
            return
        self.log(f"{name}: running")
        artifacts = work()
        if not _is_main():  # under torchrun rank 0 alone writes and records
            return
        # Only now, with every artifact in place, does the stage count as finished.
        self.stages = record_stage(self.outdir, self.stages, name, key, artifacts)
        self.outcome[name] = "ran"
        self.log(f"{name}: done")

    def _hashes(self, name: str) -> dict:
        return self.stages.get(name, {}).get("artifacts", {})

    def teacher_key(self) -> str:
        parts, given = self.recipe.to_dict(), self.recipe.teacher.checkpoint
        given_hash = sha256_file(Path(given)) if given and Path(given).is_file() else None
        return stage_key("teacher", parts["data"], parts["teacher"], given_hash)

    def compress_key(self) -> str:
        parts = self.recipe.to_dict()
        return stage_key("compress", parts["data"], parts["compress"], self._teacher_hash())

    def bundle_key(self) -> str:
        parts = self.recipe.to_dict()
        return stage_key("bundle", parts["bench"], self._hashes("compress"), self._teacher_hash())

    def _teacher_hash(self) -> dict:
        return self._hashes("teacher")

    def train_teacher(self) -> list[Path]:
        from edgernn.checkpoint import load_checkpoint, save_checkpoint
        from edgernn.train import train

        given = self.recipe.teacher.checkpoint
        if given:
            # Copied into the run, so the bundle report and resuming refer to a file it owns.
            _check_given_teacher(load_checkpoint(given), self.recipe)
            if not _is_main():
                return []
            _copy_atomic(Path(given), self.teacher_file)
            return [self.teacher_file]
        data, teacher = self.recipe.data, self.recipe.teacher
        config = teacher.train_config(self.progress)
        checkpoint = train(
            data.source,
            data.task,
            config,
            tokens=data.tokens,
            device=self.device,
            text=data.text_choices(),
            **teacher.model_choices(),
        )
        if not _is_main():
            return []
        return [save_checkpoint(checkpoint, self.teacher_file)]

    def compress(self) -> list[Path]:
        from edgernn.checkpoint import load_checkpoint
        from edgernn.compress.stages import compress, write_compressed

        config = self.recipe.compress.config(self.progress)
        teacher = load_checkpoint(self.teacher_file)
        # Kept in memory for the bundle stage; compress/ is what a resumed run reads instead.
        self.result = compress(teacher, config, self.recipe.data.source, self.device)
        if not _is_main():
            return []
        folder = self.outdir / COMPRESS_DIR
        folder.mkdir(exist_ok=True)
        files = write_compressed(self.result, folder, str(self.teacher_file))
        return [files["student"], files["report"]]

    def bundle(self) -> list[Path]:
        from edgernn.compress.bundle import publish_bundle

        if self.result is None:  # compress finished in an earlier run
            self.result = _load_result(self.outdir / COMPRESS_DIR)
        config = self.recipe.bench.report_config(self.progress)
        data = self.recipe.data.source
        names = publish_bundle(self.result, self.outdir, self.teacher_file, data, config)
        return [self.outdir / name for name in names]

    def summary(self) -> dict:
        from edgernn.compress.bundle import bundle_summary

        # Every stage skipped: the bundle's own student.pt holds the same record.
        result = self.result or _load_result(self.outdir)
        names = sorted(self._hashes("bundle"))
        return bundle_summary(result, self.outdir, names) | {"stages": dict(self.outcome)}


def _load_result(folder: Path):
    from edgernn.checkpoint import load_checkpoint
    from edgernn.compress.stages import STUDENT_FILE, Compressed

    return Compressed.from_checkpoint(load_checkpoint(folder / STUDENT_FILE))


def _check_given_teacher(checkpoint, recipe: Recipe) -> None:
    if checkpoint.spec.task != recipe.data.task:
        raise EdgeRNNError(
            f"[teacher] checkpoint {recipe.teacher.checkpoint} is a {checkpoint.spec.task} "
            f"model but [data] task is {recipe.data.task}"
        )


def _copy_atomic(source: Path, target: Path) -> None:
    with atomic_path(target) as temp:
        shutil.copyfile(source, temp)


def _is_main() -> bool:
    """Rank 0, or the only process: the one that writes (``edgernn.distributed``)."""
    from edgernn import distributed

    return distributed.is_main()
