"""The package is the product: a wheel of reformer-ko, installed into a fresh virtual environment, runs the whole road
(`reformer-ko demo`) from a directory that is not the clone, with nothing of the clone importable."""

import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from pretraining_fixtures import ROOT, script_environment


def run(command, cwd, tmp_path, timeout=600):
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=script_environment(tmp_path),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def fresh_venv_with_the_wheel(tmp_path) -> Path:
    """A new virtual environment holding the reformer-ko wheel built from this tree; the project's dependencies come
    from the test's own environment through a path file (its .pth files, e.g. an editable install of this clone,
    are not processed)."""
    # Built from a copy of what a source distribution holds: a build in the clone would leave build/ there.
    source = tmp_path / "source"
    for name in ("setup.py", "setup.cfg", "README.md", "LICENSE"):
        source.mkdir(exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "reformer_ko", source / "reformer_ko", ignore=shutil.ignore_patterns("__pycache__"))
    build = [sys.executable, "-m", "pip", "wheel", source, "--no-deps", "--no-build-isolation", "-w", tmp_path / "dist"]
    run(build, tmp_path, tmp_path)
    (wheel,) = (tmp_path / "dist").glob("reformer_ko-*.whl")
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv], tmp_path, tmp_path)
    python = venv / "bin" / "python"
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"], tmp_path, tmp_path)
    site_packages = Path(purelib.stdout.strip())
    (site_packages / "project_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index", wheel], tmp_path, tmp_path)
    return venv


def test_the_installed_wheel_runs_the_demo_outside_the_clone(tmp_path):
    venv = fresh_venv_with_the_wheel(tmp_path)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = run([venv / "bin" / "python", "-c", "import reformer_ko; print(reformer_ko.__file__)"], elsewhere, tmp_path)
    assert Path(where.stdout.strip()).is_relative_to(venv) and not Path(where.stdout.strip()).is_relative_to(ROOT)

    demo = run([venv / "bin" / "reformer-ko", "demo", "--steps", 20, "--qa-steps", 10], elsewhere, tmp_path)
    summary = demo.stdout[demo.stdout.index("reformer-ko demo: summary") :]
    assert "EM " in summary and "pipeline" in summary
    checkpoint = elsewhere / "outputs" / "demo" / "korquad"
    assert (checkpoint / "model.safetensors").is_file() and (checkpoint / "modeling_reformer_ko.py").is_file()
    assert (elsewhere / "outputs" / "demo" / "demo.log").stat().st_size > 0
