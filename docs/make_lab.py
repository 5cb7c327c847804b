"""Writes docs/lab.md, the gallery of the lectures' experiments, and docs/lab/NAME/ (figures,
results.csv, summary.md) by running every experiment of ``minigrad lab`` on the engine.

    python docs/make_lab.py                 # every experiment, full size (a few minutes on 2 cores)
    python docs/make_lab.py --quick         # the small versions
    python docs/make_lab.py --only init --out DIR
"""

from __future__ import annotations

import argparse
import pathlib
import time

from minigrad import lab
from minigrad.io import write_atomically


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path(__file__).resolve().parent)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--only", nargs="*", default=None, help="experiment names (default: all)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    names = args.only or list(lab.ORDER)
    lines = [
        "# The lectures' lab",
        "",
        "<!-- Written by docs/make_lab.py; edit that script or minigrad/lab, not this page. -->",
        "",
        "Every experiment the course describes, run on the engine by `minigrad lab NAME` (or",
        "`minigrad.lab.run(name)`), each with the lecture's claim, what was measured, and whether the",
        "claim held this time by a stated criterion. Regenerate this page with `python docs/make_lab.py`.",
        f"This run: {'quick' if args.quick else 'full'} size, seed {args.seed}.",
        "",
        "| experiment | the claim | verdict |",
        "|---|---|---|",
    ]
    sections = []
    for name in names:
        started = time.perf_counter()
        folder = args.out / "lab" / name
        result = lab.run(name, out=folder, quick=args.quick, seed=args.seed)
        seconds = time.perf_counter() - started
        print(f"{name}: {result.verdict} ({seconds:.1f}s)")
        lines.append(f"| [{name}](#{name}) | {result.claim} | {result.verdict} |")
        summary = result.summary().replace(f"# {name}", f"## {name}", 1)
        pictures = [f"![{name}: {figure}](lab/{name}/{figure})" for figure in result.figures]
        sections += [
            summary,
            *pictures,
            "",
            f"Data: [lab/{name}/results.csv](lab/{name}/results.csv); {seconds:.1f} s.",
            "",
        ]
    write_atomically(args.out / "lab.md", ["\n".join([*lines, "", *sections]).encode()])
    print(f"wrote {args.out / 'lab.md'}")


if __name__ == "__main__":
    main()
