"""Query expressions shared by apps that build one-query version checks."""

from typing import Any

from django.db.models import F, Func, QuerySet, Subquery


def scalar_aggregate(qs: "QuerySet[Any]", function: str, column: str, output: Any) -> Subquery:
    """SELECT <function>(<column>) FROM qs, as a scalar subquery (no GROUP BY)."""
    return Subquery(qs.order_by().values(v=Func(F(column), function=function, output_field=output)))
