"""Configs outside the package: GF_CONFIG_PATH folders in front of conf/, `scenario=PATH.yaml`, Hydra's own
`hydra.searchpath`, `guardianflow site add`, and the errors that name the file; the slow tests run a site kept in
an outside folder through `full_pipeline` (every child step finds it) and a joblib sweep."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from gfcore.config import searchpath
from gfcore.config.compose import compose, compose_root, compose_typed
from gfcore.core.errors import ConfigError
from gfcore.tracking.naming import experiment_name
from tests.conftest import run_entrypoint, runs_of

SITE = "customer: acme\nregion: north\nplant: plant1\nzone: gate\nlatency_budget_ms: 40\n"
SCENARIO = """\
# @package _global_
defaults:
  - smoke
  - override /site: acme_north_gate

exp:
  scenario: acme_gate
"""
EXPERIMENT = "acme/north-plant1/gate"


def _write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


@pytest.fixture
def fleet(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A config folder outside the package with one site and a scenario building on `smoke`; GF_CONFIG_PATH unset,
    and unset again after the test (`searchpath.prepare`, as a launch does, sets it for child processes)."""
    root = tmp_path / "fleet-conf"
    _write(root / "site" / "acme_north_gate.yaml", SITE)
    _write(root / "scenario" / "acme_gate.yaml", SCENARIO)
    monkeypatch.setenv(searchpath.ENV, "")  # recorded, so that teardown restores what was there before
    monkeypatch.delenv(searchpath.ENV)
    return root


def test_outside_site_and_scenario_build_on_the_package(fleet, monkeypatch):
    monkeypatch.setenv(searchpath.ENV, str(fleet))
    cfg = compose_typed(["scenario=acme_gate"])
    assert (cfg.site.customer, cfg.site.zone, cfg.site.latency_budget_ms) == ("acme", "gate", 40)
    assert cfg.exp.scenario == "acme_gate"
    assert (cfg.model.imgsz, cfg.train.epochs) == (64, 2)  # smoke's settings, from the package
    assert experiment_name(cfg.site) == EXPERIMENT


def test_outside_folders_come_first_in_order(fleet, tmp_path, monkeypatch):
    first = tmp_path / "first"
    _write(first / "site" / "demo.yaml", SITE.replace("acme", "first"))
    _write(fleet / "site" / "demo.yaml", SITE)
    monkeypatch.setenv(searchpath.ENV, f"{first}{os.pathsep}{fleet}")
    assert compose_typed([]).site.customer == "first"  # shadows the package's site `demo`
    monkeypatch.setenv(searchpath.ENV, "relative-is-made-absolute")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "relative-is-made-absolute").mkdir()
    compose([])
    assert os.environ[searchpath.ENV] == "relative-is-made-absolute", "a composition leaves the environment as it was"
    searchpath.prepare([])  # what a launch does before starting child processes
    assert os.environ[searchpath.ENV] == str(tmp_path / "relative-is-made-absolute")


def test_hydra_searchpath_on_the_command_line(fleet):
    cfg = compose_typed([f"hydra.searchpath=[file://{fleet}]", "scenario=acme_gate"])
    assert cfg.site.customer == "acme"
    assert searchpath.ENV not in os.environ, "a composition leaves the environment as it was"
    searchpath.prepare([f"hydra.searchpath=[file://{fleet}]"])  # a launch: child steps inherit it
    assert os.environ[searchpath.ENV] == str(fleet)


def test_scenario_file_by_path(fleet, tmp_path, monkeypatch):
    loose = _write(tmp_path / "anywhere" / "my_try.yaml",
                   "# @package _global_\ndefaults:\n  - smoke\n  - override /site: sampyo_gimhae_bct\n"
                   "train:\n  epochs: 3\n")
    cfg = compose_typed([f"scenario={loose}"])
    assert (cfg.site.customer, cfg.train.epochs, cfg.model.imgsz) == ("sampyo", 3, 64)
    monkeypatch.chdir(tmp_path)
    assert compose_typed(["scenario=anywhere/my_try.yaml"]).train.epochs == 3  # relative: from the current folder
    # A file in a config folder's scenario/: the folder joins the search path, so its own site is found.
    cfg = compose_typed([f"scenario={fleet / 'scenario' / 'acme_gate.yaml'}"])
    assert cfg.site.customer == "acme" and searchpath.ENV not in os.environ
    searchpath.prepare([f"scenario={fleet / 'scenario' / 'acme_gate.yaml'}"])  # a launch: child steps find it too
    assert os.environ[searchpath.ENV] == str(fleet)


def test_site_add_writes_a_site_that_composes_and_never_overwrites(fleet, tmp_path, monkeypatch, capsys):
    from gfcore.cli import main

    target = tmp_path / "conf-repo"
    assert main(["site", "add", "acme", "south", "plant2", "dock", "--task", "fall", "--config-dir",
                 str(target)]) == 0
    site, scenario = target / "site" / "acme_south_plant2_dock.yaml", target / "scenario" / "acme_south_plant2_dock.yaml"
    said = capsys.readouterr().out
    assert site.is_file() and scenario.is_file() and f"wrote {scenario}" in said
    assert "note: the demo set draws helmet, vest, task fall detects person, fallen" in said
    monkeypatch.setenv(searchpath.ENV, str(target))
    cfg = compose_typed(["scenario=acme_south_plant2_dock"])
    assert (cfg.site.zone, cfg.task.type.value, cfg.exp.scenario) == ("dock", "fall", "acme_south_plant2_dock")
    before = scenario.read_text()
    assert main(["site", "add", "acme", "south", "plant2", "dock", "--task", "ppe"]) == 2  # default: GF_CONFIG_PATH
    assert "exists and is not overwritten" in capsys.readouterr().err and scenario.read_text() == before


def test_site_add_refusals(fleet, tmp_path, capsys):
    from gfcore.cli import main

    assert main(["site", "add", "acme", "south", "plant2", "dock", "--task", "ppe"]) == 2
    assert "pass --config-dir" in capsys.readouterr().err
    target = tmp_path / "conf-repo"
    assert main(["site", "add", "acme", "south", "plant2", "dock/2", "--task", "ppe", "--config-dir",
                 str(target)]) == 2
    assert "site.zone='dock/2' cannot be part of an experiment" in capsys.readouterr().err
    assert main(["site", "add", "acme", "south", "plant2", "dock", "--task", "nope", "--config-dir",
                 str(target)]) == 2
    assert "Could not find 'task/nope'" in capsys.readouterr().err
    assert not list(target.rglob("*.yaml"))  # nothing left behind by a site that does not compose


def test_bad_input_names_the_folder_or_file(fleet, tmp_path, monkeypatch):
    monkeypatch.setenv(searchpath.ENV, f"{fleet}{os.pathsep}{tmp_path / 'missing'}")
    with pytest.raises(ConfigError, match=f"config folder {tmp_path / 'missing'} does not exist"):
        compose([])
    monkeypatch.setenv(searchpath.ENV, str(fleet))
    bad = _write(tmp_path / "bad.yaml", "# @package _global_\ndefaults:\n  - smoke\ntrain:\n  epochz: 3\n")
    with pytest.raises(ConfigError, match=f"In {bad}: .*\n.*Key 'epochz' not in 'TrainConfig'"):
        compose([f"scenario={bad}"])
    _write(fleet / "scenario" / "typo.yaml", SCENARIO + "model:\n  imgsize: 64\n")
    with pytest.raises(ConfigError, match=r"In 'scenario/typo' \(file .*typo.yaml\).*\n.*imgsize"):
        compose(["scenario=typo"])
    _write(fleet / "site" / "slash.yaml", SITE.replace("zone: gate", "zone: gate/2"))
    with pytest.raises(ConfigError, match=r"site.zone='gate/2' cannot be part.*site slash: .*site/slash.yaml"):
        compose_typed(["scenario=acme_gate", "site=slash"])
    with pytest.raises(ConfigError, match="the scenario file .*nowhere.yaml does not exist"):
        compose(["scenario=nowhere.yaml"])


def test_outside_config_roots_of_their_own(fleet, monkeypatch):
    """conf/alerts and conf/automation: the same subfolder of an outside folder comes first."""
    from gfcore.config.automation import AlertsConfig

    assert compose_root("alerts", AlertsConfig).rules["low_accuracy"].threshold == 0.75
    _write(fleet / "alerts" / "default.yaml", (searchpath.CONF_DIR / "alerts" / "default.yaml").read_text()
           .replace("threshold: 0.75", "threshold: 0.6", 1))
    monkeypatch.setenv(searchpath.ENV, str(fleet))
    assert compose_root("alerts", AlertsConfig).rules["low_accuracy"].threshold == 0.6
    assert searchpath.roots_for("/somewhere/else/conf") == []  # another Hydra app's search path is left alone


def test_child_steps_get_the_search_path(fleet, monkeypatch):
    from gfcore.cluster.ray_jobs import worker_env

    monkeypatch.setenv(searchpath.ENV, str(fleet))
    assert worker_env()[searchpath.ENV] == str(fleet)  # Ray workers' runtime_env
    assert searchpath.export_lines() == [f"export {searchpath.ENV}={fleet}"]  # a SLURM step's job script
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir

    with initialize_config_dir(config_dir=str(searchpath.CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("config", overrides=["scenario=smoke", "launcher=submitit_slurm"], return_hydra_config=True)
        assert list(cfg.hydra.launcher.setup) == [f"export {searchpath.ENV}='{fleet}'"]  # a SLURM sweep's jobs


def test_entry_point_refuses_before_any_run(fleet, tmp_path, mlflow_store):
    bad = _write(tmp_path / "bad.yaml", "# @package _global_\ndefaults:\n  - smoke\ntrain:\n  epochz: 3\n")
    for args, env, said in (
            ([f"scenario={bad}"], {}, f"In {bad}"),
            (["scenario=smoke"], {searchpath.ENV: str(tmp_path / "missing")}, "does not exist"),
            (["scenario=acme_gate", "site.zone=a:b"], {searchpath.ENV: str(fleet)}, "acme_north_gate.yaml")):
        proc = run_entrypoint(["guardianflow.train", *args], mlflow_store, tmp_path, timeout=120, **env)
        assert proc.returncode == 2 and said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert runs_of(mlflow_store, EXPERIMENT) == [] and runs_of(mlflow_store) == []


@pytest.mark.slow
def test_outside_site_through_full_pipeline(fleet, tmp_path, mlflow_store):
    """Train -> quant onnx_fp32 -> infer x2 as child `mlflow run`s (in the project folder): each finds the site."""
    proc = run_entrypoint(["guardianflow.full_pipeline", f"scenario={fleet / 'scenario' / 'acme_gate.yaml'}",
                           "train.epochs=1", "tracking.system_metrics=false", "pipeline.quant_backends=[onnx_fp32]"],
                          mlflow_store, tmp_path, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = runs_of(mlflow_store, EXPERIMENT)
    kinds = sorted(r.data.tags["exp.type"] for r in runs)
    assert kinds == ["infer", "infer", "pipeline", "quant", "train"]
    assert all(r.info.status == "FINISHED" and r.data.params.get("site.zone") == "gate" for r in runs)
    assert {r.data.tags["gf.scenario"] for r in runs} == {"acme_gate"}
    assert runs_of(mlflow_store) == []  # nothing in the package's demo site


@pytest.mark.slow
def test_outside_site_through_a_joblib_sweep(fleet, tmp_path, mlflow_store):
    proc = run_entrypoint(["guardianflow.sweep", "scenario=acme_gate", "train.epochs=1", "registry.register=false",
                           "tracking.system_metrics=false", "train.lr0=0.001,0.01", "launcher=joblib",
                           f"hydra.sweep.dir={tmp_path}/multirun"], mlflow_store, tmp_path, timeout=600,
                          **{searchpath.ENV: str(fleet)})
    assert proc.returncode == 0, proc.stderr[-3000:]
    runs = runs_of(mlflow_store, EXPERIMENT)
    assert sorted(r.data.tags["exp.type"] for r in runs) == ["sweep", "train", "train"]
    assert len({r.data.tags.get("gf.sweep.pid") for r in runs if r.data.tags["exp.type"] == "train"}) == 2
    assert all(r.info.status == "FINISHED" for r in runs)  # the jobs composed in joblib's worker processes
