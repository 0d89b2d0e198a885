"""SQL for PostgreSQL from the SQLite SQL that is the source of truth.

Two translations, both mechanical and both strict:

- `placeholders(sql)`: the repositories' `?` placeholders become PostgreSQL's `$1`, `$2`, ...
  (outside string literals, quoted identifiers and comments).
- `migration_to_postgres(sql, source)`: a migration file of storage/migrations/ becomes
  PostgreSQL DDL. Only what is known to mean the same in both is rewritten (INTEGER → BIGINT,
  INTEGER PRIMARY KEY AUTOINCREMENT → an identity column, BLOB → BYTEA, REAL → DOUBLE
  PRECISION, INSERT OR IGNORE → INSERT ... ON CONFLICT DO NOTHING, an append-only trigger
  raising ABORT → a plpgsql trigger function); any other construct (a function not in
  `_SAME_FUNCTIONS`, another kind of trigger, PRAGMA, GLOB, ...) raises
  `UntranslatableSql`, naming the `NNNN_name.postgres.sql` override to write. That file holds
  only the statements refused, in PostgreSQL's words; it runs after the translated ones.
  tests/unit/storage/test_storage_dialects.py runs every migration through it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from dataclasses import dataclass

from storage.errors import StorageError


class UntranslatableSql(StorageError):
    """A SQLite construct with no mechanical PostgreSQL translation."""


@dataclass(frozen=True)
class _Token:
    kind: str  # "word", "string", "ident", "number", "space", "comment", "op"
    text: str

    @property
    def upper(self) -> str:
        return self.text.upper()


_TOKEN = re.compile(
    r"""
    (?P<comment>--[^\n]*|/\*.*?\*/)
  | (?P<string>'(?:[^']|'')*')
  | (?P<ident>"(?:[^"]|"")*")
  | (?P<space>\s+)
  | (?P<number>\d+(?:\.\d+)?)
  | (?P<word>[A-Za-z_][A-Za-z0-9_$]*)
  | (?P<op>\|\||<=|>=|<>|!=|==|::|\#>>|->>|->|\#>|[-+*/%<>=(),.;?$\[\]:@&|~^!\#{}])
    """,
    re.VERBOSE | re.DOTALL,
)


def _tokens(sql: str) -> list[_Token]:
    out: list[_Token] = []
    pos = 0
    while pos < len(sql):
        match = _TOKEN.match(sql, pos)
        if match is None:
            raise UntranslatableSql(f"cannot read SQL at {sql[pos : pos + 30]!r}")
        kind = match.lastgroup
        assert kind is not None
        out.append(_Token(kind, match.group()))
        pos = match.end()
    return out


@functools.lru_cache(maxsize=4096)
def placeholders(sql: str) -> str:
    """`sql` with each `?` placeholder replaced by `$1`, `$2`, ... in order (cached: the
    repositories' statements are a fixed set)."""
    if "?" not in sql:
        return sql
    parts: list[str] = []
    n = 0
    for token in _tokens(sql):
        if token.kind == "op" and token.text == "?":
            n += 1
            parts.append(f"${n}")
        else:
            parts.append(token.text)
    return "".join(parts)


# Functions that take the same arguments and give the same results in both dialects.
_SAME_FUNCTIONS = frozenset(
    {
        "count",
        "sum",
        "min",
        "max",
        "avg",
        "coalesce",
        "nullif",
        "lower",
        "upper",
        "length",
        "substr",
    }
)
# Words that may stand before "(" without being a function call.
_KEYWORDS_BEFORE_PAREN = frozenset(
    {
        "in", "check", "key", "unique", "values", "and", "or", "not", "exists", "as",
        "where", "select", "from", "default", "on", "then", "else", "when", "join", "by",
        "returning", "set", "into", "is", "references", "table", "index", "union", "all",
    }
)  # fmt: skip
# After these words, "name (" is a table (or index) and its column list.
_TABLE_BEFORE = frozenset({"references", "on", "into", "table", "exists"})
# Words that exist only in SQLite, or mean something else in PostgreSQL.
_REFUSED_WORDS = frozenset(
    {
        "pragma", "glob", "autoincrement", "rowid", "strict", "without", "replace",
        "current_timestamp", "current_date", "current_time", "vacuum", "attach", "reindex",
        "instead", "collate", "randomblob", "typeof", "ifnull", "iif", "printf",
    }
)  # fmt: skip
_TYPES = {"integer": "BIGINT", "blob": "BYTEA", "real": "DOUBLE PRECISION"}


def _significant(tokens: list[_Token]) -> list[_Token]:
    return [t for t in tokens if t.kind not in ("space", "comment")]


def _statements(tokens: list[_Token]) -> Iterator[list[_Token]]:
    """Split on ";" outside a trigger's BEGIN ... END."""
    current: list[_Token] = []
    in_trigger = False
    in_body = False
    for token in tokens:
        current.append(token)
        sig = _significant(current)
        if len(sig) == 2 and [t.upper for t in sig] == ["CREATE", "TRIGGER"]:
            in_trigger = True
        if in_trigger and token.kind == "word" and token.upper == "BEGIN":
            in_body = True
        if in_body and token.kind == "word" and token.upper == "END":
            in_body = False
        if token.kind == "op" and token.text == ";" and not in_body:
            yield current[:-1]
            current = []
            in_trigger = False
    if _significant(current):
        yield current


def _fail(source: str, what: str) -> UntranslatableSql:
    return UntranslatableSql(
        f"{source}: {what} has no mechanical PostgreSQL translation; write "
        f"{source.removesuffix('.sql')}.postgres.sql"
    )


def _check_words(tokens: list[_Token], source: str) -> None:
    sig = _significant(tokens)
    for i, token in enumerate(sig):
        if token.kind == "ident":
            raise _fail(source, f"the double-quoted name {token.text}")
        if token.kind == "op" and token.text in ("==", "?", "$", "[", "]", "@", ":", "#", "->"):
            raise _fail(source, f"the operator {token.text!r}")
        if token.kind != "word":
            continue
        word = token.text.lower()
        if word in _REFUSED_WORDS:
            raise _fail(source, token.upper)
        nxt = sig[i + 1] if i + 1 < len(sig) else None
        if nxt is None or nxt.text != "(":
            continue
        if word in _SAME_FUNCTIONS or word in _KEYWORDS_BEFORE_PAREN:
            continue
        prev = sig[i - 1].text.lower() if i else ""
        if prev in _TABLE_BEFORE:
            continue
        if prev in ("primary", "foreign") or word in _TYPES or word in ("text", "bigint"):
            continue
        raise _fail(source, f"the function {token.text}()")


def _replace_words(tokens: list[_Token], pattern: list[str], by: str) -> list[_Token]:
    """Replace each run of significant words equal to `pattern` (case-insensitive)."""
    out: list[_Token] = []
    i = 0
    while i < len(tokens):
        if tokens[i].kind != "word":
            out.append(tokens[i])
            i += 1
            continue
        j, k = i, 0
        while k < len(pattern) and j < len(tokens):
            t = tokens[j]
            if t.kind == "space":
                j += 1
                continue
            if t.kind != "word" or t.upper != pattern[k]:
                break
            j += 1
            k += 1
        if k == len(pattern):
            out.append(_Token("word", by))
            i = j
        else:
            out.append(tokens[i])
            i += 1
    return out


def _types(tokens: list[_Token]) -> list[_Token]:
    tokens = _replace_words(
        tokens,
        ["INTEGER", "PRIMARY", "KEY", "AUTOINCREMENT"],
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    )
    return [
        _Token("word", _TYPES[t.text.lower()])
        if t.kind == "word" and t.text.lower() in _TYPES
        else t
        for t in tokens
    ]


_APPEND_ONLY = re.compile(
    r"CREATE TRIGGER (\w+) BEFORE (INSERT|UPDATE|DELETE) ON (\w+) BEGIN SELECT RAISE \( ?ABORT , "
    r"('(?:[^']|'')*') \) ; END",
    re.IGNORECASE,
)


def _trigger(tokens: list[_Token], source: str) -> str:
    """The one trigger shape translated: BEFORE INSERT/UPDATE/DELETE raising ABORT (a write
    refused, such as an append-only table's UPDATE)."""
    flat = " ".join(t.text for t in _significant(tokens))
    flat = flat.replace("( ", "(").replace("(", "( ").replace("RAISE(", "RAISE (")
    match = _APPEND_ONLY.fullmatch(re.sub(r"\s+", " ", flat))
    if match is None:
        raise _fail(source, "this CREATE TRIGGER")
    name, event, table, message = match.groups()
    return (
        f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $fn$\n"
        f"BEGIN\n    RAISE EXCEPTION {message};\nEND\n$fn$;\n"
        f"CREATE TRIGGER {name} BEFORE {event.upper()} ON {table} "
        f"FOR EACH ROW EXECUTE FUNCTION {name}()"
    )


_STATEMENT_KINDS = (
    ("CREATE", "TABLE"),
    ("CREATE", "INDEX"),
    ("CREATE", "UNIQUE", "INDEX"),
    ("ALTER", "TABLE"),
    ("DROP", "INDEX"),
    ("DROP", "TABLE"),
    ("INSERT",),
    ("UPDATE",),
    ("DELETE",),
)


def _statement(tokens: list[_Token], source: str) -> str:
    sig = _significant(tokens)
    head = tuple(t.upper for t in sig[:3])
    if head[:2] == ("CREATE", "TRIGGER"):
        return _trigger(tokens, source)
    if not any(head[: len(kind)] == kind for kind in _STATEMENT_KINDS):
        raise _fail(source, "the statement " + " ".join(head))
    if head[:1] == ("INSERT",) and len(sig) > 2 and sig[1].upper == "OR":
        if sig[2].upper != "IGNORE":
            raise _fail(source, f"INSERT OR {sig[2].upper}")
        start = tokens.index(sig[1])
        end = tokens.index(sig[2]) + 2  # "OR IGNORE" and the space after it
        tokens = [*tokens[:start], *tokens[end:], _Token("word", "\n    ON CONFLICT DO NOTHING")]
    if head[:2] in (("CREATE", "TABLE"), ("ALTER", "TABLE")):
        tokens = _types(tokens)
    _check_words(tokens, source)
    return "".join(t.text for t in tokens).strip()


def _table_order(statements: list[list[_Token]]) -> list[list[_Token]]:
    """The CREATE TABLE statements first, each after the tables it references in the same
    file (SQLite lets a foreign key name a table created further down, PostgreSQL does not),
    then every other statement in its order."""
    tables: dict[str, list[_Token]] = {}
    rest = []
    for statement in statements:
        sig = _significant(statement)
        if [t.upper for t in sig[:2]] == ["CREATE", "TABLE"]:
            named = next(t for t in sig[2:] if t.upper not in ("IF", "NOT", "EXISTS"))
            tables[named.text.lower()] = statement
        else:
            rest.append(statement)
    ordered: list[list[_Token]] = []
    placed: set[str] = set()

    def place(name: str, seen: tuple[str, ...]) -> None:
        if name in placed or name in seen:
            return
        sig = _significant(tables[name])
        for i, token in enumerate(sig[:-1]):
            target = sig[i + 1].text.lower()
            if token.upper == "REFERENCES" and target in tables and target != name:
                place(target, (*seen, name))
        placed.add(name)
        ordered.append(tables[name])

    for table in tables:
        place(table, ())
    return ordered + rest


def migration_to_postgres(sql: str, source: str, override: str | None = None) -> str:
    """The PostgreSQL DDL of the SQLite migration `sql` (named `source` in errors); raises
    UntranslatableSql on anything it does not know to mean the same in both.

    With `override` (the text of the migration's NNNN_name.postgres.sql), the statements it
    refuses are left out and `override`, which holds them written for PostgreSQL, runs after
    the others; the statements it translates are not written twice."""
    statements = [s for s in _statements(_tokens(sql)) if _significant(s)]
    out = []
    for statement in _table_order(statements):
        try:
            out.append(_statement(statement, source) + ";")
        except UntranslatableSql:
            if override is None:
                raise
    if override is not None:
        out.append(override)
    return "\n".join(out) + "\n"


# --- fragments of repository SQL where the dialects differ ---------------------------------


def day_of(dialect: str, column: str) -> str:
    """The day ('YYYY-MM-DD', Asia/Ho_Chi_Minh) of a stored UTC time `column`."""
    if dialect == "postgresql":
        return f"lt_day({column})"  # migration 0034's PostgreSQL function
    return f"date({column}, '+7 hours')"


def json_field(
    dialect: str, column: str, path: str, *, integer: bool = False, checked: bool = False
) -> str:
    """The value at `path` (dotted keys: 'procedure.code') of the JSON text `column`: NULL when
    absent; an object or array as its JSON text, a string as itself; `integer` for a number
    read as an integer. Where `column` may not be JSON: `checked` gives NULL then (always so
    on PostgreSQL; on SQLite json_extract would raise)."""
    if dialect == "postgresql":
        keys = ",".join(path.split("."))
        value = f"(lt_jsonb({column}) #>> '{{{keys}}}')"  # migration 0042's PostgreSQL function
        return f"{value}::bigint" if integer else value
    extract = f"json_extract({column}, '$.{path}')"
    return f"CASE WHEN json_valid({column}) THEN {extract} END" if checked else extract


def in_json_array(dialect: str) -> str:
    """`IN` over the text values of one parameter holding a JSON array of strings."""
    if dialect == "postgresql":
        return "(SELECT jsonb_array_elements_text(CAST(? AS jsonb)))"
    return "(SELECT value FROM json_each(?))"


def skip_locked(dialect: str, alias: str) -> str:
    """The lock clause of a SELECT that leases rows of `alias`: on PostgreSQL the rows are
    locked to COMMIT and rows another transaction holds are skipped (several nodes lease at
    once, none waits for another's rows); nothing on SQLite, whose single writer runs one
    leasing transaction at a time."""
    return f" FOR UPDATE OF {alias} SKIP LOCKED" if dialect == "postgresql" else ""
