"""`guardianflow scan`: a draft registry from a generated tree of old experiment folders."""

from __future__ import annotations

import pytest
import yaml

from gfcore.core.errors import ConfigError
from gfcore.legacy.experiments_registry import load_registry
from gfcore.legacy.scan import write_draft

TRAIN = '''import argparse
p = argparse.ArgumentParser()
p.add_argument("--epochs", type=int, default=10)
p.add_argument("--batch-size", type=int, default=8)
p.add_argument("--amp", action="store_true")
args = p.parse_args()
'''


def _tree(base):
    ppe = base / "donghwa-entec-ppe"
    ppe.mkdir(parents=True)
    (ppe / "train.py").write_text(TRAIN)
    (ppe / "train (1).py").write_text(TRAIN)  # an exact copy
    (ppe / "train_old.py").write_text(TRAIN + "# old\n")
    (ppe / "export_trained_onnx.py").write_text("print('export')\n")
    (ppe / "eval_map.py").write_text("print('eval')\n")
    (ppe / "review.ipynb").write_text("{}")
    bct = base / "sampyo-gimhae-bct"
    bct.mkdir()
    (bct / "학습.py").write_text("print('train')\n")
    (bct / "stream_infer.py").write_text("print('infer')\n")
    (bct / "utils.py").write_text("X = 1\n")
    (base / "fire-smoke-gate").mkdir()


def test_scan_guesses_classifies_and_marks_what_to_fill(tmp_path):
    _tree(tmp_path / "old")
    out = write_draft(tmp_path / "old", tmp_path / "draft.yaml", force=False)
    text = out.read_text()
    draft = yaml.safe_load(text)["experiments"]
    assert set(draft) == {"donghwa-entec-ppe", "sampyo-gimhae-bct", "fire-smoke-gate"}

    ppe = draft["donghwa-entec-ppe"]
    assert ppe["path"] == "old/donghwa-entec-ppe"
    assert ppe["site"] == {"customer": "donghwa-entec", "region": "TODO", "plant": "TODO", "zone": "TODO"}
    assert ppe["task"] == {"type": "ppe", "classes": ["helmet", "vest"]}
    ep = ppe["entry_points"]
    assert ep["train"]["default"] == "train.py" and ep["train"]["patterns"] == ["train.py", "train_old.py"]
    assert ep["train"]["args_template"] == "--epochs {epochs} --batch-size {batch_size} --amp"
    assert ep["quant"]["default"] == "export_trained_onnx.py" and ep["infer"]["default"] == "eval_map.py"
    assert "train (1).py is a duplicate of train.py" in ppe["notes"]
    assert "train_old.py looks like a backup of train.py" in ppe["notes"]
    assert "notebook review.ipynb" in ppe["notes"]

    bct = draft["sampyo-gimhae-bct"]
    assert bct["site"]["customer"] == "sampyo" and bct["site"]["region"] == "gimhae" and bct["site"]["zone"] == "bct"
    assert bct["task"]["type"] == "TODO"
    assert bct["entry_points"]["train"]["default"] == "학습.py"
    assert bct["entry_points"]["infer"]["default"] == "stream_infer.py"
    assert "utils.py: kind unknown" in bct["notes"]
    assert draft["fire-smoke-gate"]["task"]["type"] == "fire" and draft["fire-smoke-gate"]["entry_points"] == {}

    # A draft with TODOs is refused until a person fills them in.
    with pytest.raises(ConfigError, match="experiment donghwa-entec-ppe: site.region, site.plant, site.zone still TODO"):
        load_registry(out)
    filled = (text.replace("customer: TODO", "customer: acme").replace("region: TODO", "region: busan").replace("plant: TODO", "plant: plant1")
              .replace("zone: TODO", "zone: welding").replace("type: TODO", "type: ppe")
              .replace("['TODO']", "[helmet, vest]"))
    out.write_text(filled)
    entries = load_registry(out)
    assert entries["donghwa-entec-ppe"].folder == (tmp_path / "old" / "donghwa-entec-ppe").resolve()


def test_scan_never_overwrites_without_force(tmp_path):
    _tree(tmp_path / "old")
    target = tmp_path / "experiments_registry.yaml"
    target.write_text("keep me\n")
    with pytest.raises(ConfigError, match="exists: pass --force"):
        write_draft(tmp_path / "old", target, force=False)
    assert target.read_text() == "keep me\n"
    write_draft(tmp_path / "old", target, force=True)
    assert "donghwa-entec-ppe" in target.read_text()


def test_scan_of_a_missing_folder(tmp_path):
    with pytest.raises(ConfigError, match="is not a folder"):
        write_draft(tmp_path / "nowhere", tmp_path / "out.yaml", force=False)
