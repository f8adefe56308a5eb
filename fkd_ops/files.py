"""Writing output files so that a failure never leaves half a file behind."""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "w", **open_kwargs) -> Iterator[BinaryIO]:
    """Opens a temporary file beside ``path``; renames it onto ``path`` only if the
    block finishes without an exception (the rename is atomic on POSIX).

    The file gets the permissions a plain ``open(path, "w")`` would give it: those
    of the file it replaces, else 0o666 less the umask (tempfile.mkstemp's 0o600
    would make every output private)."""
    path = _not_a_folder(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_beside(path)
    try:
        with os.fdopen(fd, mode, **open_kwargs) as handle:
            with contextlib.suppress(FileNotFoundError):
                os.chmod(handle.fileno(), os.stat(path).st_mode & 0o7777)
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def _not_a_folder(path: str | os.PathLike) -> Path:
    """``path``, refused when it is a folder: the rename would fail only after all
    the writing, with an error naming our temporary file instead."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder: give the name of the file to write")
    return path


def _create_beside(path: Path) -> tuple[int, str]:
    """Creates a new, uniquely named file beside ``path`` with mode 0o666 (which
    the kernel reduces by the umask, as for any new file); returns (fd, name)."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    while True:
        tmp = str(path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp")
        try:
            return os.open(tmp, flags, 0o666), tmp
        except FileExistsError:
            continue


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """For writers that take a file name rather than a handle (and may insist on
    its extension, as Keras' ``model.save`` does): yields a path with ``path``'s
    name in a new temporary folder beside it, and moves the file written there
    onto ``path`` only if the block finishes without an exception."""
    path = _not_a_folder(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    folder = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        tmp = folder / path.name
        yield tmp
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Writes ``data`` as indented JSON, atomically."""
    with atomic_write(path, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=2, sort_keys=False)
        f.write("\n")
