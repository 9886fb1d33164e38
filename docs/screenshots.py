"""Screenshots of the MLflow UI for the README: what a user sees after running the demo pipeline.

    python docs/screenshots.py [--scenario demo|smoke] [--out docs/images] [--store DIR] [--rerun] [--keep]

1. Runs `python -m guardianflow.full_pipeline scenario=SCENARIO` into a store of its own
   (MLFLOW_TRACKING_URI=sqlite:///STORE/mlflow.db, artifacts under STORE), offline. With `--store DIR` the store
   is kept, and a later call that finds a finished pipeline run of the scenario there reuses it instead of
   running again (`--rerun` runs the pipeline anyway; its cache reuses the steps whose inputs did not change).
   Without `--store` a temporary store is used and deleted at the end (`--keep` keeps it).
2. Makes the trained model's candidate version the champion (`guardianflow promote`), so its page shows the
   aliases a site sees.
3. Starts `mlflow server` on 127.0.0.1 (a free port) over that store, waits for /health, captures the pages with
   headless Chromium (Debian's `chromium`), stops the server.
4. Shrinks every PNG (256-colour palette, then smaller if needed) to under --max-kb (300) KB.

Images written to --out:
    runs.png             the site experiment's runs list
    pipeline.png         the pipeline parent run's overview: its description holds the result table
    train-charts.png     the train run's charts per epoch: accuracy (val.mAP*), losses, learning rate
    registered-model.png the registered model: its versions, their tags (figures, evaluation split) and aliases
    models.png           the model registry: the trained model (champion) and its quantized variant (candidate)

Pages are driven over Chromium's DevTools protocol: the MLflow Assistant panel that opens on a first visit and the
registry's "new UI" modal are dismissed, the UI is put in its "Model training" mode, and what a user would click
before looking is clicked (nested runs opened, the description unfolded, charts filtered).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the Chromium driver is a test tool (tests/tools), not part of the library

from tests.tools.chromium import Browser  # noqa: E402


@dataclass
class Shot:
    name: str                    # the file name, without .png
    route: str                   # the single-page app's route, after '#'
    ready: str                   # a JavaScript expression, true once the page shows what the shot is for
    height: int = 1000           # the window's height in pixels (its width is --width)
    prepare: Callable[[Browser], None] | None = None  # what a user would click before looking


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default="demo", help="the scenario to run (demo, smoke, ...); default demo")
    ap.add_argument("--out", default=str(REPO / "docs" / "images"), help="where the PNGs go; default docs/images")
    ap.add_argument("--store", help="a folder for the MLflow store, kept and reused by later calls")
    ap.add_argument("--rerun", action="store_true", help="run the pipeline even if --store holds a finished one")
    ap.add_argument("--keep", action="store_true", help="keep the temporary store (without --store)")
    ap.add_argument("--width", type=int, default=1600, help="window width in pixels; default 1600")
    ap.add_argument("--max-kb", type=int, default=300, help="largest PNG size in KB; default 300")
    ap.add_argument("--timeout", type=float, default=90, help="seconds a page may take to show; default 90")
    ap.add_argument("--chromium", default=shutil.which("chromium") or "chromium", help="the Chromium binary")
    args = ap.parse_args(argv)

    if not shutil.which(args.chromium):
        sys.exit(f"no Chromium at {args.chromium!r}: install Debian's `chromium` package or pass --chromium")
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    if args.store:
        store = Path(args.store).resolve()
        store.mkdir(parents=True, exist_ok=True)
        temporary = False
    else:
        store = Path(tempfile.mkdtemp(prefix="gf-screenshots-"))
        temporary = not args.keep
    # Everything runs in the store's folder: the experiments' default artifact location (./mlruns) is there.
    os.chdir(store)
    uri = f"sqlite:///{store / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "YOLO_OFFLINE": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    for key in ("MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD", "MLFLOW_EXPERIMENT_NAME",
                "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID"):  # nothing of a shell set up for another store
        env.pop(key, None)
        os.environ.pop(key, None)
    os.environ["MLFLOW_TRACKING_URI"] = uri

    failed: list[str] = []
    try:
        names = scenario_names(args.scenario, env)
        found = find_runs(uri, names, args.scenario)
        if found is None or args.rerun:
            run_pipeline(args.scenario, store, env)
            found = find_runs(uri, names, args.scenario)
            if found is None:
                sys.exit(f"the pipeline finished but {uri} holds no finished pipeline run of scenario "
                         f"{args.scenario!r} with its train step")
        else:
            print(f"reusing pipeline run {found['pipeline']} in {store} (--rerun runs it again)")
        promote(names["registered_model"], uri, env)
        shots = plan(found, names)
        with mlflow_server(uri, store, env) as base:
            browser = MlflowBrowser(args.chromium)
            try:
                for shot in shots:
                    path = out / f"{shot.name}.png"
                    url = f"{base}/#{shot.route}"
                    try:
                        take(browser, shot, url, path, args.width, args.timeout)
                    except TimeoutError as exc:  # the other pages are still worth taking
                        failed.append(shot.name)
                        print(f"error: {shot.name}.png not taken: {exc}", flush=True)
                        continue
                    size = shrink(path, args.max_kb * 1024)
                    shown = path.relative_to(REPO) if path.is_relative_to(REPO) else path
                    print(f"{shown}: {size // 1024} KB  ({url})", flush=True)
            finally:
                browser.close()
    finally:
        os.chdir(REPO)
        if temporary:
            shutil.rmtree(store, ignore_errors=True)
        elif not args.store:
            print(f"store kept: {store} (reuse it with --store {store})")
    if failed:
        print(f"not taken: {', '.join(failed)} (the page did not show what was expected within --timeout)")
        return 1
    return 0


def plan(found: dict[str, str], names: dict[str, str]) -> list[Shot]:
    """The pages, in the order a user meets them."""
    eid, parent, train = found["experiment"], found["pipeline"], found["train"]
    model = names["registered_model"]
    return [
        Shot("runs", f"/experiments/{eid}/runs",
             ready=f"!!document.querySelector('a[href*=\"{parent}\"]')", height=620, prepare=expand_runs),
        Shot("pipeline", f"/experiments/{eid}/runs/{parent}",
             ready=f"document.body.innerText.includes({json.dumps(found['pipeline_name'])}) && "
                   "document.body.innerText.includes('Description')",
             height=1000, prepare=show_description),
        Shot("train-charts", f"/experiments/{eid}/runs/{train}/model-metrics",
             ready="document.querySelectorAll('.js-plotly-plot').length > 0", height=1380,
             prepare=filter_charts),
        Shot("registered-model", f"/models/{urllib.parse.quote(model, safe='')}",
             ready=f"document.body.innerText.includes({json.dumps(model)}) && "
                   "!!document.querySelector('a[href*=\"/versions/\"]')", height=1300),
        Shot("models", "/models", ready=f"document.body.innerText.includes({json.dumps(model)})", height=420),
    ]


def expand_runs(browser: Browser) -> None:
    """Open the pipeline's nested runs and widen the name and model columns (at the dataset column's expense):
    sibling runs differ at the end of their names (ppe-yolov8n-infer-openvino_int8-v1), which the default width
    cuts off."""
    browser.eval("document.querySelectorAll('button[data-component-id*=\"runnamecellrenderer\"]')"
                 ".forEach(b => b.click())")
    browser.settle()
    browser.widen_column("Run Name", 130)
    browser.widen_column("Dataset", -80)
    browser.widen_column("Models", 130)


def show_description(browser: Browser) -> None:
    """The run description (the pipeline's result table) starts folded after a few lines: unfold it."""
    browser.eval("[...document.querySelectorAll('button')].filter(b => b.innerText.trim() === 'Show more')"
                 ".forEach(b => b.click())")


# The charts a reader looks at first: accuracy per epoch, the losses and the learning rate. The UI's chart search
# takes a regular expression; the first filter that leaves a mAP chart among at least 3 is kept, else all charts
# are shown (metric names changed). The train run's per-epoch accuracy is val.*; det.* is the final figure.
CHART_FILTERS = (r"val\.mAP|_loss|lr\.pg0", r"det\.mAP|_loss|lr\.pg0")
CHART_SEARCH = 'input[placeholder="Search metric charts"]'


def filter_charts(browser: Browser) -> None:
    browser.eval("(() => { const s = document.createElement('style');"
                 "s.textContent = '.modebar-container { display: none !important; }';"  # shown on hover only
                 "document.head.appendChild(s); })()")
    for pattern in CHART_FILTERS:
        if not browser.type_into(CHART_SEARCH, pattern):
            return
        browser.settle()
        if browser.eval("document.querySelectorAll('.js-plotly-plot').length >= 3 && "
                        "document.body.innerText.includes('mAP')"):
            return
    browser.type_into(CHART_SEARCH, "")


def take(browser: Browser, shot: Shot, url: str, path: Path, width: int, timeout: float) -> None:
    browser.open(url, width, shot.height)
    browser.wait_for(shot.ready, timeout, f"{url}: {shot.ready}")
    browser.settle()
    if shot.prepare:
        shot.prepare(browser)
        browser.settle()
    if browser.eval("[...document.querySelectorAll('[role=dialog]')].some(d => d.offsetParent !== null)"):
        print(f"warning: a dialog covered {url}; pressed Escape")
        browser.key("Escape")
        browser.settle()
    browser.mouse_move(width // 2, shot.height - 10)  # no hover effects from clicks or drags
    time.sleep(1)  # chart transitions
    browser.screenshot(path)


def scenario_names(scenario: str, env: dict[str, str]) -> dict[str, str]:
    """Experiment, run and registered model names of the scenario, as GuardianFlow computes them."""
    command = ["names", "--json", f"scenario={scenario}"]
    done = None
    if shutil.which("guardianflow"):
        done = subprocess.run(["guardianflow", *command], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done is None or done.returncode != 0:
        done = subprocess.run([sys.executable, "-c", "import sys; from gfcore.cli import main; sys.exit(main())",
                               *command], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"guardianflow names scenario={scenario} failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout)


def find_runs(uri: str, names: dict[str, str], scenario: str) -> dict[str, str] | None:
    """The experiment id and the latest finished pipeline parent run of the scenario with its train child, or None
    when the store has none."""
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(names["experiment"])
    if experiment is None:
        return None
    eid = experiment.experiment_id
    parents = client.search_runs([eid], f"tags.`exp.type` = 'pipeline' and tags.`gf.scenario` = '{scenario}' and "
                                        "attributes.status = 'FINISHED'",
                                 order_by=["attributes.start_time DESC"], max_results=1)
    if not parents:
        return None
    parent = parents[0]
    # The train step: the parent's gf.step.train tag (a reused step is not nested under this parent), else the
    # latest finished train run of the scenario.
    train = parent.data.tags.get("gf.step.train")
    if not train:
        runs = client.search_runs([eid], f"tags.`exp.type` = 'train' and tags.`gf.scenario` = '{scenario}' and "
                                         "attributes.status = 'FINISHED'",
                                  order_by=["attributes.start_time DESC"], max_results=1)
        if not runs:
            return None
        train = runs[0].info.run_id
    return {"experiment": eid, "pipeline": parent.info.run_id, "pipeline_name": parent.info.run_name, "train": train}


def run_pipeline(scenario: str, store: Path, env: dict[str, str]) -> None:
    """`python -m guardianflow.full_pipeline scenario=...` into the store. It runs in the store's folder, so the
    experiment's default artifact location (./mlruns) and Hydra's outputs land there too."""
    log = store / "pipeline.log"
    command = [sys.executable, "-m", "guardianflow.full_pipeline", f"scenario={scenario}",
               f"hydra.run.dir={store / 'outputs' / time.strftime('%Y%m%d-%H%M%S')}"]
    print(f"running {' '.join(command[1:])} into {store} (log: {log}) ...", flush=True)
    start = time.monotonic()
    with open(log, "a") as f:
        done = subprocess.run(command, cwd=store, env=env, stdout=f, stderr=subprocess.STDOUT, check=False)
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-4000:]
        sys.exit(f"the pipeline failed (exit {done.returncode}); the end of {log}:\n{tail}")
    print(f"pipeline done in {time.monotonic() - start:.0f} s", flush=True)


def promote(model: str, uri: str, env: dict[str, str]) -> None:
    """Make the candidate the champion (as a site would after checking it) unless it already is."""
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException

    client = MlflowClient(uri)
    try:
        aliases = client.get_registered_model(model).aliases
    except MlflowException as exc:
        sys.exit(f"the pipeline registered no model {model!r}: {exc.message}")
    if "candidate" not in aliases or aliases.get("candidate") == aliases.get("champion"):
        return
    command = ["promote", model]
    if shutil.which("guardianflow"):
        done = subprocess.run(["guardianflow", *command], cwd=REPO, env=env, capture_output=True, text=True,
                              check=False)
    else:
        done = subprocess.run([sys.executable, "-c", "import sys; from gfcore.cli import main; sys.exit(main())",
                               *command], cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        print(f"warning: guardianflow promote {model} failed; setting the alias directly:\n{done.stderr[-1500:]}")
        client.set_registered_model_alias(model, "champion", aliases["candidate"])


class mlflow_server:
    """`mlflow server` over the store on 127.0.0.1 and a free port, up until the block ends."""

    def __init__(self, uri: str, store: Path, env: dict[str, str]):
        self.uri, self.store, self.env = uri, store, env
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> str:
        port = free_port()
        log = open(self.store / "server.log", "a")
        command = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
                   "--workers", "1", "--backend-store-uri", self.uri,
                   "--default-artifact-root", str(self.store / "mlruns")]
        self.proc = subprocess.Popen(command, cwd=self.store, env=self.env, stdout=log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        log.close()
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.__exit__()
                tail = (self.store / "server.log").read_text(errors="replace")[-3000:]
                sys.exit(f"mlflow server exited ({self.proc.returncode}):\n{tail}")
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=2) as response:
                    if response.status == 200:
                        return base
            except OSError:
                pass
            time.sleep(0.5)
        self.__exit__()
        sys.exit(f"mlflow server did not answer {base}/health within 180 s (log: {self.store / 'server.log'})")

    def __exit__(self, *exc: object) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the server and its workers: a group of their own
            self.proc.wait(timeout=15)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# What a first visit would otherwise show: the MLflow Assistant panel opens by itself on a first visit from
# localhost, and the UI starts in its GenAI mode; a user who trains models closes the one and switches the other
# ("Model training" in the side bar), and the UI remembers both in localStorage (key_v<version>). The model
# registry greets a first visit with a modal about its new UI, dismissed the same way.
UI_STATE = {
    "mlflow.assistant.fab.autoOpenedOnFirstLoad_v1": "true",
    "mlflow.assistant.panelOpen_v1": "false",
    "mlflow.workflowType_v1": '"machine_learning"',
    "_mlflow_model_registry_promo_modal_dismissed_v1": "true",
}


class MlflowBrowser(Browser):
    """The browser with the MLflow UI's first-visit state set, and the grid's column drag."""

    def __init__(self, binary: str):
        script = "".join(f"localStorage.setItem({json.dumps(k)}, {json.dumps(v)});" for k, v in UI_STATE.items())
        super().__init__(binary, init_script=script)

    def widen_column(self, header: str, pixels: int) -> None:
        """Drag the right edge of a table column's header (the runs table is an ag-grid)."""
        box = self.eval(f"(() => {{ const h = [...document.querySelectorAll('.ag-header-cell')]"
                        f".find(e => e.innerText.trim() === {json.dumps(header)});"
                        "const r = h && h.querySelector('.ag-header-cell-resize'); if (!r) return null;"
                        "const b = r.getBoundingClientRect(), y = b.y + b.height / 2;"
                        # the next header overlaps part of the handle: grab it where it is on top
                        "for (let x = b.x; x < b.x + b.width; x++) if (document.elementFromPoint(x, y) === r)"
                        "  return [x + 0.5, y]; return null; })()")
        if not box:
            return
        x, y = box
        self.mouse_move(x, y)
        self.send("Input.dispatchMouseEvent", {"type": "mousePressed", "x": x, "y": y, "button": "left",
                                               "buttons": 1, "clickCount": 1})
        for step in range(1, 11):
            self.send("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x + pixels * step / 10, "y": y,
                                                   "button": "left", "buttons": 1})
            time.sleep(0.03)
        self.send("Input.dispatchMouseEvent", {"type": "mouseReleased", "x": x + pixels, "y": y, "button": "left",
                                               "buttons": 0, "clickCount": 1})


def shrink(path: Path, limit: int) -> int:
    """Rewrite the PNG as a 256-colour palette image, optimized; scale it down until it is under `limit` bytes."""
    from PIL import Image

    image = Image.open(path).convert("RGB")
    scale = 1.0
    while True:
        frame = image if scale == 1.0 else image.resize(
            (round(image.width * scale), round(image.height * scale)), Image.LANCZOS)
        buffer = io.BytesIO()
        frame.quantize(colors=256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
            buffer, "PNG", optimize=True)
        if buffer.tell() <= limit or scale < 0.3:
            path.write_bytes(buffer.getvalue())
            return buffer.tell()
        scale *= 0.85


if __name__ == "__main__":
    sys.exit(main())
