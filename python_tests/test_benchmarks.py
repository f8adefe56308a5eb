"""The benchmark harness keeps working: `benchmarks/run.py --quick` end to end,
and the pieces it is built from. Structure only: no assertion about speed."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))  # for `benchmarks`; an installed fkd_ops still comes first

from benchmarks import run as runner  # noqa: E402
from benchmarks.report import ratio_row, section, timing_row  # noqa: E402
from benchmarks.timing import Timing, interleaved, net_of_floor  # noqa: E402


def test_interleaved_rotates_the_order_and_reports_per_unit():
    calls: list[str] = []
    contenders = {name: (lambda n=name: calls.append(n)) for name in "abc"}
    result = interleaved(contenders, rounds=3, warmup=1, units={"a": 1, "b": 2, "c": 4})
    # Round r starts with contender r % 3: no contender always runs first.
    assert calls == list("abcbcacababc")
    assert set(result) == set("abc")
    assert all(t.rounds == 3 and 0 <= t.q1_s <= t.median_s <= t.q3_s for t in result.values())


def test_interleaved_refuses_no_rounds_or_no_contenders():
    with pytest.raises(ValueError, match="rounds"):
        interleaved({"a": lambda: None}, rounds=0)
    with pytest.raises(ValueError, match="contenders"):
        interleaved({}, rounds=1)


def test_net_of_floor_subtracts_the_no_work_call_and_never_goes_negative():
    t = {n: Timing(median_s=m, q1_s=m, q3_s=m, rounds=1) for n, m in {"floor": 2.0, "op": 5.0, "noise": 1.5}.items()}
    assert net_of_floor(t, "floor") == {"op": 3.0, "noise": 0.0}


def test_ratio_rows_say_whether_the_target_is_met():
    assert ratio_row("B=1", "x", 3.2, 3.0)["met"] is True
    assert ratio_row("B=1", "x", 2.9, 3.0)["met"] is False
    assert ratio_row("B=1", "x", 2.9)["met"] is None


def test_render_prints_tables_and_falls_back_for_other_shapes():
    t = Timing(median_s=2e-6, q1_s=1e-6, q3_s=3e-6, rounds=5)
    text = runner.render(
        "demo",
        section(
            "Demo",
            "how",
            [timing_row("B=1", "op", t, gb_per_s=1.5)],
            [ratio_row("B=1", "twin / op", 4.0, 3.0)],
            ["a note"],
        ),
    )
    assert "median_us" in text and "gb_per_s" in text and "twin / op" in text and "note: a note" in text
    other = runner.render("reader", {"title": "Reader", "seconds": 1.25, "rows": 7049})
    assert "seconds: 1.25" in other and "rows: 7049" in other


def test_sections_are_the_benchmark_modules_present(tmp_path):
    names = runner.discover()
    on_disk = {p.stem.removesuffix("_benchmark") for p in (ROOT / "benchmarks").glob("*_benchmark.py")}
    assert set(names) == on_disk
    assert names[:2] == ["masked_rmse", "flip_normalize"]


def test_write_json_replaces_the_file_whole(tmp_path):
    path = tmp_path / "out" / "b.json"
    runner.write_json(path, {"a": 1})
    runner.write_json(path, {"a": 2})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["b.json"]  # no temporary left behind
    with pytest.raises(TypeError):
        runner.write_json(path, {"a": object()})
    assert json.loads(path.read_text()) == {"a": 2}
    assert [p.name for p in path.parent.iterdir()] == ["b.json"]


def test_a_failing_section_is_recorded_and_fails_the_run(tmp_path, monkeypatch, capsys):
    class Broken:
        @staticmethod
        def run(quick):
            raise RuntimeError("no data here")

    class Fine:
        @staticmethod
        def run(quick):
            return {"title": "Fine", "quick": quick}

    modules = {"benchmarks.masked_rmse_benchmark": Broken, "benchmarks.flip_normalize_benchmark": Fine}
    monkeypatch.setattr(runner.importlib, "import_module", lambda name: modules[name])
    out = tmp_path / "r.json"
    code = runner.main(["--quick", "--only", "masked_rmse", "flip_normalize", "--json", str(out)])
    assert code == 1
    report = json.loads(out.read_text())
    assert report["failed"] == ["masked_rmse"]
    assert "no data here" in report["sections"]["masked_rmse"]["error"]
    assert report["sections"]["flip_normalize"] == {"title": "Fine", "quick": True}
    assert "quick: true" in capsys.readouterr().out


@pytest.mark.slow
def test_quick_run_writes_every_section_with_ratios_and_targets(tmp_path):
    out = tmp_path / "bench.json"
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--json", str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["quick"] is True and report["failed"] == []
    assert list(report["sections"]) == runner.discover()
    assert "tensorflow" in report["machine"]
    assert "== targets" in proc.stdout

    rmse = report["sections"]["masked_rmse"]
    floor = "tf.function call floor (no work)"
    contenders = {"fkd_ops op (graph)", "pure-TF twin (graph)", "pure-TF twin (XLA)"}
    for batch in (128, 4096):
        for method, extra in (("chained", {floor}), ("per call", {floor})):
            rows = [r for r in rmse["timings"] if r["case"] == f"B={batch}" and r["method"] == method]
            assert {r["contender"] for r in rows} == contenders | extra
    flip = report["sections"]["flip_normalize"]
    contenders = {"fkd_ops fused op (graph)", "pure-TF twin (graph)", "pure-TF twin (XLA)", "numpy copy, same bytes"}
    for batch in (128, 1024):
        for method, extra in (("chained", {floor}), ("per call", {floor})):
            rows = [r for r in flip["timings"] if r["case"] == f"B={batch}" and r["method"] == method]
            assert {r["contender"] for r in rows} == contenders | extra
            assert all(r["gb_per_s"] > 0 for r in rows if r["contender"] != floor)

    for name in ("masked_rmse", "flip_normalize"):
        result = report["sections"][name]
        assert result["method"]
        for row in result["timings"]:
            assert math.isfinite(row["median_us"]) and row["median_us"] > 0
        targeted = [r for r in result["ratios"] if r["target"] is not None]
        assert len(targeted) == 4  # two targets at each of two batch sizes
        for r in targeted:
            assert math.isfinite(r["value"]) and r["value"] > 0
            assert r["met"] == (r["value"] >= r["target"])

    training = report["sections"]["training"]
    assert training["method"]
    ours, twin = "fkd_ops pipeline + op loss", "pure-TF pipeline + twin loss"
    for network in ("linear", "hidden", "cnn"):
        rows = {r["contender"]: r for r in training["timings"] if r["case"] == network}
        assert set(rows) == {ours, twin}
        for r in rows.values():
            assert math.isfinite(r["median_us"]) and r["median_us"] > 0
            assert r["images_per_s"] == pytest.approx(1e6 / r["median_us"])
            assert r["images_per_s_q1"] <= r["images_per_s"] <= r["images_per_s_q3"]
        check = training["checks"][network]
        assert check["parameters"] > 0 and check["max_abs_weight_diff"] < 1e-4
    alone = [r for r in training["timings"] if r["case"] == "pipeline alone"]
    assert {r["contender"] for r in alone} == {"fkd_ops pipeline", "pure-TF pipeline"}
    targeted = [r for r in training["ratios"] if r["target"] is not None]
    assert [r["case"] for r in targeted] == ["linear", "hidden", "cnn"]
    for r in targeted:
        assert r["target"] == 1.0 and math.isfinite(r["value"]) and r["value"] > 0
        assert r["met"] == (r["value"] >= r["target"])
