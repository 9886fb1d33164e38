import re

import pytest

from gfcore.config import compose, to_typed
from gfcore.core.errors import ConfigError
from gfcore.tracking.params import config_params, flatten, run_tags


def test_flatten_dotted_keys():
    flat = flatten({"train": {"lr0": 0.01, "extra": {}}, "task": {"classes": ["a", "b"]}, "site": {"zone": "yard"}})
    assert flat == {"train.lr0": "0.01", "train.extra": "{}", "task.classes": '["a", "b"]', "site.zone": "yard"}


def test_long_values_are_cut_not_fatal():
    assert len(flatten({"x": "y" * 10000})["x"]) == 6000


def test_params_cover_the_whole_resolved_config():
    params = config_params(to_typed(compose(["scenario=smoke"])))
    for key, value in {"site.customer": "demo", "model.imgsz": "64", "train.epochs": "2", "train.lr0": "0.002",
                       "task.type": "ppe", "backend.name": "pytorch", "data.demo.train_images": "16",
                       "exp.scenario": "smoke"}.items():
        assert params[key] == value


def test_run_tags():
    cfg = to_typed(compose(["scenario=smoke"]))
    tags = run_tags(cfg, "train", "abc123", source_run_id="r1")
    assert tags == {**tags, "exp.type": "train", "exp.version": "v1", "exp.design": "single", "gf.scenario": "smoke",
                    "site.customer": "demo", "site.region": "local", "site.plant": "plant1", "site.zone": "yard",
                    "task.type": "ppe", "task.classes": "helmet,vest", "data.version": "v1", "data.hash": "abc123",
                    "source.run_id": "r1"}


def test_each_kind_of_run_records_only_the_sections_it_uses():
    cfg = to_typed(compose(["scenario=smoke"]))
    sections = {kind: {k.split(".", 1)[0] for k in config_params(cfg, kind)}
                for kind in ("train", "quant", "infer", "sweep", "pipeline", "compare")}
    assert {"train", "backend", "registry"} <= sections["train"]
    assert not sections["train"] & {"sweep", "compare", "pipeline", "quant", "infer"}
    assert "quant" in sections["quant"] and "train" not in sections["quant"]
    assert "infer" in sections["infer"] and "train" not in sections["infer"]
    assert "sweep" in sections["sweep"] and "compare" not in sections["sweep"]
    # A pipeline covers every backend, so it claims none.
    assert "pipeline" in sections["pipeline"] and "backend" not in sections["pipeline"]
    assert "compare" in sections["compare"] and "backend" not in sections["compare"]


def test_scenario_tags_are_run_tags_from_a_file_or_the_command_line():
    from_cli = to_typed(compose(["scenario=smoke", "+exp.tags.purpose=baseline", "+exp.tags.ticket=123"]))
    as_map = to_typed(compose(["scenario=smoke", "exp.tags={purpose: baseline, ticket: SAFE-123}"]))
    plain = to_typed(compose(["scenario=smoke", "exp.tags.purpose=baseline"]))  # the map is open: no `+` needed
    assert from_cli.exp.tags == {"purpose": "baseline", "ticket": "123"}  # a number is a string: tags are text
    assert as_map.exp.tags == {"purpose": "baseline", "ticket": "SAFE-123"} and plain.exp.tags == {"purpose": "baseline"}
    tags = run_tags(as_map, "train", "abc123")
    assert tags["purpose"] == "baseline" and tags["ticket"] == "SAFE-123" and tags["exp.type"] == "train"
    assert config_params(as_map, "train")["exp.tags.ticket"] == "SAFE-123"
    # Every kind of run carries them (owned_run and the sweep parent take run_tags).
    for kind in ("quant", "infer", "sweep", "pipeline", "compare", "challenge"):
        assert run_tags(as_map, kind, "abc123")["purpose"] == "baseline"


def test_scenario_tags_from_a_scenario_file_reach_child_steps(tmp_path):
    """A pipeline's or compare's child steps get the user's overrides (one `overrides` parameter, split again by the
    child) and the scenario's own tags with its file."""
    from gfcore.config.compose import split_overrides
    from gfcore.orchestration.steps import Step, compose_step

    overrides = ["exp.tags={purpose: baseline, ticket: SAFE-123}", "+exp.tags.owner=kim"]
    child = split_overrides([" ".join(overrides)])
    assert child == overrides
    cfg = compose_step(Step("quant openvino_int8", "quant", "smoke", [*child, "backend=openvino_int8"], "r1"))
    assert cfg.exp.tags == {"purpose": "baseline", "ticket": "SAFE-123", "owner": "kim"}


@pytest.mark.parametrize("override, message", [
    ("exp.tags={exp.type: x}", "'exp.type' is in GuardianFlow's own namespace 'exp.'"),
    ("+exp.tags={gf.scenario: x}", "'gf.scenario' is in GuardianFlow's own namespace 'gf.'"),
    ("+exp.tags={mlflow.user: x}", "'mlflow.user' is in MLflow's own namespace 'mlflow.'"),
    ("+exp.tags={site.customer: x}", "namespace 'site.'"),
    ("+exp.tags.run_id=x", "'run_id' is a tag GuardianFlow writes itself"),
    ("exp.tags={purpose: [a, b]}", "a tag's value is one string"),
    ("+exp.tags={a/../b: x}", "cannot be a tag name"),
])
def test_scenario_tags_that_clash_are_refused_at_composition(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        to_typed(compose(["scenario=smoke", override]))


def test_every_name_of_the_vocabulary_is_refused_as_a_scenario_tag():
    from gfcore.core import vocabulary

    names = [v for k, v in vars(vocabulary).items() if k.isupper() and isinstance(v, str) and not v.startswith(".")]
    for name in names:
        probe = name + "x" if name.endswith((".", "/")) else name
        assert vocabulary.own_tag(probe), f"{name} ({probe}) could be a scenario's own tag"
    assert vocabulary.own_tag("purpose") is None and vocabulary.own_tag("ticket") is None
