#!/usr/bin/env python3
"""Checks the structure checks themselves on tiny crates made for the purpose:
a cycle between siblings is found, a parent using its child or a child using
its parent is not, test-only code is ignored, and long functions are found."""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))


def crate(root, files):
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)
    with open(os.path.join(root, "Cargo.toml"), "w") as f:
        f.write('[package]\nname = "x"\n')


def cycles(files):
    with tempfile.TemporaryDirectory() as d:
        crate(d, files)
        r = subprocess.run([sys.executable, os.path.join(HERE, "module_cycles.py"), d],
                           capture_output=True, text=True)
        return r.returncode, r.stdout


# (what the case shows, the crate's files, expected exit code, text expected in the report)
CYCLE_CASES = [
    ("two siblings that use each other", {
        "src/lib.rs": "mod a;\nmod b;\n",
        "src/a.rs": "use crate::b::B;\npub struct A;\n",
        "src/b.rs": "pub struct B;\nfn f() -> crate::a::A { crate::a::A }\n",
    }, 1, "a, b"),
    ("parents, children, comments, strings and test code are no cycle", {
        "src/lib.rs": "mod a;\nmod b;\n",
        "src/a/mod.rs": "mod c;\nmod d;\npub use c::C;\n",
        "src/a/c.rs": "use super::d::D;\npub struct C;\n",
        "src/a/d.rs": "// use super::c::C; only in a comment\npub struct D;\nconst S: &str = \"crate::a::c\";\n",
        "src/b.rs": "use crate::a::C;\n#[cfg(test)]\nmod tests { use crate::b; }\n",
    }, 0, "none"),
    ("a cycle one level down", {
        "src/lib.rs": "mod a;\n",
        "src/a/mod.rs": "mod c;\nmod d;\n",
        "src/a/c.rs": "use super::d::D;\npub struct C;\n",
        "src/a/d.rs": "pub struct D;\nfn f(_: super::c::C) {}\n",
    }, 1, "children of crate::a: c, d"),
    ("an intra-doc link is a dependency too", {
        "src/lib.rs": "mod a;\nmod b;\n",
        "src/a.rs": "//! Sent by [`crate::b`].\npub struct A;\n",
        "src/b.rs": "use crate::a::A;\n",
    }, 1, "a, b"),
    ("a use through a re-export counts where the item lives", {
        "src/lib.rs": "mod a;\nmod b;\npub use b::{B as Renamed, Other};\n",
        "src/a.rs": "pub struct A;\nfn f(_: crate::Renamed) {}\n",
        "src/b.rs": "use crate::a::A;\npub struct B;\npub struct Other;\n",
    }, 1, "a, b"),
]


def main():
    for what, files, want_code, want_text in CYCLE_CASES:
        code, out = cycles(files)
        assert code == want_code and want_text in out, f"{what}: {out}"
    with tempfile.TemporaryDirectory() as d:
        body = "\n".join(f"    let x{i} = {i};" for i in range(85))
        crate(d, {"src/lib.rs": f"pub fn long() {{\n{body}\n}}\n#[cfg(test)]\nmod t {{\n fn long_test() {{\n{body}\n}}\n}}\n"})
        subprocess.run(["git", "init", "-q", d], check=True)
        r = subprocess.run([sys.executable, os.path.join(HERE, "sizes.py"), "--repo", d],
                           capture_output=True, text=True)
        assert r.returncode == 1 and "fn long is 87 lines" in r.stdout and "long_test" not in r.stdout, r.stdout
    print("structure checks self-test: ok")


if __name__ == "__main__":
    main()
