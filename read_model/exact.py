"""Exact sums of metric values, so statistics do not depend on batch boundaries.

Floats added in another grouping round differently: a metric's mean was 0.61 live
and 0.6099999999999999 after a rebuild. So each value enters a sum as the decimal
of its shortest representation (``repr``: 0.1 is 0.1, and 0.1 + 0.2 + 0.7 is 1.0),
sums are kept exactly, and a mean is their exact quotient rounded once to a float.

A sum is stored as NUMERIC on PostgreSQL and as text on SQLite (whose NUMERIC is a
float). The sums the read side does in SQL go through ``exact_sum``,
``exact_plus`` and ``exact_negative``: plain SQL on PostgreSQL; on SQLite,
functions the read engine registers on each connection (``register_sqlite_functions``).
"""

from __future__ import annotations

import sqlite3
from decimal import Context, Decimal, DivisionByZero, Inexact, InvalidOperation, Overflow
from fractions import Fraction
from typing import Any, cast

from sqlalchemy import ColumnElement, Dialect, Text, TypeDecorator
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement
from sqlalchemy.types import TypeEngine

# A finite float's shortest repr has its digits between 10^308 and 10^-324: 633
# places, and 20 more carry the sum of 10^20 values. Inexact is trapped, so a sum
# that ever needed more would fail loudly rather than round.
DIGITS = 308 + 324 + 1 + 20
EXACT = Context(prec=DIGITS, traps=[InvalidOperation, DivisionByZero, Overflow, Inexact])
ZERO = Decimal(0)

Number = Decimal | float | int | str


def exact(value: float) -> Decimal:
    """A metric value as the decimal it is written as (not its binary expansion)."""
    return Decimal(repr(float(value)))


def decimal_of(value: Number) -> Decimal:
    """A stored sum (Decimal, or text on SQLite) or a value, as a Decimal."""
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        return exact(value)
    return Decimal(value)


def plus(a: Number, b: Number) -> Decimal:
    return EXACT.add(decimal_of(a), decimal_of(b))


def minus(a: Number, b: Number) -> Decimal:
    return EXACT.subtract(decimal_of(a), decimal_of(b))


def canonical_text(value: Number) -> str:
    """One text per number (no trailing zeros, no exponent, no negative zero), so
    equal sums are equal rows wherever they are compared as stored (``verify``)."""
    number = decimal_of(value)
    if not number:
        return "0"
    return format(EXACT.normalize(number), "f")


def mean(total: Number, count: int) -> float:
    """The exact mean, rounded once."""
    return float(Fraction(decimal_of(total)) / count)


class ExactDecimal(TypeDecorator[Decimal]):
    """A ``Decimal`` both ways: NUMERIC on PostgreSQL, canonical text elsewhere."""

    impl = Text
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        if dialect.name == "postgresql":
            return dialect.type_descriptor(postgresql.NUMERIC())
        return dialect.type_descriptor(Text())

    def process_bind_param(self, value: Number | None, dialect: Dialect) -> Any:
        if value is None:
            return None
        if dialect.name == "postgresql":
            return decimal_of(value)
        return canonical_text(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> Decimal | None:
        return None if value is None else decimal_of(value)


# -- SQL that adds sums ---------------------------------------------------------------


class exact_sum(FunctionElement[Decimal]):  # (named as in SQL)
    """``sum()`` of exact sums."""

    type = ExactDecimal()
    inherit_cache = True
    name = "exact_sum"


class exact_plus(FunctionElement[Decimal]):
    """``a + b`` of two exact sums."""

    type = ExactDecimal()
    inherit_cache = True
    name = "exact_plus"


class exact_negative(FunctionElement[Decimal]):
    """``-a`` of an exact sum."""

    type = ExactDecimal()
    inherit_cache = True
    name = "exact_negative"


def _arguments(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> list[str]:
    clauses: list[ColumnElement[Any]] = list(element.clauses)
    return [compiler.process(clause, **kw) for clause in clauses]


@compiles(exact_sum, "sqlite")
@compiles(exact_plus, "sqlite")
@compiles(exact_negative, "sqlite")
def _registered(element: FunctionElement[Any], compiler: SQLCompiler, **kw: Any) -> str:
    return f"{element.name}({', '.join(_arguments(element, compiler, **kw))})"


@compiles(exact_sum)
def _sum(element: exact_sum, compiler: SQLCompiler, **kw: Any) -> str:
    return f"sum({_arguments(element, compiler, **kw)[0]})"


@compiles(exact_plus)
def _plus(element: exact_plus, compiler: SQLCompiler, **kw: Any) -> str:
    a, b = _arguments(element, compiler, **kw)
    return f"({a} + {b})"


@compiles(exact_negative)
def _negative(element: exact_negative, compiler: SQLCompiler, **kw: Any) -> str:
    return f"(-{_arguments(element, compiler, **kw)[0]})"


# -- the same on SQLite, in Python ------------------------------------------------------


class _Sum:
    """SQLite's ``exact_sum`` aggregate: NULL over no rows, as ``sum()``."""

    def __init__(self) -> None:
        self.total: Decimal | None = None

    def step(self, value: Number | None) -> None:
        if value is not None:
            self.total = plus(ZERO if self.total is None else self.total, value)

    def finalize(self) -> str | None:
        return None if self.total is None else canonical_text(self.total)


def _sqlite_plus(a: Number | None, b: Number | None) -> str | None:
    return None if a is None or b is None else canonical_text(plus(a, b))


def _sqlite_negative(a: Number | None) -> str | None:
    return None if a is None else canonical_text(minus(ZERO, a))


def register_sqlite_functions(connection: sqlite3.Connection) -> None:
    """On every connection of an engine that reads or writes the read tables."""
    # (typeshed has an aggregate's finalize return an int; SQLite takes text as well)
    connection.create_aggregate("exact_sum", 1, cast(Any, _Sum))
    connection.create_function("exact_plus", 2, _sqlite_plus, deterministic=True)
    connection.create_function("exact_negative", 1, _sqlite_negative, deterministic=True)
