"""What dataset versions cost (`guardianflow data push DATA_YAML NAME`, `data=versioned`), against the local stack's
SeaweedFS: the first push of a dataset, a push of the same content again (nothing to upload), a push after one label
file changed (one file to upload), the first fetch of a version into an empty cache, and a cached fetch (what a run
with a concrete `data.version` pays the second time: no S3 call at all).

Each case is timed in this process through the product's own functions (`gfcore.data.versions.store.push`, and
`resolve_dataset` with `data=versioned` for the fetches, as a run resolves its data), `--repeat` times, each repeat
against a fresh store prefix and a fresh cache so that "first" stays first. S3 requests are counted with boto3's own
event hooks on the real client. The stack (PostgreSQL, SeaweedFS, the MLflow server: `guardianflow stack up`) runs
in a temporary folder on free ports and is removed afterwards.

    python bench/data_versions.py                      # the demo set: 200/60/60 images at 160 px, 3 repeats
    python bench/data_versions.py --scenario smoke --repeat 1

Results are printed and written to bench/RESULTS.md (section "dataset versions").
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path
from unittest import mock

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

NAME = "yard"
S3_KEYS = ("MLFLOW_S3_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
CASES = [("first", "first push"), ("unchanged", "push, same content"), ("one_label", "push, one label file changed"),
         ("fetch", "first fetch (empty cache)"), ("cached", "cached fetch (concrete version)")]


@contextmanager
def temporary_stack():
    """`guardianflow stack up` in a temporary folder on free ports; this process sees its S3 (endpoint and keys)."""
    from gfcore.stack import local
    from tests.stack.servers import free_port

    with tempfile.TemporaryDirectory(prefix="gf-bench-data-", dir="/tmp") as tmp:
        os.chmod(tmp, 0o755)  # PostgreSQL runs as its own user and must reach its data folder
        folder = Path(tmp) / "stack"
        start = time.perf_counter()
        env = local.up(folder, {name: free_port() for name in local.PORTS})  # as the stack tests start one
        print(f"stack up in {time.perf_counter() - start:.0f} s", file=sys.stderr)
        try:
            with mock.patch.dict(os.environ, {k: env[k] for k in S3_KEYS}):
                os.environ.pop("GF_DATA_STORE", None)  # restored with the rest when the block ends
                yield
        finally:
            local.down(folder, purge=True)


@contextmanager
def counting_s3():
    """Every S3 call this process makes while in the block, as (operation, key) pairs."""
    from gfcore.data import s3 as s3data

    calls: list[tuple[str, str]] = []
    real = s3data.client

    def client():
        c = real()
        c.meta.events.register("provide-client-params.s3",
                               lambda params, model, **_: calls.append((model.name, params.get("Key", ""))))
        return c

    with mock.patch.object(s3data, "client", client):
        yield calls


def dataset_copies(scenario: str, into: Path) -> tuple[Path, Path, str, object]:
    """The scenario's demo set as a YOLO folder with a relative yaml (`v1`), a copy of it with one box removed from
    one train label file (`v2`), that file, and the task config."""
    from gfcore.config import compose, to_typed
    from gfcore.data.dataset import resolve_dataset

    cfg = to_typed(compose([] if scenario == "demo" else [f"scenario={scenario}"]))
    demo = resolve_dataset(cfg.data, cfg.task)
    v1 = into / "v1"
    for sub in ("images", "labels"):
        shutil.copytree(demo.root / sub, v1 / sub)
    names = "".join(f"  {i}: {n}\n" for i, n in enumerate(demo.names))
    (v1 / "data.yaml").write_text(f"train: images/train\nval: images/val\ntest: images/test\nnames:\n{names}")
    v2 = into / "v2"
    shutil.copytree(v1, v2)
    label = next(p for p in sorted((v2 / "labels" / "train").glob("*.txt")) if len(p.read_text().splitlines()) > 1)
    label.write_text("\n".join(label.read_text().splitlines()[1:]) + "\n")
    return v1 / "data.yaml", v2 / "data.yaml", label.relative_to(v2).as_posix(), cfg


def one_repeat(n: int, v1: Path, v2: Path, cfg, work: Path) -> dict[str, dict]:
    """The five cases once, against a store prefix and a cache of this repeat's own."""
    from gfcore.config import compose, to_typed
    from gfcore.data import dataset as datamod
    from gfcore.data.versions import store as versions

    store = versions.Store("mlflow", f"bench-data-versions/{int(time.time())}-{n}/")
    out: dict[str, dict] = {}

    def timed(case: str, fn):
        with counting_s3() as calls:
            start = time.perf_counter()
            result = fn()
            wall = time.perf_counter() - start
        ops = Counter(op for op, _ in calls)
        out[case] = {"s": wall, "requests": len(calls), "ops": dict(ops), "calls": calls}
        return result

    first = timed("first", lambda: versions.push(v1, NAME, store))
    again = timed("unchanged", lambda: versions.push(v1, NAME, store))
    changed = timed("one_label", lambda: versions.push(v2, NAME, store))
    assert first["new"] and not again["new"] and changed["new"], (first, again, changed)
    assert again["version"] == first["version"] and again["uploaded"] == {"files": 0, "bytes": 0}
    assert changed["uploaded"]["files"] == 1, changed["uploaded"]
    for case, result in (("first", first), ("unchanged", again), ("one_label", changed)):
        out[case].update(files=result["uploaded"]["files"], bytes=result["uploaded"]["bytes"], direction="up",
                         version=result["version"])

    pinned = to_typed(compose([*cfg_scenario(cfg), "data=versioned", f"data.name={NAME}",
                               f"data.version={first['version']}", f"data.store={store.uri}",
                               f"data.cache_dir={work / f'cache-{n}'}"]))
    manifest, _ = versions.read_manifest(NAME, first["version"], store)
    size_of = {e["sha256"]: e["size"] for e in manifest["files"].values()}
    real_fetch, fetch_s = versions.fetch, []

    def fetch(*args, **kwargs):  # the download's share of resolving the data (the rest: checking and hashing it)
        start = time.perf_counter()
        try:
            return real_fetch(*args, **kwargs)
        finally:
            fetch_s.append(time.perf_counter() - start)

    with mock.patch.object(datamod.versions, "fetch", fetch):
        got = timed("fetch", lambda: datamod.resolve_dataset(pinned.data, pinned.task))
        again_got = timed("cached", lambda: datamod.resolve_dataset(pinned.data, pinned.task))
    assert got.pin == again_got.pin and got.pin.version == first["version"] and got.hash == again_got.hash
    for case, share in (("fetch", fetch_s[0]), ("cached", fetch_s[1])):
        keys = {key.rsplit("/", 1)[-1] for op, key in out[case]["calls"] if op == "GetObject" and "/objects/" in key}
        out[case].update(files=len(keys), bytes=sum(size_of[k] for k in keys), direction="down", fetch_s=share)
    out["dataset"] = {"files": first["files"], "bytes": first["bytes"]}
    return out


def cfg_scenario(cfg) -> list[str]:
    return [] if cfg.exp.scenario == "demo" else [f"scenario={cfg.exp.scenario}"]


def size(n: float) -> str:
    return f"{n / 2**20:.2f} MiB" if n >= 2**20 else f"{n / 2**10:.1f} KiB" if n >= 2**10 else f"{n:.0f} B"


def report(results: list[dict], args: argparse.Namespace, changed: str, loads: list[float], images: dict) -> str:
    med = {case: statistics.median(r[case]["s"] for r in results) for case, _ in CASES}
    first = med["first"]
    ds = results[0]["dataset"]
    rows = ["| case | median s | each repeat s | x first push | S3 requests | files moved | bytes moved |",
            "|---|--:|---|--:|--:|--:|--:|"]
    for case, label in CASES:
        last = results[-1][case]
        ops = ", ".join(f"{n} {op}" for op, n in sorted(last["ops"].items(), key=lambda kv: -kv[1])) or "none"
        arrow = "up" if last["direction"] == "up" else "down"
        each = ", ".join(f"{r[case]['s']:.2f}" for r in results)
        rows.append(f"| {label} | {med[case]:.3f} | {each} | "
                    f"{med[case] / first:.3f}x | {last['requests']} ({ops}) | {last['files']} {arrow} | "
                    f"{size(last['bytes'])} |")
    fetch_share = statistics.median(r["fetch"]["fetch_s"] for r in results)
    cached_share = statistics.median(r["cached"]["fetch_s"] for r in results)
    cmd = "python bench/data_versions.py" + (f" --scenario {args.scenario}" if args.scenario != "demo" else "") + \
        (f" --repeat {args.repeat}" if args.repeat != 3 else "")
    cores = os.cpu_count() or 0
    busy = max(loads) > cores
    lines = [
        "## dataset versions", "",
        f"Command: `{cmd}` ({time.strftime('%Y-%m-%d')}, {cores} CPU cores, no GPU; load average "
        f"{min(loads):.1f}-{max(loads):.1f} during the run{', other work sharing the machine' if busy else ''}).",
        (f"The {args.scenario} set ({', '.join(f'{n} {s}' for s, n in images.items())} images; {ds['files']} files, "
         f"{size(ds['bytes'])}) pushed as a version of `{NAME}` to the local stack's SeaweedFS (`guardianflow stack`, "
         "on loopback) through `gfcore.data.versions.store.push`; the changed push removes one box from "
         f"`{changed}`; the fetches are `resolve_dataset` with `data=versioned data.version=<the first version's "
         "id>`, as a run resolves its data (download, then Ultralytics' check of the yaml and the content hash). "
         f"Median of {args.repeat} repeat{'s' if args.repeat != 1 else ''}, each against a fresh store prefix and "
         "cache; S3 requests and what moved are the last repeat's (boto3's event hooks on the real client)."),
        "",
        *rows, "",
        (f"Of the first fetch, the download itself (`versions.fetch`) took {fetch_share:.2f} s (median), the rest is "
         f"checking and hashing the copy; the cached fetch's `versions.fetch` took {1000 * cached_share:.1f} ms and "
         f"sent {results[-1]['cached']['requests']} S3 requests."),
        "",
        (f"Reading it: every push first hashes every local file (with two S3 reads, the version's manifest and "
         f"`latest`, that is all an unchanged push does); a new version then lists the store's objects (one "
         f"ListObjectsV2 per 1,000 objects of the whole store, every dataset's) and uploads only the contents the "
         f"store lacks ({ds['files']} files are {results[-1]['first']['files']} distinct contents here), then its "
         "manifest and `latest`. The first fetch makes one GetObject per distinct content (the manifest holds "
         "each file's size and hash; an empty file is not fetched); a cached fetch of a concrete id reads "
         "nothing from S3 and costs Ultralytics' check of the yaml and the cached content hash."),
    ]
    if busy:
        lines += ["", f"The machine was shared with other work (load average up to {max(loads):.1f} on {cores} "
                      "cores): the seconds are noisy; the requests and bytes are exact."]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scenario", choices=("demo", "smoke"), default="demo",
                        help="whose demo set to push: demo (200/60/60 images at 160 px) or smoke (16/8/8, quick)")
    parser.add_argument("--repeat", type=int, default=3, help="repeats of every case (fresh store prefix and cache)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave bench/RESULTS.md as it is")
    args = parser.parse_args()

    from gfcore.yolo import env as yolo_env

    yolo_env.configure()  # offline, as the entry points set Ultralytics up
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory(prefix="gf-bench-data-work-") as tmp:
        work = Path(tmp)
        v1, v2, changed, cfg = dataset_copies(args.scenario, work)
        from gfcore.config import compose, to_typed
        from gfcore.data.dataset import resolve_dataset

        # Untimed: the imports and first calls every case would otherwise pay once (Ultralytics, boto3).
        local = to_typed(compose([*cfg_scenario(cfg), "data=yolo", f"data.name={NAME}", f"data.path={v1}",
                                  f"data.cache_dir={work / 'warm'}"]))
        images = resolve_dataset(local.data, local.task).counts
        with temporary_stack():
            from gfcore.data import s3 as s3data

            s3data.client().list_objects_v2(Bucket="mlflow", MaxKeys=1)
            results = []
            for n in range(args.repeat):
                results.append(one_repeat(n, v1, v2, cfg, work))
                loads.append(os.getloadavg()[0])
                print(f"repeat {n + 1}: " + ", ".join(f"{case} {results[-1][case]['s']:.2f} s" for case, _ in CASES),
                      file=sys.stderr)
    section = report(results, args, changed, loads, images)
    print(section)
    if not args.no_write:
        from bench.results import write_section

        write_section("dataset versions", section)


if __name__ == "__main__":
    main()
