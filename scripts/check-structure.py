#!/usr/bin/env python3
"""Check two structural rules over the Rust sources in src/; exit 1 if broken.

1. No import circle among src/ files (a circle cannot be read, tested or
   split one file at a time). File A -> file B when A's production code names
   a path into B: `crate::..`, `super::..`, `self::..`, `child::..` for a
   `mod child;` in A, or a name A bound with `use` (`use crate::jobs;` then
   `jobs::enqueue`). A path resolves to its deepest module prefix that is a
   file. `mod x;` is not an edge; `pub use` is. A child using its own
   ancestors (`super::Store` in `store/plans.rs`) is not an edge either:
   that is the parent's inside. A parent using its children counts, as do
   siblings and everything else. Items under a test-only `#[cfg(..)]` are
   skipped: tests may reach anywhere. src/main.rs is its own
   node, resolving `agentic::x` like `crate::x`.
2. No fn in src/ (tests included) longer than 120 lines, from the line of
   `fn` to that of its closing brace: long functions hide steps with names.

A small lexer first blanks comments and string/char literals, so code-like
text in them fools neither rule. Standard library only.
"""
import argparse
import re
import sys
from pathlib import Path

IDENT = r"[A-Za-z_][A-Za-z0-9_]*"
PATH = re.compile(r"(?<![\w:.$])" + IDENT + r"(?:\s*::\s*" + IDENT + r")+")
# An attribute on one of these ends at `;` or its body; on anything else
# (a field, a match arm, an expression) a `,` ends it too.
ITEM_KEYWORDS = {"fn", "mod", "impl", "struct", "enum", "union", "use", "const",
                 "static", "type", "trait", "extern", "macro_rules"}


def blank(text):
    """Replace comments and literals with spaces, keeping newlines (and so
    line numbers). Lifetimes and labels (`'a`) are left alone."""
    out, i, n = list(text), 0, len(text)
    while i < n:
        c, after_ident = text[i], i > 0 and (text[i - 1].isalnum() or text[i - 1] == "_")
        if text.startswith("//", i):
            end = n if text.find("\n", i) < 0 else text.find("\n", i)
        elif text.startswith("/*", i):
            end = block_comment_end(text, i)
        elif c in "rbc" and not after_ident and raw_string_end(text, i):
            end = raw_string_end(text, i)
        elif c == '"' or (c in "bc" and text.startswith('"', i + 1) and not after_ident):
            end = quoted_end(text, text.index('"', i), '"')
        elif c == "'" or (c == "b" and text.startswith("'", i + 1) and not after_ident):
            end = char_literal_end(text, text.index("'", i))
        else:
            end = None
        if end is None:
            i += 1
            continue
        out[i:end] = [ch if ch == "\n" else " " for ch in text[i:end]]
        i = end
    return "".join(out)


def block_comment_end(text, i):
    depth = 0  # Rust block comments nest
    for m in re.compile(r"/\*|\*/").finditer(text, i):
        depth += 1 if m.group() == "/*" else -1
        if depth == 0:
            return m.end()
    return len(text)


def raw_string_end(text, i):
    """End of a raw string (r"..", r#".."#, br"..", cr".."), else None;
    a raw identifier (r#type) is not one."""
    m = re.compile(r'[bc]?r(#*)"').match(text, i)
    if not m:
        return None
    close = text.find('"' + m.group(1), m.end())
    return len(text) if close < 0 else close + 1 + len(m.group(1))


def quoted_end(text, i, quote):
    i += 1
    while i < len(text) and text[i] != quote:
        i += 2 if text[i] == "\\" else 1
    return i + 1


def char_literal_end(text, i):
    """End of a char literal at the quote i; None for a lifetime, whose
    identifier is not closed by a quote right after one character."""
    if text.startswith("\\", i + 1):
        return quoted_end(text, i, "'")
    if i + 2 < len(text) and text[i + 2] == "'" and text[i + 1] != "\n":
        return i + 3
    return None


def line_of(code, pos):
    return code.count("\n", 0, pos) + 1


def spaces(s):
    return re.sub(r"[^\n]", " ", s)


def matching_brace(code, i):
    """Index just past the `}` matching the `{` at i (code is blanked)."""
    depth = 0
    for k in range(i, len(code)):
        depth += {"{": 1, "}": -1}.get(code[k], 0)
        if depth == 0:
            return k + 1
    return len(code)


def scan_item(code, i, comma_ends=False):
    """From i, at bracket depth 0: ("body", index of the item's `{`) or
    ("end", index past its `;` (or `,`), or of an enclosing block's `}`)."""
    depth = 0
    for k in range(i, len(code)):
        c = code[k]
        if c in "([)]":
            depth += 1 if c in "([" else -1
        elif depth == 0 and c in "{}":
            return ("body" if c == "{" else "end"), k
        elif depth == 0 and (c == ";" or (c == "," and comma_ends)):
            return "end", k + 1
    return "end", len(code)


def implies_test(tokens):
    """Consume one cfg predicate; True when it can only hold under `test`:
    test, all(.., test, ..), any(test, test) -- never not(test)."""
    name = tokens.pop(0)
    if tokens and tokens[0] == "=":  # feature = "x" (the string is blanked)
        tokens.pop(0)
        return False
    if not tokens or tokens[0] != "(":
        return name == "test"
    tokens.pop(0)
    parts = []
    while tokens and tokens[0] != ")":
        parts.append(implies_test(tokens))
        if tokens and tokens[0] == ",":
            tokens.pop(0)
    tokens[:1] = []
    return {"all": any(parts), "any": bool(parts) and all(parts)}.get(name, False)


def strip_test_items(code):
    """Blank each item under a test-only `#[cfg(..)]` (usually `mod tests`)."""
    out = code
    for m in re.finditer(r"#\s*\[\s*cfg\s*(\(.*?\))\s*\]", code, re.S):
        if not implies_test(re.findall(IDENT + r"|[(),=]", "all" + m.group(1))):
            continue
        word = re.compile(r"(?:\s*#\s*\[[^\]]*\])*\s*(?:pub\s*(?:\([^)]*\))?\s*)?"
                          r"(?:async\s+|unsafe\s+)*(\w+)").match(code, m.end())
        kind, k = scan_item(code, m.end(), not word or word.group(1) not in ITEM_KEYWORDS)
        end = matching_brace(code, k) if kind == "body" else k
        out = out[:m.start()] + spaces(out[m.start():end]) + out[end:]
    return out


def module_map(src):
    """Module path (tuple) -> file, and file -> its own module path."""
    modules, own = {}, {}
    for f in sorted(src.rglob("*.rs")):
        parts = list(f.relative_to(src).with_suffix("").parts)
        if parts in (["lib"], ["main"]) or parts[-1] == "mod":
            parts = parts[:-1]
        own[f] = tuple(parts)
        if f != src / "main.rs":
            modules[tuple(parts)] = f
    return modules, own


def use_leaves(tokens, prefix=()):
    """Expand a tokenized `use` tree into (segments, name bound or None);
    consumes the tokens it reads."""
    segs, leaves = list(prefix), []
    while tokens and tokens[0] not in (",", "}"):
        t = tokens.pop(0)
        if t == "{":
            while tokens and tokens[0] != "}":
                leaves += use_leaves(tokens, segs)
                if tokens[:1] == [","]:
                    tokens.pop(0)
            tokens[:1] = []  # the closing brace
            return leaves
        if t == "as":  # `x as y`, `self as y`: y names x
            return leaves + [([s for s in segs if s != "self"], tokens.pop(0))]
        if t != "::":
            segs.append(t)
    if segs[-1:] == ["self"]:
        segs.pop()
    if segs[-1:] == ["*"]:
        return leaves + [(segs[:-1], None)]
    return leaves + ([(segs, segs[-1])] if segs else [])


def absolute(segs, here, roots, aliases):
    """The crate-absolute module path a path names, or None if not ours."""
    if segs[0] in roots:
        return list(segs[1:])
    if segs[0] in aliases:
        return aliases[segs[0]] + list(segs[1:])
    if segs[0] not in ("self", "super"):
        return None
    base = list(here)
    while segs and segs[0] in ("self", "super"):
        if segs[0] == "super" and not base:
            return None
        base, segs = (base[:-1] if segs[0] == "super" else base), segs[1:]
    return base + list(segs)


def file_edges(path, modules, own, crate_name):
    """Edges out of one file: {target file: (line, path as written)}, first use."""
    code = strip_test_items(blank(path.read_text(encoding="utf-8")))
    roots = {crate_name if path == path.parent / "main.rs" and not own[path] else "crate"}
    edges = {}
    for pos, text, target in sorted(paths_in(code, own[path], roots)):
        file = deepest_file(modules, target)
        if file and file != path and file not in edges and not inside(own[path], own[file]):
            edges[file] = (line_of(code, pos), text)
    return edges


def inside(child, ancestor):
    """`child` is nested in `ancestor`: a child module using its parent's
    items (`super::Store` from `store/plans.rs`) is the parent's own inside,
    not an import. The other way, a parent using its children, counts."""
    return len(ancestor) < len(child) and child[:len(ancestor)] == ancestor


def paths_in(code, own, roots):
    """Yield (position, path as written, crate-absolute path) for each path
    in blanked code that names a module of ours."""
    # A bare `child::x` names a child declared by `mod child;` here.
    aliases = {m: list(own) + [m] for m in re.findall(r"(?<![\w$])mod\s+(" + IDENT + r")\s*;", code)}
    inline = [(m.start(), matching_brace(code, m.end() - 1), m.group(1))
              for m in re.finditer(r"(?<![\w$])mod\s+(" + IDENT + r")\s*\{", code)]

    def here(pos):  # the module at pos, counting inline `mod x { .. }`
        return own + tuple(name for a, b, name in inline if a < pos < b)

    # `use $crate::..` in a macro_rules! belongs to the macro's caller.
    uses = [m for m in re.finditer(r"(?<![\w:$])use\s+([^;]*);", code) if "$" not in m.group(1)]
    for m in uses:  # every name a `use` binds is known before bare paths are read
        for segs, name in use_leaves(re.findall(IDENT + r"|::|[{},*]", m.group(1))):
            target = absolute(segs, here(m.start()), roots, aliases) if segs else None
            if target is not None:
                yield m.start(), "::".join(segs), target
                aliases.update({name: target} if name and name != "_" else {})
    for m in uses:  # a use tree's prefix (`crate::a::{..}`) is not a path to `a`
        code = code[:m.start()] + spaces(m.group(0)) + code[m.end():]
    for m in PATH.finditer(code):
        segs = re.findall(IDENT, m.group(0))
        target = absolute(segs, here(m.start()), roots, aliases)
        if target is not None:
            yield m.start(), "::".join(segs), target


def deepest_file(modules, target):
    """`crate::aws::scope::check` lives in aws/scope.rs: the longest prefix
    of the path that is a module with a file of its own."""
    for k in range(len(target), -1, -1):
        if tuple(target[:k]) in modules:
            return modules[tuple(target[:k])]
    return None


def strongly_connected(graph):
    """Tarjan's algorithm: the components of more than one file, sorted."""
    index, low, stack, comps = {}, {}, [], []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = stack[stack.index(v):]
            del stack[stack.index(v):]
            if len(comp) > 1:
                comps.append(sorted(comp))

    sys.setrecursionlimit(max(1000, 4 * len(graph)))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return sorted(comps)


def shortest_cycle(graph, members, start):
    """A shortest cycle from start back to it, inside members (breadth first)."""
    parent, queue = {start: None}, [start]
    for v in queue:
        for w in sorted(graph[v]):
            if w == start:
                chain = [v]
                while parent[chain[-1]] is not None:
                    chain.append(parent[chain[-1]])
                return chain[::-1] + [start]
            if w in members and w not in parent:
                parent[w] = v
                queue.append(w)
    return [start]


def check_circles(src, crate_name, verbose):
    modules, own = module_map(src)
    graph = {f: file_edges(f, modules, own, crate_name) for f in own}
    comps = strongly_connected(graph)
    for comp in comps:
        print(f"circle of {len(comp)} files: " + ", ".join(rel(src, f) for f in comp))
        # A big circle is usually several small ones sharing files: show
        # shortest cycles until every file of it is on one.
        covered = set()
        for start in comp:
            if start in covered:
                continue
            cycle = shortest_cycle(graph, set(comp), start)
            covered.update(cycle)
            print("  cycle: " + " → ".join(rel(src, f) for f in cycle))
            for a, b in zip(cycle, cycle[1:]):
                print(f"    {rel(src, a)}:{graph[a][b][0]}: {graph[a][b][1]}")
        if verbose:
            print("  every edge inside this circle:")
            for a in comp:
                for b in sorted(set(graph[a]) & set(comp)):
                    print(f"    {rel(src, a)}:{graph[a][b][0]}: {graph[a][b][1]}  → {rel(src, b)}")
    return len(comps), sum(len(e) for e in graph.values())


def long_functions(path, limit):
    """(line, name, length) of each fn item with a body longer than limit;
    `fn(u8)` pointer types are not items, `fn f(..);` has no body."""
    code = blank(path.read_text(encoding="utf-8"))
    for m in re.finditer(r"(?<![\w$])fn\s+(?:r#)?(" + IDENT + r")", code):
        kind, k = scan_item(code, m.end())
        if kind == "body":
            length = line_of(code, matching_brace(code, k) - 1) - line_of(code, m.start()) + 1
            if length > limit:
                yield line_of(code, m.start()), m.group(1), length


def check_lengths(src, limit):
    found = [(length, rel(src, f), line, name)
             for f in sorted(src.rglob("*.rs"))
             for line, name, length in long_functions(f, limit)]
    for length, file, line, name in sorted(found, key=lambda x: (-x[0], x[1], x[2])):
        print(f"{file}:{line}: {name} is {length} lines (limit {limit})")
    return len(found)


def rel(src, f):
    return f.relative_to(src.parent).as_posix()


def crate_name(root):
    """The library's name as main.rs spells it: Cargo.toml's first `name`."""
    toml = root / "Cargo.toml"
    m = toml.exists() and re.search(r'(?m)^name\s*=\s*"([^"]+)"', toml.read_text(encoding="utf-8"))
    return (m.group(1) if m else "agentic").replace("-", "_")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", type=Path, default=Path(__file__).resolve().parent.parent,
                    help="repository root holding src/ (default: this script's repo)")
    ap.add_argument("--only", choices=["circles", "lengths"], help="check one rule only")
    ap.add_argument("--max-fn-lines", type=int, default=120, metavar="N")
    ap.add_argument("-v", "--verbose", action="store_true",
                    help="list every edge inside each circle, to see what to move")
    args = ap.parse_args()
    src = args.root.resolve() / "src"
    if not src.is_dir():
        sys.exit(f"error: no src/ directory under {args.root}")
    broken, summary = False, []
    if args.only != "lengths":
        circles, edges = check_circles(src, crate_name(args.root), args.verbose)
        broken |= circles > 0
        summary.append(f"{circles} import circle(s) among {edges} file edges")
    if args.only != "circles":
        longs = check_lengths(src, args.max_fn_lines)
        broken |= longs > 0
        summary.append(f"{longs} function(s) over {args.max_fn_lines} lines")
    print(("FAIL: " if broken else "ok: ") + "; ".join(summary))
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
