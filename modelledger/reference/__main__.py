"""`python -m modelledger.reference [ROOT]`: write the generated reference files under the
repository's root (default: here); `--check` only says which are stale (exit 1 if any)."""

from __future__ import annotations

import sys
from pathlib import Path

from modelledger.reference import stale_pages, write_pages


def main(arguments: list[str]) -> int:
    check = "--check" in arguments
    rest = [a for a in arguments if a != "--check"]
    directory = Path(rest[0]) if rest else Path(".")
    if check:
        stale = stale_pages(directory)
        for name in stale:
            print(f"{directory / name} is stale: run `make docs-reference`", file=sys.stderr)
        return 1 if stale else 0
    write_pages(directory)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
