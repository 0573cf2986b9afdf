"""Embedding compression on a real-sized vocabulary: where a text model's bytes go.

Generates the large-vocabulary classification set of ``realtext_data.py`` (Zipfian
pseudo-words, 6 topics, > 20k training word types), trains a bidirectional LSTM teacher
whose embedding holds most of its parameters, then runs ``edgernn compress`` end to end
(CLI, ``--json``) with each variant below. Per variant: the shipped bytes (the int8 graph
an app loads plus ``manifest.json``, which holds the vocabulary), how many times smaller
that is than the fp32 teacher (its ``torch.save`` state dict, the report's teacher row),
the test accuracy of the shipped int8 graph against the teacher's, and the int8 graph's
bytes by part (embedding / recurrent / head, ``edgernn.report.onnx_parts``).

Everything is cached in --work (data, teacher, one bundle per variant), so a rerun resumes;
use a fresh --work after changing a setting.

    .venv/bin/python benchmarks/embeddings.py --work /tmp/embeddings \
        --out benchmarks/results/embeddings
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from realtext_data import write_dataset  # noqa: E402

from edgernn.bundle.manifest import manifest_text  # noqa: E402
from edgernn.report.environment import environment  # noqa: E402

TEACHER = ["--cell", "lstm", "--bidirectional", "--hidden", "128", "--embed", "64"]
TEACHER += ["--epochs", "8"]  # valid accuracy peaks by epoch 6 (92.7 %)
STUDENT = ["--student-hidden", "32", "--epochs", "15"]
WIDE = [*STUDENT, "--student-embed", "64", "--embed-rank", "16"]  # the teacher's width, rank 16
# name -> compress flags. "defaults" is plain compress (1/4 of the parameters, the teacher's
# vocabulary and table); the others add one embedding option at a time.
VARIANTS = {
    "defaults": ["--epochs", "15"],
    "hidden 32": STUDENT,
    "vocab 10k": [*STUDENT, "--vocab-size", "10000"],
    "vocab 10k + rank 16 + 4-bit": [*WIDE, "--vocab-size", "10000", "--embed-bits", "4"],
    "vocab 5k + rank 16 + 4-bit": [*WIDE, "--vocab-size", "5000", "--embed-bits", "4"],
    "hashed 4k + 4-bit": [*STUDENT, "--embed-buckets", "4000", "--embed-bits", "4"],
}


def edgernn(*args: str) -> dict:
    """Run an edgernn command with ``--json``; its last line."""
    command = [sys.executable, "-m", "edgernn", *args, "--quiet", "--json"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(
            f"{' '.join(args[:2])} failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


def teacher(work: Path) -> Path:
    data, path = work / "data", work / "teacher.pt"
    if not (data / "train.csv").exists():
        print("data:", write_dataset(data), flush=True)
    if not path.exists():
        start = time.time()
        edgernn("train", "--task", "classify", "--data", str(data), "--tokens", "word",
                *TEACHER, "-o", str(path))  # fmt: skip
        print(f"teacher trained in {time.time() - start:.0f} s", flush=True)
    return path


def variant_row(work: Path, teacher_file: Path, name: str, flags: list[str]) -> dict:
    folder = work / name.replace(" ", "_").replace("%", "").replace("+", "")
    done = folder / "run.json"  # the finished run; its bundle is measured again every time
    if not done.exists():
        start = time.time()
        edgernn("compress", str(teacher_file), *flags, "-o", str(folder))
        done.write_text(json.dumps({"seconds": round(time.time() - start)}))
    run = json.loads(done.read_text())
    return measured(folder) | {"variant": name, "flags": " ".join(flags)} | run


def measured(folder: Path) -> dict:
    report = json.loads((folder / "report.json").read_text())
    models = report["models"]
    teacher = next(m for m in models if m["role"] == "teacher")
    graph = next(m for m in models if m.get("file") == "model.int8.onnx")
    manifest = json.loads((folder / "manifest.json").read_text())
    # As this edgernn writes it (a bundle made before the one-line vocabulary was bigger).
    manifest_bytes = len(manifest_text(manifest).encode("utf-8"))
    shipped = (folder / "model.int8.onnx").stat().st_size + manifest_bytes
    return {
        "teacher_bytes": teacher["size_bytes"],
        "teacher_params": teacher["params"],
        "teacher_parts": teacher.get("size_parts"),
        "teacher_test": teacher["metric"],
        "test": graph["metric"],
        "drop": teacher["metric"] - graph["metric"],
        "graph_bytes": graph["size_bytes"],
        "graph_parts": graph.get("size_parts"),
        "manifest_bytes": manifest_bytes,
        "vocab": len(manifest["vocab"]),
        "shipped_bytes": shipped,
        "smaller": teacher["size_bytes"] / shipped,
        "notes": report["notes"],
    }


def markdown(rows: list[dict], env: dict, command: str) -> str:
    first = rows[0]
    parts = first["teacher_parts"] or {}
    lines = [
        "# Embedding compression on a large vocabulary",
        "",
        f"Machine: {env['cpu']}, {env['cores']} cores; torch {env['versions']['torch']}, "
        f"onnxruntime {env['versions']['onnxruntime']}. Command: `{command}`.",
        "",
        f"Teacher: bidirectional LSTM, hidden 128, embed 64, {first['teacher_params']:,} "
        f"parameters, {first['teacher_bytes'] / 1e6:.2f} MB fp32 (embedding "
        f"{parts.get('embedding', 0) / 1e6:.2f} MB, recurrent "
        f"{parts.get('recurrent', 0) / 1e6:.2f} MB, head {parts.get('head', 0) / 1e3:.1f} kB), "
        f"test accuracy {first['teacher_test']:.2f}.",
        "",
        "Shipped = `model.int8.onnx` + `manifest.json` (the vocabulary). Smaller = teacher fp32 "
        "bytes / shipped bytes. Drop = teacher test accuracy - int8 graph test accuracy "
        "(points). Parts: the int8 graph's weight bytes by part.",
        "",
        "| variant | vocab | shipped | smaller | test | drop | embedding | recurrent | head "
        "| manifest | time |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        part = row["graph_parts"] or {}
        lines.append(
            f"| {row['variant']} | {row['vocab']:,} | {row['shipped_bytes'] / 1e3:.1f} kB | "
            f"{row['smaller']:.1f}x | {row['test']:.2f} | {row['drop']:+.2f} | "
            f"{part.get('embedding', 0) / 1e3:.1f} kB | {part.get('recurrent', 0) / 1e3:.1f} kB | "
            f"{part.get('head', 0) / 1e3:.1f} kB | {row['manifest_bytes'] / 1e3:.1f} kB | "
            f"{row['seconds']} s |"
        )
    lines += ["", "Flags per variant:", ""]
    lines += [f"- {row['variant']}: `edgernn compress teacher.pt {row['flags']}`" for row in rows]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    parser.add_argument("--variants", help="comma-separated subset of the variant names")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    chosen = args.variants.split(",") if args.variants else list(VARIANTS)
    teacher_file = teacher(args.work)
    rows = []
    for name in chosen:
        rows.append(variant_row(args.work, teacher_file, name, VARIANTS[name]))
        print(json.dumps({k: rows[-1][k] for k in ("variant", "smaller", "drop")}), flush=True)
    env = environment()
    command = " ".join(["python", *sys.argv])
    args.out.with_suffix(".json").write_text(
        json.dumps({"environment": env, "rows": rows}, indent=1)
    )
    args.out.with_suffix(".md").write_text(markdown(rows, env, command))


if __name__ == "__main__":
    main()
