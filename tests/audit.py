"""Run an entry point as `python -m` would, recording what it does that a test wants to rule out: the processes it
starts and the heavy modules it imports (Python's audit hooks see both).

    python -m tests.audit OUT.json guardianflow.full_pipeline scenario=smoke ...
"""

from __future__ import annotations

import atexit
import json
import runpy
import sys

HEAVY = {"torch", "torchvision", "ultralytics", "openvino", "onnxruntime", "tensorrt", "cv2", "matplotlib"}


def main() -> None:
    out, module, *args = sys.argv[1:]
    seen: dict[str, list] = {"processes": [], "imports": []}

    def hook(event: str, event_args: tuple) -> None:
        if event == "subprocess.Popen":
            seen["processes"].append([str(a) for a in (event_args[1] or [])])
        elif event == "import":
            top = event_args[0].split(".")[0]
            if top in HEAVY and top not in seen["imports"]:
                seen["imports"].append(top)

    def write() -> None:
        with open(out, "w") as f:
            json.dump(seen, f)

    atexit.register(write)
    sys.addaudithook(hook)
    sys.argv = [module, *args]
    runpy.run_module(module, run_name="__main__", alter_sys=True)


if __name__ == "__main__":
    main()
