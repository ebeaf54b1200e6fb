"""Query expressions shared by apps that build one-query version checks."""

from typing import Any

from django.core.exceptions import EmptyResultSet
from django.db import connections
from django.db.models import Count, F, Func, IntegerField, Max, Min, QuerySet, Subquery, Value

SQL_VENDORS = frozenset({"sqlite", "postgresql", "mysql", "oracle"})
AGGREGATES = {"COUNT": Count, "MAX": Max, "MIN": Min}


def scalar_aggregate(qs: "QuerySet[Any]", function: str, column: str, output: Any) -> Subquery:
    """SELECT <function>(<column>) FROM qs, as a scalar subquery (no GROUP BY).

    On MongoDB (no SQL function to name) the same value comes from Django's aggregate over
    one constant group, which the backend turns into a $group stage."""
    if connections[qs.db].vendor in SQL_VENDORS:
        raw = Func(F(column), function=function, output_field=output)
        return Subquery(qs.order_by().values(v=raw))
    one = qs.order_by().annotate(_one=Value(1, output_field=IntegerField())).values("_one")
    aggregate = AGGREGATES[function](column, output_field=output)
    return Subquery(one.annotate(v=aggregate).values("v"))


class CompiledQuery:
    """A values_list QuerySet run again and again with its SQL compiled once.

    Compiling (Django's SQLCompiler.as_sql: resolving the filters, subqueries and joins)
    costs many times more than running a small query, so a hot path that re-runs the same
    query (the gateway's fingerprint) keeps the compiler and its SQL and only executes it;
    the rows still go through the compiler's converters (dates, decimals), as the QuerySet's
    would. Valid only for a query whose SQL holds no value that changes between runs (no
    clock, no per-call argument). A compiler belongs to one database connection (one
    thread): it is rebuilt when another one runs it. Non-SQL backends (MongoDB) run the
    QuerySet as it is.
    """

    def __init__(self, qs: "QuerySet[Any]") -> None:
        self.qs = qs
        self.compiler: Any = None

    def rows(self) -> list[tuple[Any, ...]]:
        connection = connections[self.qs.db]
        if connection.vendor not in SQL_VENDORS:
            return [tuple(row) for row in self.qs.all()]
        compiler = self.compiler
        if compiler is None or compiler.connection is not connection:
            compiler = self.qs.query.get_compiler(using=self.qs.db)
            try:
                compiled = compiler.as_sql()
            except EmptyResultSet:  # matches nothing: the QuerySet answers that itself
                return [tuple(row) for row in self.qs.all()]
            compiler.as_sql = lambda *args, **kwargs: compiled
            self.compiler = compiler
        return [tuple(row) for row in compiler.results_iter(tuple_expected=True)]
