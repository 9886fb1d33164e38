"""MOTChallenge scoring with TrackEval: `guardianflow eval-mot`."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gfcore.cli.tables import table


def cmd_eval_mot(args: argparse.Namespace) -> None:
    """TrackEval's HOTA, CLEAR and Identity metrics for MOTChallenge-format ground truth and tracks."""
    from gfcore.mot import METRICS
    from gfcore.mot.benchmark import AUTO
    from gfcore.mot.evaluate import evaluate_mot

    seqs = [s.strip() for s in args.seqs.split(",") if s.strip()] if args.seqs else None
    # Which rules scored each sequence goes to stderr, so --json output stays one JSON object.
    override = " (--benchmark to override)" if args.benchmark == AUTO else ""
    results = evaluate_mot(Path(args.gt_dir), Path(args.pred_dir), seqs, args.benchmark,
                           explain=lambda line: print(f"eval-mot: {line}{override}", file=sys.stderr))
    if args.json:
        print(json.dumps(results, indent=2))
        return
    rows = [{"sequence": seq, **{m: v if isinstance(v, int) else f"{v:.3f}" for m, v in row.items()}}
            for seq, row in results.items()]
    print(table(rows, ["sequence", *METRICS]))


def add_commands(sub: argparse._SubParsersAction) -> None:
    from gfcore.mot.benchmark import AUTO, BENCHMARKS  # constants only: no TrackEval import for --help

    p = sub.add_parser("eval-mot", help="score MOTChallenge tracks: HOTA, CLEAR, Identity (TrackEval)",
                       description="GT_DIR/<seq>/gt/gt.txt and GT_DIR/<seq>/seqinfo.ini against PRED_DIR/<seq>.txt. "
                                   "Rates are fractions (0-1), counts are integers; motp is IoU-based.")
    p.add_argument("gt_dir", help="ground truth: GT_DIR/<seq>/gt/gt.txt and GT_DIR/<seq>/seqinfo.ini")
    p.add_argument("pred_dir", help="tracks: PRED_DIR/<seq>.txt, one file per sequence")
    p.add_argument("--seqs", help="comma-separated sequence names (default: every sequence in GT_DIR)")
    p.add_argument("--benchmark", default=AUTO, type=lambda s: AUTO if s.lower() == AUTO else s.upper(),
                   choices=[AUTO, *BENCHMARKS],
                   help="whose rules score the data: MOT15 (columns 8-10 are world coordinates, no classes), "
                        "MOT16/MOT17 (column 8 is a class, distractors dropped), MOT20 (one more distractor class); "
                        "auto (default) guesses per sequence from gt.txt and says why on stderr")
    p.add_argument("--json", action="store_true", help="one JSON object: a key per sequence and COMBINED")
    p.set_defaults(func=cmd_eval_mot)
