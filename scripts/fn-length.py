#!/usr/bin/env python3
"""Function-length check: no function in crates/*/src longer than the limit.

    python3 scripts/fn-length.py [--limit 80] [--report]

Counts the lines from a function's `fn` line to its closing brace. Test
code is left out: `#[cfg(test)]` modules and `#[test]`/`#[pg_test]`
functions, and the files under tests/, benches/ and fuzz/. `--report`
lists every function over the limit and exits 0; without it the script
fails when one is found (CI runs it so). A function that grows past a
screen is split into named steps (DEVELOPERS.md); this makes that a check.
"""
import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
FN = re.compile(r"\bfn\s+([A-Za-z_][A-Za-z0-9_]*)")


def strip(text):
    """The text with comments, strings and char literals blanked (newlines
    kept), so braces inside them are not counted."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "r" and re.match(r'r#*"', text[i:i + 10]) and (i == 0 or not text[i - 1].isalnum()):
            m = re.match(r'r(#*)"', text[i:])
            end = '"' + m.group(1)
            j = text.find(end, i + len(m.group(0)))
            j = n if j < 0 else j + len(end)
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append(re.sub(r"[^\n]", " ", text[i:j + 1]))
            i = j + 1
        elif c == "'":
            m = re.match(r"'(\\.|\\u\{[0-9a-fA-F]+\}|\\x[0-9a-fA-F]{2}|[^\\'])'", text[i:])
            if m:
                out.append(" " * len(m.group(0)))
                i += len(m.group(0))
            else:  # a lifetime
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def block_end(code, start):
    """Index of the brace closing the block that opens at or after start."""
    depth, i = 0, code.index("{", start)
    while i < len(code):
        if code[i] == "{":
            depth += 1
        elif code[i] == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    return len(code) - 1


def test_spans(code):
    """(start, end) of #[cfg(test)] items and #[test]-like functions."""
    spans = []
    for m in re.finditer(r"#\[(cfg\(test\)|test|pg_test|tokio::test[^\]]*)\]", code):
        nxt = code.find("{", m.end())
        semi = code.find(";", m.end())
        if nxt < 0 or (0 <= semi < nxt):
            continue
        spans.append((m.start(), block_end(code, m.end())))
    return spans


def functions(path):
    text = path.read_text()
    code = strip(text)
    skip = test_spans(code)
    for m in FN.finditer(code):
        brace = code.find("{", m.end())
        semi = code.find(";", m.end())
        if brace < 0 or (0 <= semi < brace):
            continue  # a declaration without a body (trait item, extern)
        # A `fn` inside a type (`impl Fn`, `fn(..)` pointer) has no name
        # followed by `(` or `<`; FN requires a name, so those are skipped.
        if any(a <= m.start() <= b for a, b in skip):
            continue
        end = block_end(code, brace)
        first = code.count("\n", 0, m.start()) + 1
        last = code.count("\n", 0, end) + 1
        yield m.group(1), first, last - first + 1


def main():
    limit = 80
    args = sys.argv[1:]
    if "--limit" in args:
        limit = int(args[args.index("--limit") + 1])
    report = "--report" in args
    long = []
    for path in sorted(ROOT.glob("crates/*/src/**/*.rs")):
        for name, line, length in functions(path):
            if length > limit:
                long.append((length, f"{path.relative_to(ROOT)}:{line}", name))
    for length, where, name in sorted(long, reverse=True):
        print(f"{length:5d}  {where}  {name}")
    if long and not report:
        print(f"{len(long)} function(s) over {limit} lines: split them into named steps",
              file=sys.stderr)
        sys.exit(1)
    if not long:
        print(f"no function in crates/*/src over {limit} lines (tests aside)")


if __name__ == "__main__":
    main()
