#!/usr/bin/env python3
"""The version script, the public headers and the built library agree.

usage: check_symbols.py MAP_FILE INCLUDE_DIR [LIBRARY.so]

- every INTEG_API function declared in include/integrations/*.h is listed
  in the version script, and every listed symbol is declared;
- with a library given, its dynamic symbol table exports exactly the
  listed symbols (nothing leaks through hidden visibility).
"""
import re
import subprocess
import sys
from pathlib import Path


def map_symbols(path: Path) -> set[str]:
    text = re.sub(r'/\*.*?\*/', '', path.read_text(), flags=re.S)
    syms = set()
    for block in re.findall(r'global:(.*?)(?:local:|\})', text, flags=re.S):
        syms.update(s.strip() for s in block.split(';') if s.strip())
    return syms


def header_symbols(include: Path) -> set[str]:
    syms = set()
    for h in sorted(include.glob('integrations/*.h')):
        text = re.sub(r'/\*.*?\*/', '', h.read_text(), flags=re.S)
        for decl in re.findall(r'INTEG_API\s+[^;{]*?\b(integ_\w+)\s*\(', text):
            syms.add(decl)
    return syms


def library_symbols(lib: Path) -> set[str]:
    out = subprocess.run(['nm', '-D', '--defined-only', str(lib)], check=True,
                         capture_output=True, text=True).stdout
    syms = set()
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] in ('T', 'D', 'B', 'R', 'W'):
            syms.add(parts[2].split('@')[0])
    return syms


def main() -> int:
    mapped = map_symbols(Path(sys.argv[1]))
    declared = header_symbols(Path(sys.argv[2]))
    bad = 0
    for s in sorted(declared - mapped):
        print(f'declared INTEG_API but missing from the version script: {s}')
        bad += 1
    for s in sorted(mapped - declared):
        print(f'in the version script but not declared INTEG_API in a public header: {s}')
        bad += 1
    if len(sys.argv) > 3:
        exported = library_symbols(Path(sys.argv[3]))
        for s in sorted(mapped - exported):
            print(f'listed but not exported by the library: {s}')
            bad += 1
        for s in sorted(exported - mapped):
            print(f'exported by the library but not listed: {s}')
            bad += 1
    print(f'{len(mapped)} symbols listed, {len(declared)} declared, {bad} problems')
    return 1 if bad else 0


if __name__ == '__main__':
    sys.exit(main())
