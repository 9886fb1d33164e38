from gfcore.config import compose, to_typed
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
