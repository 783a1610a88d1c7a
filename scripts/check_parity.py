#!/usr/bin/env python3
"""Check that every exported C symbol is wrapped by every binding.

The exported symbols are the global entries of every version node of
lib/integrations.map (INTEGRATIONS_0.1, INTEGRATIONS_0.2, ...). A symbol counts as wrapped by

  python  when bindings/python/integrations/*.py uses it as a name
          (lib.integ_x) or as a whole string literal ("integ_x"), outside
          comments and docstrings;
  node    when bindings/node/src/*.c mentions it outside comments.

Symbols deliberately left to C hosts are listed in doc/bindings.md on one
line "C-only: integ_a, integ_b, ..." and are skipped.

Prints the missing symbols per binding and exits 1 if any (or if the C-only
list names a symbol that is not exported); otherwise prints
"parity: N symbols, all wrapped (C-only: ...)" and exits 0.

Usage: scripts/check_parity.py [--root DIR] [--only python|node]
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tokenize
from pathlib import Path
from typing import Dict, List, Set

SYMBOL = re.compile(r"\binteg_[A-Za-z0-9_]+\b")


def _map_text(map_file: Path) -> str:
    """The version script without comments and ``extern "lang" { ... }`` blocks."""
    text = re.sub(r"/\*.*?\*/", " ", map_file.read_text(encoding="utf-8"), flags=re.S)
    text = re.sub(r"#[^\n]*", " ", text)
    return re.sub(r'\bextern\s*"[^"]*"\s*\{[^{}]*\}\s*;?', " ", text)


def exported_symbols(map_file: Path) -> List[str]:
    """The global symbols of every version node of an ld version script.

    A node is ``NAME { ... } [PARENT];`` (INTEGRATIONS_0.1, INTEGRATIONS_0.2,
    ...; an anonymous ``{ ... };`` too). Inside it, entries are global until
    a ``local:`` label and after a ``global:`` one (ld's default scope is
    global); wildcards and ``extern "lang" { ... }`` blocks are not symbols
    of ours and are skipped.
    """
    symbols: List[str] = []
    for body in re.findall(r"\{([^{}]*)\}", _map_text(map_file)):
        scope = "global"
        for token in re.split(r"\b(global|local)\s*:|;", body):
            token = (token or "").strip()
            if token in ("global", "local"):
                scope = token
            elif scope == "global" and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", token):
                symbols.append(token)
    return sorted(set(symbols))


def version_nodes(map_file: Path) -> List[str]:
    """The names of the version nodes, in file order (for the summary line)."""
    return re.findall(r"([A-Za-z_][A-Za-z0-9_.]*)\s*\{", _map_text(map_file))


def c_only(doc: Path) -> List[str]:
    """The names on the "C-only:" line of doc/bindings.md (empty if none)."""
    if not doc.is_file():
        return []
    for line in doc.read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\s*(?:[-*]\s*)?(?:\*\*)?C-only:?(?:\*\*)?:?\s*(.*)$", line)
        if m and SYMBOL.search(m.group(1)):
            return sorted(set(SYMBOL.findall(m.group(1))))
    return []


def python_references(files: List[Path]) -> Set[str]:
    """integ_* names and whole string literals used in Python sources."""
    found: Set[str] = set()
    for f in files:
        try:
            tokens = list(tokenize.generate_tokens(io.StringIO(f.read_text(encoding="utf-8")).readline))
        except (tokenize.TokenError, SyntaxError) as e:
            print(f"warning: cannot tokenize {f}: {e}", file=sys.stderr)
            continue
        for tok in tokens:
            if tok.type == tokenize.NAME and tok.string.startswith("integ_"):
                found.add(tok.string)
            elif tok.type == tokenize.STRING:
                m = re.fullmatch(r"[rRbBuU]?(['\"])(integ_[A-Za-z0-9_]+)\1", tok.string)
                if m:
                    found.add(m.group(2))
    return found


def c_references(files: List[Path]) -> Set[str]:
    """integ_* identifiers in C sources, outside comments."""
    found: Set[str] = set()
    pattern = re.compile(r'"(?:\\.|[^"\\\n])*"|/\*.*?\*/|//[^\n]*', re.S)
    for f in files:
        text = f.read_text(encoding="utf-8", errors="replace")
        # Drop comments; keep string literals (napi names are strings too).
        text = pattern.sub(lambda m: m.group(0) if m.group(0).startswith('"') else " ", text)
        found.update(SYMBOL.findall(text))
    return found


def main(argv: List[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                    help="the source tree (default: this script's parent directory)")  # fmt: skip
    ap.add_argument("--only", choices=["python", "node"], help="check one binding only")
    args = ap.parse_args(argv)
    root: Path = args.root

    symbols = exported_symbols(root / "lib" / "integrations.map")
    if not symbols:
        print(f"parity: no exported symbols found in {root / 'lib/integrations.map'}", file=sys.stderr)
        return 1
    skipped = c_only(root / "doc" / "bindings.md")
    status = 0
    stale = [s for s in skipped if s not in symbols]
    if stale:
        print(f"doc/bindings.md: C-only names symbols that are not exported: {', '.join(stale)}")
        status = 1
    wanted = [s for s in symbols if s not in skipped]

    bindings: Dict[str, tuple] = {
        "python": (sorted((root / "bindings" / "python" / "integrations").glob("*.py")), python_references,
                   "bindings/python/integrations/*.py"),
        "node": (sorted((root / "bindings" / "node" / "src").glob("*.c")), c_references,
                 "bindings/node/src/*.c"),
    }  # fmt: skip
    for name, (files, scan, where) in bindings.items():
        if args.only and name != args.only:
            continue
        if not files:
            print(f"{name}: no sources ({where}); {len(wanted)} symbols unwrapped")
            status = 1
            continue
        missing = [s for s in wanted if s not in scan(files)]
        if missing:
            print(f"{name}: {len(missing)} of {len(wanted)} symbols not wrapped ({where}):")
            for s in missing:
                print(f"  {s}")
            status = 1

    if status == 0:
        scope = f" by {args.only}" if args.only else ""
        nodes = ", ".join(version_nodes(root / "lib" / "integrations.map")) or "anonymous"
        print(f"parity: {len(symbols)} symbols ({nodes}), all wrapped{scope} (C-only: {', '.join(skipped) or 'none'})")
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
