"""The README's Python example runs and does what its comments say."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

README = Path(__file__).resolve().parent.parent / "README.md"


def test_readme_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert blocks, "README.md has no ```python example"
    scope: dict = {}
    exec(compile(blocks[0], str(README), "exec"), scope)  # noqa: S102 - our own README
    kp, grad, result = scope["kp"].numpy(), scope["grad"].numpy(), scope["result"]
    missing = np.isnan(kp)
    assert np.all(grad[missing] == 0) and np.all(grad[~missing] != 0)
    assert int(result.count) == np.count_nonzero(~missing)
    x = scope["x"].numpy()
    assert x.dtype == np.float32 and 0.0 <= x.min() and x.max() <= 1.0


def test_readme_code_blocks_are_closed():
    # An unclosed fence turns the rest of the README into one code block.
    fences = [n for n, line in enumerate(README.read_text().splitlines(), 1) if line.startswith("```")]
    assert len(fences) % 2 == 0, f"README.md fences at lines {fences}: one is not closed"
