"""Data-parallel training under torchrun: the same command, N gloo processes on CPU."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from conftest import numeric_arrays

from edgernn import distributed
from edgernn.cli import main
from edgernn.resume import state_path
from edgernn.train import _global_batches, _steps_per_epoch

TORCHRUN = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node"]
# Tiny and learnable (the sign of a sum): both runs reach > 85% valid accuracy in 6 epochs.
# dropout 0: no per-rank random stream, so a resumed 2-process run must match an unbroken one.
TRAIN = ["--task", "classify", "--hidden", "16", "--epochs", "6", "--batch-size", "16"]
TRAIN += ["--dropout", "0", "--quiet", "--json"]
HANG = 240  # seconds: far beyond a run here (~20 s under load); reaching it means a hang


@pytest.fixture(scope="module")
def series(tmp_path_factory):
    path = tmp_path_factory.mktemp("data") / "series.npz"
    np.savez(path, **numeric_arrays(400, classify=True))
    return path


@pytest.fixture(scope="module")
def two_processes(series, tmp_path_factory):
    """One 2-process torchrun training: its output and its checkpoint."""
    out = tmp_path_factory.mktemp("ddp") / "teacher.pt"
    args = [*TORCHRUN, "2", "-m", "edgernn", "train", *TRAIN, "--data", str(series)]
    result = _run([*args, "-o", str(out)])
    assert result.returncode == 0, result.stderr
    return result, out


def _run(command: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=HANG)


def _results(stdout: str) -> dict:
    """The one JSON line, after checking that only one rank printed."""
    lines = stdout.splitlines()
    assert sum(line.startswith("{") for line in lines) == 1, stdout
    assert sum(line.startswith("checkpoint:") for line in lines) == 1, stdout
    return json.loads(lines[-1])


@pytest.mark.parametrize("examples", [0, 1, 5, 16, 17, 33])
@pytest.mark.parametrize("world", [1, 2, 3, 4])
def test_shards_cover_each_example_of_a_batch_exactly_once(examples, world):
    batch = list(range(100, 100 + examples))
    shards = [distributed.shard(batch, rank, world) for rank in range(world)]
    assert sorted(i for part in shards for i in part) == batch
    assert max(map(len, shards)) - min(map(len, shards)) <= 1  # balanced


@pytest.mark.parametrize("examples", [1, 15, 16, 17, 31, 200, 801])
@pytest.mark.parametrize("world", [1, 2, 3])
def test_every_rank_gets_part_of_every_batch_and_the_step_count_is_known(examples, world):
    lengths = [1 + i % 7 for i in range(examples)]
    make = lambda: _global_batches(lengths, 16, torch.Generator().manual_seed(0), world)  # noqa: E731
    batches = make()
    assert batches == make()  # every rank builds the same order from the same seed
    assert all(len(b) >= world for b in batches)
    assert len(batches) == _steps_per_epoch(examples, 16, world)  # the schedule's length
    if world == 1:  # one process keeps every example
        assert sorted(i for b in batches for i in b) == list(range(examples))


def test_without_torchrun_there_is_no_process_group(monkeypatch):
    for name in ("WORLD_SIZE", "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"):
        monkeypatch.delenv(name, raising=False)
    with distributed.session("cpu") as place:
        assert place.world == 1 and not distributed.active() and distributed.is_main()
        assert distributed.broadcast_float(0.5) == 0.5


def test_nproc_runs_the_same_command_under_torchrun(series, tmp_path, monkeypatch):
    started = []

    def run(command, env):
        started.append(command)
        return subprocess.CompletedProcess(command, 0)

    monkeypatch.setattr(subprocess, "run", run)
    args = ["train", *TRAIN, "--data", str(series), "--no-lowercase", "--nproc", "2"]
    result = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "t.pt")])
    assert result.exit_code == 0, result.output
    (command,) = started
    assert command[:7] == [*TORCHRUN, "2", "-m", "edgernn"][:7]
    forwarded = command[command.index("train") :]
    assert "--nproc" not in forwarded
    for flag in ("--no-lowercase", "--quiet", "--json"):
        assert flag in forwarded
    assert forwarded[forwarded.index("--hidden") + 1] == "16"


def test_nproc_wants_a_gpu_per_process(series, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    args = ["train", *TRAIN, "--data", str(series), "--nproc", "2", "--device", "cuda"]
    result = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "t.pt")])
    assert result.exit_code == 1
    assert result.output.strip().splitlines() == [
        "Error: --nproc 2 --device cuda: only 1 GPU(s) here; one process needs one GPU"
    ]


@pytest.mark.slow
def test_two_processes_train_as_well_as_one_with_the_same_global_batch(
    series, two_processes, tmp_path
):
    result, out = two_processes
    parallel = _results(result.stdout)["metrics"]["valid"]["accuracy"]
    alone = CliRunner().invoke(
        main, ["train", *TRAIN, "--data", str(series), "-o", str(tmp_path / "one.pt")]
    )
    single = _results(alone.output)["metrics"]["valid"]["accuracy"]
    # Not bit for bit: each rank averages its own shard's loss and pads to its own length.
    # The fixture is easy (both end near 95%); 85% and 10 points catch a rank that trains
    # on nothing or gradients that are not averaged, yet leave room for that noise.
    assert parallel > 85 and single > 85 and abs(parallel - single) <= 10
    state = torch.load(out, weights_only=True)["state_dict"]
    assert not any(name.startswith("module.") for name in state)
    assert sorted(p.name for p in out.parent.iterdir()) == ["teacher.pt"]  # no resume state


@pytest.mark.slow
def test_the_nproc_shortcut_trains_with_two_processes(series, tmp_path):
    out = tmp_path / "teacher.pt"
    command = [sys.executable, "-m", "edgernn", "train", *TRAIN, "--data", str(series)]
    result = _run([*command, "--nproc", "2", "-o", str(out)])
    assert result.returncode == 0, result.stderr
    assert _results(result.stdout)["metrics"]["valid"]["accuracy"] > 85
    assert out.exists()


@pytest.mark.slow
def test_bad_data_fails_on_every_rank_in_one_line_without_a_hang(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("garbage\n", encoding="utf-8")
    args = ["train", "--task", "classify", "--data", str(bad), "-o", str(tmp_path / "t.pt")]
    shortcut = _run([sys.executable, "-m", "edgernn", *args, "--nproc", "2"])
    assert shortcut.returncode == 1
    assert shortcut.stderr.strip().splitlines() == [
        f"Error: {bad}: expected a header with columns text,label; got ['garbage']"
    ]
    # Straight under torchrun each rank reports the same line, then torchrun its summary.
    ranks = _run([*TORCHRUN, "2", "-m", "edgernn", *args])
    assert ranks.returncode != 0
    errors = [line for line in ranks.stderr.splitlines() if line.startswith("Error:")]
    assert errors == shortcut.stderr.strip().splitlines() * 2


KILL = """
import sys
import edgernn.train
from edgernn.cli import main

original, calls = edgernn.train.evaluate, []


def evaluate(*args, **kwargs):  # rank 0 validates: dies after {epochs} epochs, as a kill
    calls.append(1)
    if len(calls) > {epochs}:
        sys.exit(3)
    return original(*args, **kwargs)


edgernn.train.evaluate = evaluate
main(prog_name="edgernn")
"""


@pytest.mark.slow
def test_a_killed_two_process_run_resumes_to_the_unbroken_result(series, two_processes, tmp_path):
    script, out = tmp_path / "killed.py", tmp_path / "teacher.pt"
    script.write_text(KILL.format(epochs=2), encoding="utf-8")
    args = ["train", *TRAIN, "--data", str(series), "--resume", "-o", str(out)]
    killed = _run([*TORCHRUN, "2", str(script), *args])
    assert killed.returncode != 0 and state_path(out).exists() and not out.exists()
    resumed = _run([*TORCHRUN, "2", "-m", "edgernn", *args])
    assert resumed.returncode == 0, resumed.stderr
    assert not state_path(out).exists()
    unbroken, _ = two_processes
    assert _results(resumed.stdout)["metrics"] == _results(unbroken.stdout)["metrics"]


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs 2 CUDA GPUs (NCCL)")
def test_two_gpus_train_with_nccl(series, tmp_path):
    out = tmp_path / "teacher.pt"
    command = [sys.executable, "-m", "edgernn", "train", *TRAIN, "--data", str(series)]
    result = _run([*command, "--nproc", "2", "--device", "cuda", "-o", str(out)])
    assert result.returncode == 0, result.stderr
    assert _results(result.stdout)["metrics"]["valid"]["accuracy"] > 85


@pytest.mark.slow
def test_compress_distills_data_parallel_and_rank_0_alone_writes(two_processes, series, tmp_path):
    _, teacher = two_processes
    # Hidden matching on: its projection trains beside the student, so DDP must average it.
    args = ["compress", str(teacher), "--epochs", "8", "--student-hidden", "16"]
    args += ["--hidden-match", "0.5", "--quiet"]
    out = tmp_path / "bundle"
    result = _run([*TORCHRUN, "2", "-m", "edgernn", *args, "--json", "-o", str(out)])
    assert result.returncode == 0, result.stderr
    assert sum(line.startswith("bundle:") for line in result.stdout.splitlines()) == 1
    report = json.loads((out / "report.json").read_text())
    assert "data-parallel on 2 processes" in " ".join(report["notes"])
    alone = CliRunner().invoke(main, [*args, "-o", str(tmp_path / "one")])
    assert alone.exit_code == 0, alone.output
    single = json.loads((tmp_path / "one" / "report.json").read_text())
    # The distilled students (not the later stages, which a point either way may drop).
    parallel, one = report["models"][1]["metric"], single["models"][1]["metric"]
    assert parallel > 80 and one > 80 and abs(parallel - one) <= 10


@pytest.mark.slow
def test_a_recipe_runs_data_parallel_and_a_rerun_skips_every_stage(series, tmp_path):
    recipe = tmp_path / "tiny.toml"
    recipe.write_text(
        f'[data]\nsource = "{series}"\ntask = "classify"\n[teacher]\nhidden = 16\nepochs = 2\n'
        "batch_size = 16\n[compress]\nepochs = 1\n[bench]\nbatch_sizes = [1]\nseq_lens = [8]\n"
        "min_time_s = 0\n"
    )
    out = tmp_path / "run"
    result = _run([*TORCHRUN, "2", "-m", "edgernn", "run", str(recipe), "--quiet", "-o", str(out)])
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines.count("teacher: running") == 1 and lines.count("bundle: done") == 1, lines
    assert (out / "teacher.pt").is_file() and (out / "report.json").is_file()
    # Rank 0 recorded every stage as one process would: a plain rerun has nothing to do.
    again = CliRunner().invoke(main, ["run", str(recipe), "--quiet", "-o", str(out)])
    assert again.exit_code == 0, again.output
    assert all(f"{stage}: done, skipped" in again.output for stage in ("teacher", "compress"))
