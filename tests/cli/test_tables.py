"""Tables for people (gfcore.cli.tables) on a seeded fleet: 120 columns, one rounding rule, figures named with their
units, raw numbers in --json, and a `next:` line after each decision command."""

from __future__ import annotations

import json
import re

import mlflow
import pytest
from mlflow.entities import Metric

from gfcore import cli
from gfcore.automation.rules import Alert
from gfcore.cli import alerts as alerts_cli
from gfcore.cli.challenge import next_step
from gfcore.cli.metrics import SUMMARY
from gfcore.cli.tables import Column, age, cell, table
from tests.fleet.seed import seed

MODEL = "acme.r-p1.gate.ppe"


@pytest.fixture
def fleet(mlflow_store):
    return seed(mlflow.MlflowClient())


def _out(capsys, *args: str) -> list[str]:
    capsys.readouterr()
    cli.main(list(args))
    return capsys.readouterr().out.splitlines()


def _columns(lines: list[str], header_at: int) -> list[dict[str, str]]:
    """The rows under the header line, sliced at the headers' starts (cells may hold single spaces)."""
    header = lines[header_at]
    names = re.split(r" {2,}", header.strip())
    starts = [header.index(n) for n in names]
    rows = []
    for line in lines[header_at + 1:]:
        if line.startswith(("(--wide", "next:")):
            break
        bounds = list(zip(starts, [*starts[1:], None]))
        rows.append({n: line[a:b].strip() for n, (a, b) in zip(names, bounds)})
    return rows


def test_summary_fits_120_columns_and_rounds_one_way(fleet, capsys):
    lines = _out(capsys, "metrics", "summary")
    assert all(len(line) <= 120 for line in lines), max(lines, key=len)
    assert not any("Downloading" in line or "Warning" in line for line in lines)
    rows = _columns(lines, 1)
    assert {"model", "champion for", "mAP50", "p50 ms", "challenge", "failed"} <= set(rows[0])
    acme = next(r for r in rows if r["model"] == MODEL)
    assert (acme["mAP50"], acme["p50 ms"], acme["failed"]) == ("0.800", "4.0", "1")
    for row in rows:
        assert re.fullmatch(r"\d\.\d{3}|-", row["mAP50"]) and re.fullmatch(r"\d+\.\d|-", row["p50 ms"])
        assert re.fullmatch(r"\d+ (min|h|d)|-", row["champion for"]) and re.fullmatch(r"\d+", row["failed"])
    assert lines[-2].startswith("(--wide: + ") and "HOTA" in lines[-2]
    assert lines[-1] == f"next: `guardianflow challenge {MODEL}` (its candidate v2 has no verdict yet)"


def test_summary_wide_and_json(fleet, capsys):
    lines = _out(capsys, "metrics", "summary", "--wide")
    assert re.split(r" {2,}", lines[1].strip()) == [c.title for c in SUMMARY]
    assert not any(line.startswith("(--wide") for line in lines)
    acme = next(r for r in _columns(lines, 1) if r["model"] == MODEL)
    assert (acme["HOTA"], acme["IDF1"], acme["serves"]) == ("0.700", "0.750", "__openvino_int8")
    rows = json.loads("\n".join(_out(capsys, "metrics", "summary", "--json")))
    acme = next(r for r in rows if r["model"] == MODEL)
    assert isinstance(acme["champion_days"], float) and 0 <= acme["champion_days"] < 1, "raw days, not `2 min`"
    assert (acme["det_mAP50"], acme["latency_p50_ms"], acme["failed_runs"]) == (0.8, 4.0, 1)
    assert acme["candidate_verdict"] is None


def test_versions_show_latency_verdict_and_raw_json(fleet, capsys):
    client = mlflow.MlflowClient()
    client.set_model_version_tag(MODEL, "2", "challenge.verdict", "better")
    client.set_model_version_tag(MODEL, "2", "challenge.champion_version", "1")
    lines = _out(capsys, "versions", MODEL)
    assert all(len(line) <= 120 for line in lines)
    rows = {r["version"]: r for r in _columns(lines, 0)}
    assert (rows["1"]["p50 ms"], rows["1"]["mAP50"], rows["2"]["challenge"]) == ("12.0", "0.800", "better vs v1")
    assert lines[-1] == f"next: `guardianflow promote {MODEL} --version 2`"
    summary = _columns(_out(capsys, "metrics", "summary"), 1)
    assert next(r for r in summary if r["model"] == MODEL)["challenge"] == "better"

    # A version's tags hold its figures to 6 digits, its run unrounded: --json gives the run's number, once.
    run = client.create_run(client.get_experiment_by_name("acme/r-p1/gate").experiment_id)
    client.log_batch(run.info.run_id, metrics=[Metric("sys.latency_p50_ms", 17.000741000174457, 0, 0)])
    client.create_model_version(MODEL, "runs:/x/model", run_id=run.info.run_id,
                                tags={"sys.latency_p50_ms": f"{17.000741000174457:.6g}", "eval.split": "test"})
    newest = json.loads("\n".join(_out(capsys, "versions", MODEL, "--json")))[0]
    assert newest["figures"] == {"sys.latency_p50_ms": 17.000741000174457}
    assert "sys.latency_p50_ms" not in newest["tags"] and newest["tags"]["eval.split"] == "test"
    older = json.loads("\n".join(_out(capsys, "versions", MODEL, "--json")))[-1]
    assert older["figures"]["sys.latency_p50_ms"] == 12.0, "a figure only the tag holds, as a number"
    assert (older["verdict"], older["verdict_against"]) == (None, None)


def test_compare_and_trend_name_the_figure_and_unit(fleet, capsys):
    lines = _out(capsys, "metrics", "compare", "--by", "backend", "--latency")
    assert lines[0].startswith("p50 latency, ms (lower is better) per backend")
    assert re.split(r" {2,}", lines[1]) == ["backend", "p50 ms mean", "p50 ms best", "runs"]
    assert re.split(r" {2,}", lines[2]) == ["openvino_int8", "4.1", "4.0", "2"]
    lines = _out(capsys, "metrics", "trend", "--days", "30")
    assert lines[0].startswith("det.mAP50 (higher is better) per day")
    assert re.split(r" {2,}", lines[1]) == ["site", "task", "day", "mAP50 mean", "runs", "mAP50 last run"]


def test_optimize_check_and_alerts_end_with_the_next_command(fleet, capsys):
    lines = _out(capsys, "optimize", "check", "--no-record")
    assert all(len(line) <= 120 for line in lines) and "would run" in "\n".join(lines)
    assert lines[-1] == "next: `guardianflow optimize run --yes` to launch what would run"
    lines = _out(capsys, "optimize", "check", "--no-record", "--model", MODEL)
    assert lines[-1].startswith(f"next: `guardianflow optimize run --yes --model {MODEL}`")
    lines = _out(capsys, "alerts", "list", "--no-record")
    assert all(len(line) <= 120 for line in lines)
    assert lines[-1] == "next: `guardianflow experiments --customer acme` (which runs failed)"


@pytest.mark.parametrize(("kind", "model", "command"), [
    ("candidate_worse", MODEL, f"guardianflow versions {MODEL}"),
    ("tracking_drop", MODEL, f"guardianflow rollback {MODEL}"),
    ("champion_below", MODEL, f"guardianflow optimize check --model {MODEL}"),
    ("latency_over_budget", f"{MODEL}__openvino_int8", f"guardianflow optimize check --model {MODEL}"),
    ("stale_champion", MODEL, f"guardianflow optimize check --model {MODEL}"),
    ("failed_runs", None, "guardianflow experiments --customer acme"),
])
def test_alert_next_step_per_rule(kind, model, command):
    alert = Alert("r", kind, "warning", "acme/r-p1/gate", model, "1", "message")
    assert alerts_cli.next_step(alert).startswith(f"next: `{command}`")


def test_challenge_next_step():
    promote = f"guardianflow promote {MODEL} --version 2"
    assert next_step(MODEL, None, "2", "1", "better") == f"next: `{promote}` (it beat champion v1)"
    assert next_step(MODEL, None, "2", None, "unopposed").startswith(f"next: `{promote}`")
    assert "keep champion v1" in next_step(MODEL, None, "2", "1", "worse") and promote not in next_step(
        MODEL, None, "2", "1", "worse")
    tie = next_step(MODEL, "openvino_int8", "2", "1", "tie", ["sys.latency_p95_ms"])
    assert "more timed calls" in tie and "images" not in tie
    assert f"`guardianflow challenge {MODEL} --candidate 2 --variant openvino_int8 latency.runs=400`" in tie
    assert f"`guardianflow promote {MODEL}__openvino_int8 --version 2` anyway" in tie
    assert "more images:" in next_step(MODEL, None, "2", "1", "tie", ["det.op.recall.helmet"])
    assert "no figure differs" in next_step(MODEL, None, "2", "1", "tie", [])


def test_table_drops_lowest_priority_then_cuts_text():
    rows = [{"name": "n" * 30, "why": "w" * 80, "extra": 0.123456, "ms": 4.04, "age": 3.5, "n": 7}]
    cols = [Column("name", cut=False), Column("why"), Column("extra", "rate", "rate", 2), Column("ms", "p50 ms", "ms"),
            Column("age", "for", "days", 1), Column("n", "runs", "count")]
    wide = table(rows, cols, wide=True).splitlines()
    assert re.split(r" {2,}", wide[1]) == ["n" * 30, "w" * 80, "0.123", "4.0", "3 d", "7"] and len(wide) == 2
    fitted = table(rows, cols, width=60).splitlines()
    assert all(len(line) <= 60 for line in fitted[:2]) and fitted[0].split() == ["name", "why", "p50", "ms", "runs"]
    assert fitted[1].split()[1].endswith("…") and fitted[2] == "(--wide: + rate, for; whole cells)"
    assert [age(d) for d in (0.001, 0.3, 2.9)] == ["1 min", "7 h", "2 d"]
    assert [cell(v, k) for v, k in ((None, "rate"), (True, "flag"), (2.0, "count"), (123.456, "number"))] == \
        ["-", "yes", "2", "123.5"]
