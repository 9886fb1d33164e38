"""The tracking stack as local processes: `guardianflow stack up|status|down`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from gfcore.cli.tables import table


def cmd_stack(args: argparse.Namespace) -> None:
    """The tracking stack as processes on 127.0.0.1: up, status, down."""
    from gfcore.stack import local

    folder = Path(args.dir or (local.DEFAULT_ROOT_DIR if os.geteuid() == 0 else local.DEFAULT_DIR)).expanduser()
    if args.action == "up":
        ports = {k: getattr(args, f"{k}_port") for k in local.PORTS if getattr(args, f"{k}_port", None)}
        env = local.up(folder, ports)
        print("\n".join(f"export {k}={v}" for k, v in env.items()))
        print(f"# the stack's data, logs and secrets are in {folder}; "
              f"`guardianflow stack down --dir {folder}` stops it", file=sys.stderr)
    elif args.action == "status":
        rows = local.status(folder)
        print(json.dumps(rows, indent=2) if args.json else table(rows, ["service", "pid", "state", "address"]))
    else:
        local.down(folder, purge=args.purge)


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("stack", help="MLflow server, PostgreSQL and SeaweedFS as local processes",
                       description="The tracking stack (MLflow server, PostgreSQL, SeaweedFS) as local processes, "
                                   "without Docker.\n\nexamples:\n  guardianflow stack up\n"
                                   "  guardianflow stack status\n  guardianflow stack down --purge")
    p.add_argument("action", choices=["up", "status", "down"], help="start it, say what runs, or stop it")
    p.add_argument("--dir", help="data, logs, pid files and secrets (default ~/.local/share/guardianflow/stack; "
                                 "as root /var/lib/guardianflow/stack)")
    p.add_argument("--purge", action="store_true", help="with down: delete the folder and all data in it")
    p.add_argument("--json", action="store_true", help="print the stack's state as JSON")
    from gfcore.stack.local import PORTS

    for name, port in PORTS.items():
        p.add_argument(f"--{name}-port", type=int, dest=f"{name}_port", help=f"{name}'s port (default: {port}, or the one the folder's stack used last)")
    p.set_defaults(func=cmd_stack)
