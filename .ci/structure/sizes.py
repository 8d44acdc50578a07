#!/usr/bin/env python3
"""Fails when a Rust file is over 600 lines, or a function outside tests is
over 80 lines (from its `fn` line to its closing brace).

Tests are left out of the function rule: files under a crate's tests/,
benches/ and examples/, and `#[cfg(test)]` items in src/. The file rule
holds for every `.rs` file.

Usage: sizes.py [--max-file N] [--max-fn N]
"""
import argparse
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rust_source import blank, matching_brace, strip_test_items  # noqa: E402

_FN = re.compile(r"\bfn\s+(\w+)")


def rust_files(repo):
    """Tracked and new (not ignored) .rs files: what a clean clone would have."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "*.rs"],
        cwd=repo, capture_output=True, text=True, check=True,
    ).stdout.split()
    return sorted(f for f in out if os.path.exists(os.path.join(repo, f)))


def long_functions(text, limit):
    """(name, first line, length) of each function longer than `limit` lines."""
    found = []
    for m in _FN.finditer(text):
        depth, k = 0, m.end()
        # The body starts at the first `{` outside parentheses and brackets;
        # a `;` first means a declaration without a body.
        while k < len(text):
            ch = text[k]
            if ch in "([":
                depth += 1
            elif ch in ")]":
                depth -= 1
            elif depth == 0 and ch in "{;":
                break
            k += 1
        if k >= len(text) or text[k] == ";":
            continue
        end = matching_brace(text, k)
        first = text.count("\n", 0, m.start()) + 1
        last = text.count("\n", 0, end) + 1
        if last - first + 1 > limit:
            found.append((m.group(1), first, last - first + 1))
    return found


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--max-file", type=int, default=600)
    ap.add_argument("--max-fn", type=int, default=80)
    ap.add_argument("--repo", default=".")
    args = ap.parse_args()
    problems = 0
    files = rust_files(args.repo)
    for rel in files:
        path = os.path.join(args.repo, rel)
        with open(path, encoding="utf-8") as f:
            raw = f.read()
        lines = raw.count("\n") + (0 if raw.endswith("\n") else 1)
        if lines > args.max_file:
            print(f"{rel}: {lines} lines (at most {args.max_file})")
            problems += 1
        parts = rel.split("/")
        if any(p in ("tests", "benches", "examples") for p in parts[:-1]):
            continue
        text, _ = strip_test_items(blank(raw))
        for name, line, length in long_functions(text, args.max_fn):
            print(f"{rel}:{line}: fn {name} is {length} lines (at most {args.max_fn})")
            problems += 1
    if problems:
        print(f"sizes: {problems} over the limits in {len(files)} files")
        return 1
    print(f"sizes: {len(files)} files, none over {args.max_file} lines, no function over {args.max_fn} lines")
    return 0


if __name__ == "__main__":
    sys.exit(main())
