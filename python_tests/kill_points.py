"""Killing a training process at an exact instant, for the tests of --resume.

:data:`KILL_HOOK` is Python source to put at the top of a ``python -c`` script:
it wraps ``os.replace`` (the rename that ends every atomic write of fkd_ops) so
that the process SIGKILLs itself when it is about to install the file that the
FKD_TEST_KILL_AT environment variable names, after cutting the temporary file in
half as a write interrupted midway would leave it. ``NAME:N`` waits for the
version of NAME that records N epochs (a checkpoint's epochs, a history's rows).
Every install is printed as ``INSTALL <name> <epochs>`` so a test can tell what
a process wrote. Deterministic: the kill comes at that instant, not after a sleep.
"""

from __future__ import annotations

KILLED = -9
"""subprocess' return code of a process that died of SIGKILL."""

KILL_HOOK = r"""
import json as _json, os as _os, signal as _signal, zipfile as _zipfile

_real_replace = _os.replace
_kill_name, _, _kill_epochs = _os.environ.get("FKD_TEST_KILL_AT", "").partition(":")


def _epochs_in(path, name):
    if name.endswith(".keras") and _zipfile.is_zipfile(path):
        with _zipfile.ZipFile(path) as archive:
            if "fkd_ops_run_state.json" in archive.namelist():
                return str(_json.loads(archive.read("fkd_ops_run_state.json"))["epochs_done"])
    if name.endswith(".csv"):
        with open(path) as f:
            return str(sum(1 for _ in f) - 1)
    return ""


def _replace(src, dst, **kwargs):
    name = _os.path.basename(_os.fspath(dst))
    epochs = _epochs_in(_os.fspath(src), name)
    print("INSTALL", name, epochs, flush=True)
    if name == _kill_name and (not _kill_epochs or epochs == _kill_epochs):
        _os.truncate(src, _os.path.getsize(src) // 2)
        _os.kill(_os.getpid(), _signal.SIGKILL)
    return _real_replace(src, dst, **kwargs)


_os.replace = _replace
"""
