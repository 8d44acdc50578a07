"""Reading Rust source as text for the structure checks: comments, strings and
`#[cfg(test)]` items blanked out, and the module tree of a crate's `src/`.

Why text and not a parser: the checks must run on a fresh machine with only
Python, and they need no more than paths, braces and line numbers.
"""
import os
import re

_CHAR = re.compile(r"'(?:\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|\\.|[^\\'\n])'")


def blank(src):
    """The source with comments, string and char literals replaced by spaces;
    newlines are kept so line numbers stay right."""
    out = []
    i, n = 0, len(src)
    while i < n:
        c = src[i]
        if src.startswith("//", i):
            j = src.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif src.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if src.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif src.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(_spaces(src[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', src[i:i + 260]) and not _ident_before(src, i):
            m = re.match(r'r(#*)"', src[i:])
            end = src.find('"' + m.group(1), i + len(m.group(0)))
            end = n if end < 0 else end + 1 + len(m.group(1))
            out.append(_spaces(src[i:end]))
            i = end
        elif c == '"':
            j = i + 1
            while j < n and src[j] != '"':
                j += 2 if src[j] == "\\" else 1
            out.append(_spaces(src[i:j + 1]))
            i = j + 1
        elif c == "'":
            m = _CHAR.match(src, i)
            if m:
                out.append(" " * len(m.group(0)))
                i = m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _ident_before(src, i):
    return i > 0 and (src[i - 1].isalnum() or src[i - 1] == "_")


def _spaces(text):
    return "".join("\n" if ch == "\n" else " " for ch in text)


def matching_brace(text, open_at):
    """Index of the `}` that closes the `{` at `open_at` (or len(text))."""
    depth = 0
    for j in range(open_at, len(text)):
        if text[j] == "{":
            depth += 1
        elif text[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(text)


_CFG_TEST = re.compile(r"#\[cfg\(test\)\]")


def strip_test_items(text):
    """Blanks every item marked `#[cfg(test)]` (inline test modules, test-only
    functions); returns the text and the names of `mod x;` declared test-only."""
    test_mods = set()
    chars = list(text)
    for m in _CFG_TEST.finditer(text):
        k = m.end()
        # Skip further attributes and whitespace up to the item.
        while True:
            rest = re.match(r"\s*(#\[[^\]]*\])?", text[k:])
            if rest and rest.group(1):
                k += rest.end()
            else:
                k += rest.end() if rest else 0
                break
        decl = re.match(r"(pub(\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text[k:])
        if decl:
            test_mods.add(decl.group(3))
            continue
        brace, semi = text.find("{", k), text.find(";", k)
        if semi >= 0 and (brace < 0 or semi < brace):
            end = semi
        elif brace >= 0:
            end = matching_brace(text, brace)
        else:
            continue
        for j in range(m.start(), end + 1):
            if chars[j] != "\n":
                chars[j] = " "
    return "".join(chars), test_mods


_DOC_LINK = re.compile(r"^\s*//[/!].*?\[`?((?:crate|super|self)(?:::\w+)+)`?\]", re.M)


def doc_links(src):
    """(path, line) of each intra-doc link to this crate (`[`crate::a::B`]`):
    rustdoc resolves them, so they are dependencies even though they are
    comments."""
    return [(m.group(1), src.count("\n", 0, m.start()) + 1) for m in _DOC_LINK.finditer(src)]


def crate_modules(crate_dir):
    """{module path tuple: file} for the crate's `src/`, following `mod x;`
    declarations from lib.rs (or main.rs); test-only modules are left out."""
    src = os.path.join(crate_dir, "src")
    root = os.path.join(src, "lib.rs")
    if not os.path.exists(root):
        root = os.path.join(src, "main.rs")
    modules = {}

    def visit(path, file, dir_for_children):
        with open(file, encoding="utf-8") as f:
            raw = f.read()
        text, test_mods = strip_test_items(blank(raw))
        modules[path] = (file, text, doc_links(raw))
        for m in re.finditer(r"(?m)^\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text):
            name = m.group(1)
            if name in test_mods:
                continue
            for cand, sub_dir in (
                (os.path.join(dir_for_children, name + ".rs"), os.path.join(dir_for_children, name)),
                (os.path.join(dir_for_children, name, "mod.rs"), os.path.join(dir_for_children, name)),
            ):
                if os.path.exists(cand):
                    visit(path + (name,), cand, sub_dir)
                    break

    visit((), root, src)
    return modules


def crates(repo):
    """Every crate directory under crates/."""
    base = os.path.join(repo, "crates")
    return sorted(
        os.path.join(base, d)
        for d in os.listdir(base)
        if os.path.exists(os.path.join(base, d, "Cargo.toml"))
    )
