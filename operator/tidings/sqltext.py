"""PostgreSQL query text, read by PostgreSQL's own scanner and parser (pglast: libpg_query),
never by a lexer of ours that would have to agree with the server's (pure, no I/O).

The scanner decides what is code and what is quoted or commented, exactly as the server will.
Outside strings, quoted identifiers and comments:

- `:name` (a `:` token and, with nothing between, an identifier or keyword token) is a bind
  parameter, unless the `:` directly follows a name or a number (the slice `a[lo:hi]`);
  `\\:` is a literal colon, for the rare `:word` that must stay as written (the slice `a[\\:n]`);
- `$1` positional parameters are refused: binds are by name.

The parser then decides what the statement is: exactly one SelectStmt (SELECT, WITH ... SELECT,
VALUES, TABLE) with no SELECT INTO, no FOR UPDATE/SHARE row locks and no INSERT, UPDATE,
DELETE or MERGE anywhere in it (a data-modifying WITH). The server gets the statement as a
subquery (`Query.executed`), which PostgreSQL's grammar admits only for SELECT-shaped text, so
a text this module misjudged still cannot run another kind of statement.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pglast import ast, parse_sql
from pglast.parser import ParseError, scan

_WORD = re.compile(r"[^\W\d]\w*")
_NUMBERS = ("ICONST", "FCONST")
_COMMENTS = ("SQL_COMMENT", "C_COMMENT")
_COLON, _SEMICOLON, _BACKSLASH = "ASCII_58", "ASCII_59", "ASCII_92"
_WRITES = (ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt, ast.MergeStmt)
_KINDS = {  # what a refused statement is called in the message
    "InsertStmt": "INSERT",
    "UpdateStmt": "UPDATE",
    "DeleteStmt": "DELETE",
    "MergeStmt": "MERGE",
    "CopyStmt": "COPY",
    "DoStmt": "DO",
    "VariableSetStmt": "SET",
    "TransactionStmt": "a transaction command",
    "ExplainStmt": "EXPLAIN",
    "CallStmt": "CALL",
}


class SqlTextError(ValueError):
    """Not one row-returning SELECT as PostgreSQL reads it, or unreadable, or `$1`."""


@dataclass(frozen=True)
class Query:
    """A query as the server will get it."""

    text: str  # binds as $1, $2, ... (one number per name), no trailing `;`, otherwise as written
    names: tuple[str, ...]  # the bind name for $1, $2, ...

    @property
    def executed(self) -> str:
        """The text the server runs: a subquery, so only a SELECT parses (the newline ends a
        trailing `--` comment before the closing parenthesis)."""
        return f"SELECT * FROM (\n{self.text}\n) AS tidings_query"


def parse(query: str) -> Query:
    """Read `query` as PostgreSQL does; raises SqlTextError unless it is one row-returning
    SELECT. The caller checks the bind names against the ones it can bind."""
    try:
        tokens = list(scan(query))
    except ParseError as error:
        raise SqlTextError(f"cannot be read as PostgreSQL: {_scan_message(error)}") from None
    text, names = _bind(query, tokens)
    try:
        statements = parse_sql(text)
    except ParseError as error:
        where = re.sub(r", at index \d+$", "", str(error))
        raise SqlTextError(f"cannot be read as PostgreSQL: {where}") from None
    if not statements:
        raise SqlTextError("must be a SELECT statement")
    if len(statements) > 1:
        raise SqlTextError("must be a single statement (a semicolon may only end the query)")
    statement = statements[0].stmt
    if not isinstance(statement, ast.SelectStmt):
        kind = type(statement).__name__
        raise SqlTextError(
            f"must be a SELECT statement (or WITH ... SELECT), not {_KINDS.get(kind, kind)}"
        )
    for node in _nodes(statement):
        if isinstance(node, _WRITES):
            raise SqlTextError(
                "must only read: INSERT, UPDATE, DELETE and MERGE are refused, also inside WITH"
            )
        if isinstance(node, ast.SelectStmt) and node.intoClause is not None:
            raise SqlTextError("must not use SELECT ... INTO, which creates a table")
        if isinstance(node, ast.SelectStmt) and node.lockingClause:
            raise SqlTextError("must not use FOR UPDATE or FOR SHARE: row locks are writes")
    return Query(text, names)


def _bind(query: str, tokens: list[Any]) -> tuple[str, tuple[str, ...]]:
    """The text with each bind as $n, cut after its last token that is neither a comment nor a
    `;`; and the names, in order of first use."""
    significant = [t for t in tokens if t.name not in (*_COMMENTS, _SEMICOLON)]
    stop = significant[-1].end + 1 if significant else 0
    out: list[str] = []
    names: list[str] = []
    position = 0
    for index, token in enumerate(tokens):
        if token.start >= stop:
            break
        if token.name == "PARAM":
            raise SqlTextError(
                f"positional parameter {query[token.start : token.end + 1]} at {token.start}: "
                "use the named parameters (:window_start, ...)"
            )
        before = tokens[index - 1] if index else None
        after = tokens[index + 1] if index + 1 < len(tokens) else None
        if token.name != _COLON or after is None or after.start != token.end + 1:
            continue
        name = query[after.start : after.end + 1]
        # The token right before the colon, touching it (None when there is a gap or none).
        adjacent = before if before is not None and before.end + 1 == token.start else None
        if adjacent is not None and adjacent.name == _BACKSLASH:  # \: is a colon as written
            out.append(query[position : adjacent.start])
            position = token.start
        elif _WORD.fullmatch(name) and not (
            adjacent is not None and _is_name_or_number(query, adjacent)
        ):
            if name not in names:
                names.append(name)
            out.append(query[position : token.start] + f"${names.index(name) + 1}")
            position = after.end + 1
    out.append(query[position:stop])
    return "".join(out), tuple(names)


def _is_name_or_number(query: str, token: Any) -> bool:
    return token.name in _NUMBERS or bool(_WORD.fullmatch(query[token.start : token.end + 1]))


def _scan_message(error: ParseError) -> str:
    """ "unterminated quoted string at or near "'abc", at index 7" -> where it opened."""
    text = str(error)
    found = re.match(r"unterminated (.+?) at or near .*, at index (\d+)$", text, re.DOTALL)
    if found:
        return f"the {found.group(1)} opened at {found.group(2)} is not closed"
    return re.sub(r", at index (\d+)$", r" (at \1)", text)


def _nodes(node: Any) -> Iterator[Any]:
    """Every node of the tree under `node`, itself included."""
    if isinstance(node, ast.Node):
        yield node
        for attribute in node:
            yield from _nodes(getattr(node, attribute))
    elif isinstance(node, tuple | list):
        for item in node:
            yield from _nodes(item)
