#!/usr/bin/env python3
"""Lists circles between the source files of each crate in the workspace.

A file uses another when it names an item there (`use crate::a::b`, `super::x`, an inline
`crate::a::X`); re-exports in lib.rs / mod.rs are followed to the file that defines the item.
Test modules (`#[cfg(test)] mod tests`) are left out. Exit 1 when a circle is found.

    python3 scripts/module-cycles.py            # every crate: src/ and crates/*/src/
"""
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def strip(text):
    text = re.sub(r"//[^\n]*", "", text)
    i = text.find("#[cfg(test)]\nmod tests")
    return text if i < 0 else text[:i]


def expand(prefix, body):
    """`a::{b, c::{d}}` → ["a::b", "a::c::d"]."""
    out, depth, cur = [], 0, ""
    for ch in body:
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
        if ch == "," and depth == 0:
            out.append(cur.strip())
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur.strip())
    paths = []
    for part in out:
        m = re.match(r"^([\w:]*?)::\{(.*)\}$", part, re.S)
        if m:
            paths += expand(prefix + m.group(1) + "::", m.group(2))
        else:
            paths.append(prefix + part.split(" as ")[0].strip())
    return paths


def crate_files(src):
    files = {}
    for f in src.rglob("*.rs"):
        rel = f.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] in ("mod", "lib", "main"):
            parts = parts[:-1]
        if f.name == "main.rs" and (src / "lib.rs").exists():
            continue
        if "bin" in parts:
            continue
        files[tuple(parts)] = f
    return files


def resolve(files, path):
    """The file defining `path` (a module path as a tuple), following `pub use` in mod files."""
    for n in range(len(path), -1, -1):
        if path[:n] in files:
            mod = path[:n]
            rest = path[n:]
            if rest and files[mod].name in ("mod.rs", "lib.rs", "main.rs"):
                # An item of a mod file: maybe re-exported from a child.
                text = strip(files[mod].read_text())
                for m in re.finditer(r"pub(?:\([\w]+\))?\s+use\s+([^;]+);", text):
                    stmt = m.group(1).strip()
                    if "{" in stmt:
                        head, body = stmt.split("{", 1)
                        items = expand(head, body.rsplit("}", 1)[0])
                    else:
                        items = [stmt]
                    for it in items:
                        segs = it.split("::")
                        if segs[-1] == rest[0] and segs[0] not in ("crate", "super", "self"):
                            child = mod + (segs[0],)
                            if child in files:
                                return resolve(files, child + tuple(segs[1:-1]) + rest)
            return mod
    return ()


def uses(files, mod, f):
    text = strip(f.read_text())
    is_mod_file = f.name in ("mod.rs", "lib.rs", "main.rs")
    here = mod if is_mod_file else mod[:-1]  # the module `super` of a child is relative to
    paths = []
    for m in re.finditer(r"\buse\s+([^;]+);", text):
        stmt = m.group(1).strip()
        if "{" in stmt:
            head, body = stmt.split("{", 1)
            paths += expand(head, body.rsplit("}", 1)[0])
        else:
            paths.append(stmt)
    paths += re.findall(r"\b(?:crate|super)(?:::\w+)+", text)
    out = set()
    for p in paths:
        segs = [s for s in p.split("::") if s]
        if not segs:
            continue
        if segs[0] == "crate":
            target = tuple(segs[1:])
        elif segs[0] == "super":
            base = list(mod)
            # `super` in a file module: its parent; in a mod file: the parent of the module.
            base = base[:-1]
            while len(segs) > 1 and segs[1] == "super":
                base = base[:-1]
                segs = segs[1:]
            target = tuple(base) + tuple(segs[1:])
        elif segs[0] == "self":
            target = mod + tuple(segs[1:])
        elif not is_mod_file:
            continue
        else:
            # A mod file's `use child::x`.
            target = mod + tuple(segs)
            if mod + (segs[0],) not in files:
                continue
        dest = resolve(files, target)
        if dest in files and dest != mod:
            out.add(dest)
    return out


def cycles(graph):
    index, low, stack, on, comps, i = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = i[0]
        i[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
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
                comps.append(comp)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            visit(v)
    return comps


def main():
    found = 0
    for src in [ROOT / "src"] + sorted(ROOT.glob("crates/*/src")):
        files = crate_files(src)
        graph = {mod: uses(files, mod, f) for mod, f in files.items()}
        for comp in cycles(graph):
            found += 1
            names = sorted(str(files[m].relative_to(ROOT)) for m in comp)
            print("circle: " + " ↔ ".join(names))
            if "--edges" in sys.argv:
                for m in comp:
                    for w in sorted(graph[m]):
                        if w in comp:
                            print(f"  {files[m].relative_to(src)} → {files[w].relative_to(src)}")
    if found == 0:
        print("no circles between files")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
