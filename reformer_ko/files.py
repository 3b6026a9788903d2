"""Writing files so that a kill at any moment leaves either the old version or the new one: each is written beside
its final place, flushed to disk, then renamed into it (a rename within a file system is atomic)."""

import os
import shutil
import uuid
from pathlib import Path

# Written last when a model directory is moved into place: a directory without it is visibly incomplete.
_MOVED_LAST = ("config.json",)


def fsync_tree(directory):
    """Flush every file under `directory` to disk, so that a rename never publishes data still in flight."""
    for root, _, files in os.walk(directory):
        for name in files:
            descriptor = os.open(os.path.join(root, name), os.O_RDONLY)
            try:
                os.fsync(descriptor)
            finally:
                os.close(descriptor)


def fsync_directory(directory):
    """Flush a directory's entries (a rename inside it) to disk."""
    descriptor = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def write_atomically(path, text: str):
    """Write `text` to `path` through a temporary file in the same directory and one rename."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.tmp")
    with open(temporary, "w", encoding="utf-8") as file:
        file.write(text)
        file.flush()
        os.fsync(file.fileno())
    os.replace(temporary, path)
    fsync_directory(path.parent)


def move_contents(source, destination):
    """Move every file under `source` to the same place under `destination`, each in one rename, `config.json`
    last: a model directory caught halfway has no config and does not load."""
    os.makedirs(destination, exist_ok=True)
    names = sorted(os.listdir(source), key=lambda name: (name in _MOVED_LAST, name))
    for name in names:
        origin, target = os.path.join(source, name), os.path.join(destination, name)
        if os.path.isdir(origin):
            if os.path.exists(target) and not os.path.isdir(target):
                os.remove(target)
            move_contents(origin, target)
        else:
            if os.path.isdir(target):
                shutil.rmtree(target)
            os.replace(origin, target)
    fsync_directory(destination)


def replace_directory(staging, output_dir) -> None:
    """Put the finished directory `staging` in the place of `output_dir` by renames; if the second rename fails the
    old directory is put back, so `output_dir` always holds the old or the new directory whole."""
    staging, output_dir = Path(staging), Path(output_dir)
    if not output_dir.exists():
        os.rename(staging, output_dir)
        return
    retired = output_dir.parent / f".{output_dir.name}.replaced-{uuid.uuid4().hex[:12]}"
    os.rename(output_dir, retired)
    try:
        os.rename(staging, output_dir)
    except BaseException:
        os.rename(retired, output_dir)
        raise
    shutil.rmtree(retired, ignore_errors=True)
