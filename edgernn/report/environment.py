"""Where the numbers come from: CPU, cores, GPU, library versions and the git commit."""

from __future__ import annotations

import os
import platform
import subprocess
from importlib import metadata
from pathlib import Path

# Distribution names to report; the first installed one of each group wins.
_PACKAGES = {
    "edgernn": ("edgernn",),
    "torch": ("torch",),
    "onnx": ("onnx",),
    "onnxruntime": ("onnxruntime", "onnxruntime-gpu"),
    "numpy": ("numpy",),
    "matplotlib": ("matplotlib",),
}


def environment(device: str = "cpu") -> dict:
    """The machine and software a report was measured with.

    Returns:
        ``{"cpu", "cores", "cores_usable", "gpu", "platform", "versions", "git_sha"}``;
        ``gpu`` is None unless ``device`` is cuda and a GPU is present.
    """
    return {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cores_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
        "gpu": _gpu_name() if device == "cuda" else None,
        "platform": platform.platform(),
        "versions": {"python": platform.python_version()} | _versions(),
        "git_sha": git_sha(),
    }


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo, or what ``platform`` knows."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _versions() -> dict:
    found = {}
    for name, distributions in _PACKAGES.items():
        found[name] = None
        for distribution in distributions:
            try:
                found[name] = metadata.version(distribution)
                break
            except metadata.PackageNotFoundError:
                continue
    if found["edgernn"] is None:  # run from a source tree that is not installed
        from edgernn import __version__

        found["edgernn"] = __version__
    return found


def _gpu_name() -> str | None:
    import torch

    return torch.cuda.get_device_name(0) if torch.cuda.is_available() else None


def git_sha() -> str | None:
    """The commit of the edgernn source tree in use, or None outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            cwd=Path(__file__).resolve().parent,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return (result.stdout.strip() or None) if result.returncode == 0 else None
