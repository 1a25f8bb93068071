"""PostgreSQL query text, read the way PostgreSQL's own lexer reads it (pure, no I/O).

One pass finds what is code and what is quoted: standard strings `'…'` (`''` inside), escape
strings `E'…'` (backslash escapes too), dollar quotes `$$…$$` and `$tag$…$tag$`, quoted
identifiers `"…"`, line comments `--` and nested block comments `/* /* */ */`. Outside them:

- `;` separates statements;
- `:name` is a bind parameter (not `::cast`, not `a:b`); `\\:` is a literal colon, for the rare
  place outside quotes where `:word` must stay as written (an array slice `a[1\\:n]`);
- `$1` positional parameters are refused: binds are by name.

The validator uses this to describe a query; the sql source uses it to turn `:name` into the
server's `$n` placeholders. Neither relies on it for safety: the server accepts exactly one
statement in a read-only, time-bounded session whatever this module concludes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_IDENT_CHAR = re.compile(r"[\w$]")
_DOLLAR_TAG = re.compile(r"\$(?:[^\W\d]\w*)?\$")
_BIND = re.compile(r":([^\W\d]\w*)")
_POSITIONAL = re.compile(r"\$\d+")
_WORD = re.compile(r"[^\W\d]\w*")


class SqlTextError(ValueError):
    """The text cannot be read as PostgreSQL: an unterminated quote or comment, `$1`."""


@dataclass(frozen=True)
class Query:
    """A query as the server will get it."""

    text: str  # binds replaced by $1, $2, ... (one number per name), otherwise as written
    names: tuple[str, ...]  # the bind name for $1, $2, ...
    statements: int  # non-empty statements separated by `;`
    first_word: str  # the first statement's first keyword, lowercased ("" if none)


def parse(query: str) -> Query:
    """Read `query`; raises SqlTextError when it is not well-formed PostgreSQL text."""
    out: list[str] = []
    names: list[str] = []
    statements: list[list[str]] = [[]]  # the code (no quotes or comments) of each statement
    i, n = 0, len(query)
    while i < n:
        char = query[i]
        rest = query.startswith
        after_ident = i > 0 and bool(_IDENT_CHAR.match(query[i - 1]))
        if rest("--", i):
            end = query.find("\n", i)
            end = n if end < 0 else end
            out.append(query[i:end])
            i = end
        elif rest("/*", i):
            end = _block_comment_end(query, i)
            out.append(query[i:end])
            i = end
        elif char in "eE" and not after_ident and rest("'", i + 1):
            end = _quoted_end(query, i + 1, "'", backslash=True)
            out.append(query[i:end])
            statements[-1].append(" '' ")
            i = end
        elif char in "'\"":
            end = _quoted_end(query, i, char, backslash=False)
            out.append(query[i:end])
            statements[-1].append(" '' ")
            i = end
        elif char == "$" and not after_ident and (tag := _DOLLAR_TAG.match(query, i)):
            close = query.find(tag.group(), tag.end())
            if close < 0:
                raise SqlTextError(f"the dollar quote {tag.group()} opened at {i} is not closed")
            end = close + len(tag.group())
            out.append(query[i:end])
            statements[-1].append(" '' ")
            i = end
        elif char == "$" and not after_ident and (positional := _POSITIONAL.match(query, i)):
            raise SqlTextError(
                f"positional parameter {positional.group()} at {i}: "
                "use the named parameters (:window_start, ...)"
            )
        elif rest("\\:", i):
            out.append(":")
            statements[-1].append(":")
            i += 2
        elif rest("::", i):
            out.append("::")
            statements[-1].append("::")
            i += 2
        elif char == ":" and not after_ident and (bind := _BIND.match(query, i)):
            name = bind.group(1)
            if name not in names:
                names.append(name)
            out.append(f"${names.index(name) + 1}")
            statements[-1].append(" $ ")
            i = bind.end()
        elif char == ";":
            out.append(char)
            statements.append([])
            i += 1
        else:
            out.append(char)
            statements[-1].append(char)
            i += 1
    code = [text for text in map("".join, statements) if text.strip()]
    first = _WORD.search(code[0]) if code else None
    return Query("".join(out), tuple(names), len(code), first.group().lower() if first else "")


def _block_comment_end(query: str, start: int) -> int:
    depth, i = 0, start
    while i < len(query):
        if query.startswith("/*", i):
            depth += 1
            i += 2
        elif query.startswith("*/", i):
            depth -= 1
            i += 2
            if depth == 0:
                return i
        else:
            i += 1
    raise SqlTextError(f"the comment /* opened at {start} is not closed")


def _quoted_end(query: str, start: int, quote: str, *, backslash: bool) -> int:
    """The index after the closing quote of the literal opening at `start`."""
    i = start + 1
    while i < len(query):
        char = query[i]
        if backslash and char == "\\":
            i += 2
        elif char == quote:
            if query.startswith(quote, i + 1):  # a doubled quote stands for itself
                i += 2
            else:
                return i + 1
        else:
            i += 1
    kind = "quoted identifier" if quote == '"' else "string"
    raise SqlTextError(f"the {kind} opened at {start} is not closed")
