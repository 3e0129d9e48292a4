"""The ``tpslab`` command: thin argparse wrappers around the library.

Each command is a ``_cmd_<name>(args) -> int`` function plus its parser in ``_build_parser``.
Heavy modules are imported inside the command functions so ``tpslab --help`` stays instant.
"""

from __future__ import annotations

import argparse
import sys


def _cmd_mini(args) -> int:
    from tpslab import synthetic

    if args.out is None:
        root = synthetic.ensure_mini(preset=args.preset, seed=args.seed, progress=not args.quiet)
    else:
        synthetic.generate(args.out, preset=args.preset, seed=args.seed, progress=not args.quiet)
        root = args.out
    print(root)
    return 0


def _build_parser() -> argparse.ArgumentParser:
    from tpslab import __version__

    parser = argparse.ArgumentParser(
        prog="tpslab",
        description="Kinetics-TPS tools: build the mini dataset, index and validate annotations, "
        "check and extract video frames, score predictions.",
    )
    parser.add_argument("--version", action="version", version=f"tpslab {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    p = sub.add_parser("mini", help="generate the embedded mini dataset (release layout)",
                       description="Generate the mini dataset. Without OUT it is made once in the "
                       "cache folder ($TPSLAB_CACHE or ~/.cache/tpslab) and reused; its path is printed.")
    p.add_argument("out", nargs="?", help="folder to write the dataset root into (default: the cache)")
    p.add_argument("--preset", choices=["tiny", "default"], default="default",
                   help="dataset size (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=_cmd_mini)

    return parser


def main(argv=None) -> int:
    args = _build_parser().parse_args(argv)
    try:
        return args.func(args)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
