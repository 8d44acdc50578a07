#!/usr/bin/env python3
"""Fails when modules of a crate import each other in a cycle.

The rule: within each parent module, its child modules (each with everything
below it) must depend on each other without a cycle. A module may use its own
children and its ancestors' items; what is forbidden is two siblings (or their
descendants) that reach each other, like `app -> routes -> app`. A reference
is any `crate::`, `super::` or `self::` path, in `use` or in code; test-only
code (`#[cfg(test)]`) is not counted.

Usage: module_cycles.py [CRATE_DIR ...]   (default: every crate under crates/)
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from rust_source import crate_modules, crates, matching_brace  # noqa: E402

_USE = re.compile(r"\buse\s+([^;]*);")
_PATH = re.compile(r"\b(crate|super|self)\s*((?:::\s*\w+\s*)+)")


def expand(tree):
    """`a::{b, c::{d, e}}` -> ['a::b', 'a::c::d', 'a::c::e']; a rename
    `x as y` stays one segment, `x@as@y`."""
    tree = re.sub(r"\s+as\s+", "@as@", tree)
    tree = re.sub(r"\s+", "", tree)
    i = tree.find("{")
    if i < 0:
        return [tree]
    close = matching_brace(tree, i)
    parts, depth, start = [], 0, i + 1
    # Split the group on its own commas, not those of nested groups.
    for j in range(i + 1, close):
        depth += {"{": 1, "}": -1}.get(tree[j], 0)
        if tree[j] == "," and depth == 0:
            parts.append(tree[start:j])
            start = j + 1
    parts.append(tree[start:close])
    prefix = tree[:i]
    out = []
    for p in parts:
        if p:
            out.extend(prefix + e for e in expand(p))
    return out


def resolve(module, segments, modules, reexports=None):
    """The deepest known module that the path refers into, or None."""
    reexports = reexports or {}
    if not segments:
        return None
    head = segments[0]
    if head == "crate":
        base, rest = (), segments[1:]
    elif head in ("super", "self"):
        base, rest = module, segments
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                base = base[:-1]
            rest = rest[1:]
    elif module + (head,) in modules:
        base, rest = module, segments
    else:
        return None  # another crate, or a name in scope
    target = base
    for i, seg in enumerate(rest):
        if target + (seg,) in modules:
            target = target + (seg,)
            continue
        # An item that `target` re-exports lives where the re-export points:
        # `crate::DomainError` is a use of `crate::error`, not of the root.
        hops = 0
        while seg in reexports.get(target, {}) and hops < 8:
            target, hops = reexports[target][seg], hops + 1
        break
    return target


_PUB_USE = re.compile(r"\bpub(?:\([^)]*\))?\s+use\s+([^;]*);")


def collect_reexports(modules):
    """{module: {name: module the item comes from}} for every `pub use`."""
    found = {}
    for module, (_, text, _) in modules.items():
        for m in _PUB_USE.finditer(text):
            for path in expand(m.group(1)):
                segs = [s for s in path.split("::") if s]
                if not segs or segs[-1] == "*":
                    continue
                name = segs[-1].split("@as@")[-1]
                segs[-1] = segs[-1].split("@as@")[0]
                target = resolve(module, segs[:-1] or ["self"], modules)
                if target is not None and target != module:
                    found.setdefault(module, {})[name] = target
    return found


def references(module, text, links, modules, reexports):
    """(target module, line) for every path in this module's code and for
    every intra-doc link in its comments."""
    refs = []
    for path, line in links:
        t = resolve(module, path.split("::"), modules, reexports)
        if t is not None:
            refs.append((t, line))
    for m in _USE.finditer(text):
        line = text.count("\n", 0, m.start()) + 1
        for path in expand(m.group(1)):
            segs = [s for s in path.split("::") if s and s != "*"]
            segs = [s.split("@as@")[0] for s in segs]
            t = resolve(module, segs, modules, reexports)
            if t is not None:
                refs.append((t, line))
    without_use = _USE.sub(lambda m: " " * len(m.group(0)), text)
    for m in _PATH.finditer(without_use):
        line = without_use.count("\n", 0, m.start()) + 1
        segs = [m.group(1)] + [s.strip() for s in m.group(2).split("::") if s.strip()]
        t = resolve(module, segs, modules, reexports)
        if t is not None:
            refs.append((t, line))
    return refs


def sibling_edges(modules):
    """{(parent, a, b): [evidence]}: under `parent`, child `a` depends on child `b`."""
    edges = {}
    reexports = collect_reexports(modules)
    for module, (file, text, links) in modules.items():
        for target, line in references(module, text, links, modules, reexports):
            k = 0
            while k < min(len(module), len(target)) and module[k] == target[k]:
                k += 1
            if k == len(module) or k == len(target):
                continue  # a module using its descendant or its ancestor
            key = (module[:k], module[k], target[k])
            edges.setdefault(key, []).append(f"{file}:{line} uses {'::'.join(('crate',) + target)}")
    return edges


def cycles(edges):
    """Strongly connected sets of siblings, per parent (Tarjan)."""
    graph = {}
    for parent, a, b in edges:
        graph.setdefault((parent, a), set()).add((parent, b))
        graph.setdefault((parent, b), set())
    index, low, stack, on, found, counter = {}, {}, [], set(), [], [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(comp)

    sys.setrecursionlimit(10000)
    for v in list(graph):
        if v not in index:
            strong(v)
    return found


def check(crate_dir):
    modules = crate_modules(crate_dir)
    edges = sibling_edges(modules)
    problems = 0
    for comp in cycles(edges):
        parent = comp[0][0]
        names = sorted(c[1] for c in comp)
        where = "::".join(("crate",) + parent)
        print(f"{crate_dir}: cycle among the children of {where}: {', '.join(names)}")
        members = set(names)
        for (p, a, b), ev in sorted(edges.items()):
            if p == parent and a in members and b in members:
                print(f"    {a} -> {b}: {ev[0]}" + (f" (+{len(ev) - 1} more)" if len(ev) > 1 else ""))
        problems += 1
    return problems, len(modules)


def main(argv):
    # .ci/structure/ -> the repository root.
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    targets = argv or crates(repo)
    total, count = 0, 0
    for crate in targets:
        problems, n = check(crate)
        total += problems
        count += n
    if total:
        print(f"module cycles: {total} found in {count} modules")
        return 1
    print(f"module cycles: none in {count} modules of {len(targets)} crates")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
