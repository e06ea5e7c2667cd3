"""What every `hear-dual` command shares: one line for an error a user can act on, and running a subcommand's
module on its own (`python -m hear_dual.compare ...`) exactly as `hear-dual compare ...` runs it.

The command line (hear_dual.cli) imports the subcommand modules; they import this module, never the CLI back.
"""

from __future__ import annotations

import argparse
import sys


def run(args: argparse.Namespace) -> int:
    """Run a parsed command; an error a user can act on (a missing file, a bad value, a missing package) is one
    line on stderr and exit status 2, never a traceback."""
    try:
        return args.func(args)
    except (FileNotFoundError, ValueError, ImportError) as e:
        print(f"hear-dual: error: {e}", file=sys.stderr)
        return 2


def standalone(name: str, add_parser, argv=None) -> int:
    """`python -m hear_dual.<module>`: `add_parser(subparsers)` adds the subcommand `name`; argv holds the arguments
    after it (default sys.argv[1:])."""
    parser = argparse.ArgumentParser(prog="hear-dual")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return run(parser.parse_args([name, *(sys.argv[1:] if argv is None else argv)]))
