"""Shared pytest set-up: quiet TensorFlow, a deterministic hypothesis profile, and
the gradient-check summary printed at the end of the run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

# Before TensorFlow is imported anywhere (fkd_ops imports it).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# `python -m pytest` puts the working folder first on sys.path, so from the
# repository root `import fkd_ops` would load the source folder, which holds no
# compiled library after a regular `pip install .`. Test the installed package
# instead. (Editable installs are unaffected: their import hook maps fkd_ops to
# the source folder and the built files wherever they are.)
_ROOT = Path(__file__).resolve().parent.parent
if not (_ROOT / "fkd_ops" / "_fkd_ops_tf.so").exists():
    sys.path[:] = [p for p in sys.path if Path(p or os.curdir).resolve() != _ROOT]

from hypothesis import HealthCheck, settings  # noqa: E402

# Modest and reproducible: derandomize makes every run draw the same examples,
# so a failure seen once is seen again (and CI is not flaky).
settings.register_profile(
    "fkd",
    max_examples=20,
    derandomize=True,
    deadline=None,
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
# For hunting bugs by hand: FKD_HYPOTHESIS_PROFILE=fkd-thorough (more examples, same
# draws every run) or fkd-explore (fresh random draws each run).
settings.register_profile("fkd-thorough", parent=settings.get_profile("fkd"), max_examples=300)
settings.register_profile("fkd-explore", parent=settings.get_profile("fkd"), max_examples=200, derandomize=False)
settings.load_profile(os.environ.get("FKD_HYPOTHESIS_PROFILE", "fkd"))


def pytest_terminal_summary(terminalreporter, exitstatus, config):  # noqa: ARG001
    """Prints the largest gradient-check error seen per op (tf.test.compute_gradient,
    float64), the figure the closing note of a release reports."""
    # Only where a test used it: importing it would import TensorFlow, which the
    # GPU kernel tests (python_tests/gpu) run without.
    gradcheck = sys.modules.get("gradcheck")
    if gradcheck is None or not gradcheck.MAX_ERRORS:
        return
    terminalreporter.section("largest gradient-check error per op (float64)")
    for op, (error, where) in sorted(gradcheck.MAX_ERRORS.items()):
        terminalreporter.write_line(f"{op:<24} {error:.3e}  ({where})")
    path = os.environ.get("FKD_GRADCHECK_SUMMARY")
    if path:
        gradcheck.write_summary(path)
