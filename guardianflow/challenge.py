"""`challenge`: a candidate version against the champion in one run (what `guardianflow challenge` does), as an
MLflow Project entry point so automation can launch it with `mlflow run`:
python -m guardianflow.challenge name=acme.north-plant1.gate.ppe candidate=3 [variant=openvino_int8] [key=value ...]
Exits 0 when the challenge was measured, whatever its verdict (the run is its record), 2 on bad input.
"""

import sys

from gfcore.config.compose import split_overrides
from gfcore.core.errors import GuardianFlowError


def main(argv: list[str]) -> int:
    args = split_overrides(argv)
    given = {k: v for k, _, v in (a.partition("=") for a in args if a.split("=", 1)[0] in ("name", "candidate",
                                                                                       "variant"))}
    overrides = [a for a in args if a.split("=", 1)[0] not in given]
    if not given.get("name"):
        print("challenge: name=REGISTERED_MODEL is required", file=sys.stderr)
        return 2
    try:
        from gfcore.automation.challenge import challenge

        result = challenge(given["name"], candidate=given.get("candidate") or None,
                           variant=given.get("variant") or None, overrides=overrides)
    except GuardianFlowError as exc:
        print(f"challenge: error: {exc}", file=sys.stderr)
        return 2
    print(f"{result.model}: candidate v{result.candidate}: {result.verdict} (run {result.run_id})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
