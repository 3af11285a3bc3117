"""Full-width punctuation in Chinese user texts.

Chinese sentences take full-width marks (，：；？！（）); the manual's texts were extracted with
ASCII ones, and code written after them copied that. This module finds and rewrites ASCII marks
in Chinese string literals of Python sources, templates and scripts, and the same msgids in the
translation catalogues:

    python -m devtools.punctuation          # list what would change, exit 1 if anything would
    python -m devtools.punctuation --fix    # rewrite in place

A literal is Chinese when it has at least as many CJK characters as Latin letters, so English
help texts that name a Chinese term (and docstrings) are left alone. Format fields such as
``%(name)s`` and ``{name}`` are never touched, nor a Python line marked ``# punctuation: data``.
"""

from __future__ import annotations

import argparse
import io
import re
import sys
import tokenize
from collections.abc import Iterator
from pathlib import Path

CJK = r"\u3400-\u9fff\uff08\uff09\u3001-\u301f\uff0c\uff1a\uff1b\uff01\uff1f"
SOURCE_DIRS = ("idp", "clients", "devtools", "tests")
SUFFIXES = (".py", ".html", ".js")
CATALOGUES = "idp/translations/*/LC_MESSAGES/messages.po"
# a line ending in this comment holds data, not text (e.g. "name,phone" records)
KEEP = "# punctuation: data"
# the test of this module quotes half-width texts on purpose
EXEMPT = frozenset({"tests/unit/test_punctuation.py"})
MARKS = {",": "，", ":": "：", ";": "；", "?": "？", "!": "！"}

_MARK_NEAR_CJK = re.compile(rf"(?<=[{CJK}])[ ]*([,:;?!])[ ]*|[ ]*([,:;?!])[ ]*(?=[{CJK}])")
# "(...)" not preceded by "%" (a %(name)s format field) and holding no nested brackets
_PARENS = re.compile(r"[ ]*(?<![%A-Za-z0-9_])\(((?:[^()%]|%\(\w+\)[sd])*)\)[ ]*")
_TEXT_NODE = re.compile(r"(?<=>)[^<>]+(?=<)")
_QUOTED = re.compile(r'"((?:[^"\\\n]|\\.)*)"|\'((?:[^\'\\\n]|\\.)*)\'')


_NOT_WORDS = re.compile(r"<[^>]*>|%\(\w+\)[sd]|\{\{.*?\}\}|\{\w*\}")


def is_chinese(text: str) -> bool:
    text = _NOT_WORDS.sub("", text)  # markup and format fields are not words
    cjk = len(re.findall(r"[\u3400-\u9fff]", text))
    return cjk > len(re.findall(r"[A-Za-z]", text))


def full_width(text: str) -> str:
    """The text with ASCII marks next to Chinese characters made full-width (Chinese texts only)."""
    if not is_chinese(text):
        return text
    text = _PARENS.sub(_paren, text)
    return _MARK_NEAR_CJK.sub(lambda m: MARKS[m.group(1) or m.group(2)], text)


def _paren(match: re.Match[str]) -> str:
    inner = match.group(1)
    # a URL or a code fragment keeps its brackets: "(e.g. https://...)" never occurs in Chinese
    # texts, but "f(x)" would
    if not inner.strip() or "://" in inner:
        return match.group(0)
    return f"（{inner.strip()}）"


def fix_python(source: str) -> str:
    tokens = list(tokenize.generate_tokens(io.StringIO(source).readline))
    lines = source.splitlines(keepends=True)
    # replace from the end so earlier positions stay valid
    for token in reversed(tokens):
        # raw literals are patterns (a regex's "(?<=...)" is no bracket)
        raw = token.string[:2].lower().lstrip("fb").startswith("r")
        if token.type != tokenize.STRING or token.start[0] != token.end[0] or raw:
            continue
        row, start = token.start
        end = token.end[1]
        line = lines[row - 1]
        if KEEP in line:
            continue
        literal = line[start:end]
        fixed = full_width(literal)
        if fixed != literal:
            lines[row - 1] = line[:start] + fixed + line[end:]
    return "".join(lines)


def fix_markup(source: str) -> str:
    def quoted(match: re.Match[str]) -> str:
        return full_width(match.group(0))

    source = _QUOTED.sub(quoted, source)
    return _TEXT_NODE.sub(lambda m: full_width(m.group(0)), source)


def fix_catalogue(source: str) -> str:
    """Msgids follow the sources; translations (msgstr) are left as they are."""
    from babel.messages.pofile import read_po, write_po

    catalogue = read_po(io.StringIO(source))
    for message in list(catalogue):
        if isinstance(message.id, str) and full_width(message.id) != message.id:
            catalogue.delete(message.id, message.context)
            message.id = full_width(message.id)
            catalogue[message.id] = message
    out = io.BytesIO()
    write_po(out, catalogue, width=100, sort_output=False)
    return out.getvalue().decode("utf-8")


def fixed(path: Path) -> str:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".py":
        return fix_python(text)
    if path.suffix == ".po":
        return fix_catalogue(text)
    return fix_markup(text)


def files(root: Path) -> Iterator[Path]:
    for directory in SOURCE_DIRS:
        for path in sorted((root / directory).rglob("*")):
            exempt = path.relative_to(root).as_posix() in EXEMPT
            if path.suffix in SUFFIXES and "vendor" not in path.parts and not exempt:
                yield path
    yield from sorted(root.glob(CATALOGUES))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--fix", action="store_true", help="rewrite the files in place")
    parser.add_argument("--root", type=Path, default=Path.cwd())
    args = parser.parse_args(argv)
    changed = []
    for path in files(args.root):
        before = path.read_text(encoding="utf-8")
        after = fixed(path)
        if after != before:
            changed.append(path)
            if args.fix:
                path.write_text(after, encoding="utf-8")
    for path in changed:
        print(path.relative_to(args.root))
    return 1 if changed and not args.fix else 0


if __name__ == "__main__":
    sys.exit(main())
