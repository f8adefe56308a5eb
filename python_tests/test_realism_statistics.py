"""benchmarks/realism.py's label-free statistics mean what the report says: two
samples of one kind of face look alike by them, and a visibly different kind
does not. (The real faces they are meant for are not in the repository.)"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # for `benchmarks`; an installed fkd_ops still comes first

from benchmarks.realism import statistics  # noqa: E402
from fkd_ops.data.synthetic import generate_faces  # noqa: E402


def test_alike_sets_look_alike_and_different_sets_do_not():
    reference = generate_faces(20, seed=1).images  # stands in for the 20 real faces
    same_kind = generate_faces(200, seed=2).images
    alike = statistics(reference, same_kind)["gaps"]
    assert 0.25 < alike["real_vs_synthetic_auc"] < 0.75
    assert alike["intensity_w1"] < 8 and alike["spectrum_db_rms"] < 1.5
    assert alike["mean_face_correlation"] > 0.8

    negatives = 255 - same_kind  # the same faces in negative: every statistic of tone changes
    apart = statistics(reference, negatives)["gaps"]
    assert apart["real_vs_synthetic_auc"] > 0.95
    assert apart["mean_face_correlation"] < alike["mean_face_correlation"] - 0.5
