"""The entry points as verbs: `guardianflow train|quant|infer|sweep|compare|pipeline [scenario=NAME] [KEY=VALUE ...]`.

Each verb is `guardianflow run ENTRY` under the entry point's own name (`pipeline` is `full_pipeline`): the entry
point as an MLflow Project run through the launcher (gfcore.orchestration.reproduce.launch), filed under the
scenario's site experiment; the run id is the last line on stdout. The entry point's MLproject parameters other
than `scenario` and `overrides` are taken as NAME=VALUE too (`source_run_id=ID` for quant and infer,
`resume_run_id=ID` for train). `challenge` is the command of gfcore/cli/challenge.py, which takes the challenge
entry point's arguments and, with `--launch`, starts it here the same way (`launch_challenge`).

Bad input, before any run is filed: an option the entry point does not take (`--epochs 3`) or a bare word says
that settings are `key=value`, with the config groups and their options; an unknown group option (a scenario
that does not exist) names the ones that do.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from gfcore.core.errors import ConfigError

# verb -> MLproject entry point
VERBS = {"train": "train", "quant": "quant", "infer": "infer", "sweep": "sweep", "compare": "compare",
         "pipeline": "full_pipeline"}
HELP = {
    "train": "train a model (Ultralytics) and register it as the candidate",
    "quant": "export and quantize a train run's model for a backend",
    "infer": "benchmark a model on a backend: accuracy, latency, tracking",
    "sweep": "a Hydra multirun: one child run per job, the best named",
    "compare": "one child run per variant: architectures, backends, data",
    "pipeline": "train -> quant -> infer as child runs of one parent",
}
EXAMPLE = {
    "train": "guardianflow train scenario=smoke train.epochs=5 model=yolo11n",
    "quant": "guardianflow quant scenario=smoke source_run_id=RUN_ID backend=openvino_int8",
    "infer": "guardianflow infer scenario=smoke source_run_id=RUN_ID backend=onnx_fp32",
    "sweep": "guardianflow sweep scenario=smoke train.lr0=0.001,0.01 launcher=joblib",
    "compare": "guardianflow compare scenario=smoke compare.architectures=[yolov8n,yolo11n]",
    "pipeline": "guardianflow pipeline scenario=smoke pipeline.quant_backends=[onnx_int8]",
}
# The MLproject parameters an entry point takes besides scenario and overrides, and the override each one sets.
PARAMETERS = {"train": {"resume_run_id": "train.resume_run_id"},
              "quant": {"source_run_id": "quant.source_run_id"},
              "infer": {"source_run_id": "infer.source_run_id"}}
NEXT = {
    "train": "guardianflow quant {scenario} source_run_id={run_id} backend=openvino_int8",
    "quant": "guardianflow infer {scenario} source_run_id={run_id}",
    "infer": "guardianflow experiments (or `guardianflow metrics summary`)",
}


def cmd_verb(args: argparse.Namespace) -> None:
    """Launch the verb's entry point; print its run id (last on stdout) and, on stderr, what to do next."""
    from gfcore.config import split_overrides
    from gfcore.orchestration.reproduce import launch
    from gfcore.tracking.naming import run_label

    entry = VERBS[args.verb]
    overrides = split_overrides(args.overrides)
    _check_arguments(args.verb, getattr(args, "unknown", []), overrides)
    overrides = [_parameter(entry, o) for o in overrides]
    with _explained(args.verb, overrides):
        run_id = launch(entry, overrides, env_manager=args.env_manager)
    print(run_id)
    scenario = next((o for o in overrides if o.startswith("scenario=")), "")
    follow = NEXT.get(args.verb, "guardianflow experiments, or open the run in the MLflow UI")
    print(f"{args.verb} run {run_label(run_id)} finished; next: {follow.format(scenario=scenario, run_id=run_id)}"
          .replace("  ", " "), file=sys.stderr)


def launch_challenge(name: str, candidate: str | None, variant: str | None, overrides: list[str],
                     env_manager: str = "local") -> tuple[str, str, str | None]:
    """The `challenge` entry point as an MLflow Project run through the launcher, filed in the experiment of the
    candidate's run (its site's); returns (run id, candidate version, the verdict the run tagged on it)."""
    from gfcore.core.vocabulary import CHALLENGE_RUN_ID, CHALLENGE_VERDICT
    from gfcore.orchestration import launcher
    from gfcore.registry import client as registry
    from gfcore.registry.register import CANDIDATE

    model = f"{name}__{variant}" if variant else name
    client = registry.mlflow_client()
    registry.require_model(client, model)
    version = str(candidate) if candidate else registry.aliases_of(client, model).get(CANDIDATE)
    if version is None:
        raise ConfigError(f"{model} has no candidate to challenge: give candidate=V "
                          f"(see `guardianflow versions {model}`).")
    mv = registry.require_version(client, model, version)
    if not mv.run_id:
        raise ConfigError(f"{model} v{version} names no run, so there is no scenario to challenge it on.")
    params = {"name": name, "candidate": version, "variant": variant or "", "overrides": " ".join(overrides)}
    run_id = launcher.launch("challenge", params, experiment_id=client.get_run(mv.run_id).info.experiment_id,
                             env_manager=env_manager).run_id
    tags = client.get_model_version(model, version).tags or {}
    return run_id, version, tags.get(CHALLENGE_VERDICT) if tags.get(CHALLENGE_RUN_ID) == run_id else None


def _parameter(entry: str, override: str) -> str:
    """`source_run_id=ID` (an MLproject parameter) as the override it stands for."""
    key, eq, value = override.partition("=")
    target = PARAMETERS.get(entry, {}).get(key)
    return f"{target}={value}" if eq and target else override


def _check_arguments(verb: str, unknown: list[str], overrides: list[str]) -> None:
    """Options and bare words are refused with what the entry point takes instead."""
    bare = [o for o in overrides if "=" not in o and not o.startswith("~")]
    if not unknown and not bare:
        return
    entry = VERBS[verb]
    options = [u for u in unknown if u.startswith("-")]
    values = [u for u in unknown if not u.startswith("-")] + bare
    said = f"option {', '.join(options)}" if options else f"bare word {', '.join(values)}"
    hints = _hints(entry, options, values)
    raise ConfigError(
        f"{verb} takes no {said}: the {entry} entry point takes scenario=NAME and Hydra overrides written key=value "
        "(group=option, group.key=value)" + (f"; did you mean {' '.join(hints)}?" if hints else ".")
        + f"\n{_how(verb)}")


def _how(verb: str) -> str:
    """The config groups with their options, an example, and the MLproject parameters the entry point takes."""
    params = PARAMETERS.get(VERBS[verb], {})
    return (config_groups_text() + f"\nfor example: {EXAMPLE[verb]}"
            + (f"\nalso: {', '.join(f'{k}=RUN_ID' for k in params)}" if params else ""))


def _hints(entry: str, options: list[str], values: list[str]) -> list[str]:
    """`--epochs 3` -> `train.epochs=3`: each option as the config key(s) ending in its name, paired in order with
    the bare values given when there are as many."""
    if not options:
        return []
    try:
        keys = _leaf_keys()
    except Exception:  # noqa: BLE001  only a hint: a config that does not compose says so when it runs
        return []
    groups = set(config_groups())
    paired = len([o for o in options if "=" not in o]) == len(values)
    out, pending = [], list(values)
    for option in options:
        name, eq, value = option.lstrip("-").partition("=")
        name = name.replace("-", "_")
        value = value if eq else (pending.pop(0) if paired and pending else "VALUE")
        if name in groups or name in PARAMETERS.get(entry, {}):
            out.append(f"{name}={value}")
            continue
        out += [f"{k}={value}" for k in keys if k.rsplit(".", 1)[-1] == name][:3]
    return out


def _leaf_keys() -> list[str]:
    from gfcore.config import compose, to_container

    def leaves(node: object, prefix: str) -> list[str]:
        if isinstance(node, dict):
            return [k for key, value in node.items() for k in leaves(value, f"{prefix}{key}.")]
        return [prefix[:-1]]

    return leaves(to_container(compose(["scenario=smoke"])), "")


def config_groups() -> dict[str, list[str]]:
    """The config groups the entry points' config composes (conf/config.yaml's defaults list), with their options."""
    from hydra import compose as hydra_compose
    from hydra import initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra

    import gfcore.config.schema  # noqa: F401  registers the schema the root config starts from
    from gfcore.config.compose import CONF_DIR

    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = hydra_compose("config", return_hydra_config=True)
        loader = GlobalHydra.instance().config_loader()
        groups = [g for g in cfg.hydra.runtime.choices if not g.startswith("hydra/")]
        return {g: loader.get_group_options(g) for g in reversed(groups)}  # in the defaults list's order


def config_groups_text() -> str:
    return "the config groups (group=option) and their options:\n" + "\n".join(
        f"  {g}: {', '.join(o)}" for g, o in config_groups().items())


@contextmanager
def _explained(verb: str, overrides: list[str]) -> Iterator[None]:
    """Hydra's composition errors as ConfigError, saying which options a group has, which key was meant, and which
    groups there are."""
    from hydra.errors import HydraException, MissingConfigException
    from omegaconf.errors import OmegaConfBaseException

    from gfcore.config import explain
    from gfcore.core import suggest

    try:
        yield
    except MissingConfigException as exc:
        if not exc.missing_cfg_file or "/" not in exc.missing_cfg_file:
            raise
        group, _, option = exc.missing_cfg_file.rpartition("/")
        raise ConfigError(f"unknown {group}={option}: the {group} options are {', '.join(exc.options or [])} "
                          f"(conf/{group}/). Nothing was started.") from None
    except (HydraException, OmegaConfBaseException) as exc:
        message = str(exc).strip()
        unknown = re.match(r"Could not override '([^']+)'", message)
        said = None if unknown else explain.one_line(exc, overrides)  # a value of the wrong type: one line
        if said:
            raise ConfigError(f"{said}. Nothing was started.") from None
        if unknown:
            key = unknown.group(1)
            given = next((o for o in overrides if o.split("=", 1)[0] == key), f"{key}=VALUE")
            hints = _hints(VERBS[verb], [f"--{key.rsplit('.', 1)[-1]}={given.split('=', 1)[1]}"], [])
            close = "" if hints else suggest.did_you_mean(key, _leaf_keys())  # a typo: train.epoch
            message = (f"{given}: the config has no key {key}"
                       + (f"; did you mean {' or '.join(hints)}?" if hints else f"{close}."))
        raise ConfigError(f"{message} Nothing was started.\n{_how(verb)}") from None


def add_commands(sub: argparse._SubParsersAction) -> None:
    for verb, entry in VERBS.items():
        params = PARAMETERS.get(entry, {})
        p = sub.add_parser(verb, help=HELP[verb],
                           description=f"{HELP[verb][0].upper()}{HELP[verb][1:]}: the {entry} entry point as an "
                                       f"MLflow Project run in the scenario's site experiment (what `guardianflow run "
                                       f"{entry}` does); prints its run id.\n\nexample:\n  {EXAMPLE[verb]}")
        p.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                       help="scenario=NAME and Hydra overrides (group=option, group.key=value)"
                            + "".join(f"; {k}=ID" for k in params))
        p.add_argument("--env-manager", default="local", choices=["local", "virtualenv", "uv", "conda"],
                       help="how `mlflow run` makes the entry point's environment")
        p.set_defaults(func=cmd_verb, verb=verb, unknown=[])
