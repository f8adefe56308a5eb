"""Fails when a built library leaves one of fkd_ops' own symbols undefined.

    check_symbols.py [--nm NM] LIBRARY

A function declared in a header but defined only in a source that this build
configuration leaves out (a GPU-only file in a CPU build, say) links fine as a
shared library and fails only at import, with "undefined symbol". Optimized
builds can hide it by dropping the call; a Debug or sanitizer build then breaks.
Run after every link (CMake POST_BUILD), so every configuration proves it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nm", default="")
    parser.add_argument("library")
    args = parser.parse_args()
    nm = args.nm or shutil.which("nm")
    if not nm:
        print("check_symbols: no nm found; skipped", file=sys.stderr)
        return 0
    out = subprocess.run([nm, "-D", "--undefined-only", "-C", args.library], capture_output=True, text=True)
    if out.returncode != 0:
        print(f"check_symbols: {nm} failed on {args.library}: {out.stderr.strip()}", file=sys.stderr)
        return 1
    own = [line.split(None, 1)[-1] for line in out.stdout.splitlines() if "fkd::" in line or " fkd_" in line]
    if own:
        print(f"{args.library} leaves fkd_ops symbols undefined (it would fail at import):", file=sys.stderr)
        for name in own:
            print(f"  {name}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
