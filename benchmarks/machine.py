"""What a measurement ran on: the machine, the library versions, reformer-ko's commit and the load of the cores."""

import os
import platform
import subprocess
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]


def machine_and_versions(device, threads):
    """Date, platform, processor, cores, torch threads, Python, torch, transformers, reformer-pytorch, the commit;
    on a GPU also its name, memory and CUDA version."""
    import transformers

    info = dict(
        date=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        platform=platform.platform(),
        processor=cpu_model(),
        cpu_count=os.cpu_count(),
        torch_threads=threads,
        python=platform.python_version(),
        torch=torch.__version__,
        transformers=transformers.__version__,
        reformer_pytorch=package_version("reformer-pytorch"),
        reformer_ko_commit=git_commit(),
    )
    if torch.device(device).type == "cuda":
        properties = torch.cuda.get_device_properties(0)
        info.update(
            gpu=properties.name, gpu_memory_gib=round(properties.total_memory / 2**30, 1), cuda=torch.version.cuda
        )
    return info


def load_average():
    """The 1-minute load average (other processes competing for the cores), or None."""
    try:
        return os.getloadavg()[0]
    except OSError:
        return None


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def package_version(name):
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def git_commit():
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
