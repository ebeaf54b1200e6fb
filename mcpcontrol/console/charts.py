"""Server-rendered SVG charts of check history: no JavaScript, no external assets.

Each chart is a list of hourly buckets (oldest first) drawn into a fixed viewBox; the
template embeds the markup as is, so values are numbers and labels are escaped here.
"""

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

# Outcome colours, in stacking order (bottom first).
OUTCOME_COLOURS = {
    "healthy": "#2e7d32",
    "auth_required": "#f9a825",
    "timeout": "#ef6c00",
    "unreachable": "#c62828",
    "protocol_error": "#6a1b9a",
}
WIDTH, HEIGHT, PAD = 480, 120, 24


@dataclass
class Bucket:
    """One hour of checks: counts per outcome and the response times of the passing ones."""

    start: datetime
    outcomes: dict[str, int] = field(default_factory=dict)
    durations: list[int] = field(default_factory=list)

    def percentile(self, share: float) -> float | None:
        """Nearest-rank percentile of the durations (None without any)."""
        if not self.durations:
            return None
        ordered = sorted(self.durations)
        return float(ordered[max(0, math.ceil(share * len(ordered)) - 1)])


def hourly(rows: Iterable[tuple[datetime, str, int | None]], *, now: datetime) -> list[Bucket]:
    """24 hourly buckets ending now from (checked_at, outcome, duration_ms) rows."""
    first = now.replace(minute=0, second=0, microsecond=0) - timedelta(hours=23)
    buckets = [Bucket(start=first + timedelta(hours=h)) for h in range(24)]
    for checked_at, outcome, duration in rows:
        index = int((checked_at - first).total_seconds() // 3600)
        if 0 <= index < 24:
            bucket = buckets[index]
            bucket.outcomes[outcome] = bucket.outcomes.get(outcome, 0) + 1
            if outcome == "healthy" and duration is not None:
                bucket.durations.append(duration)
    return buckets


def _frame(title: str, body: str, legend: str) -> SafeString:
    return mark_safe(  # noqa: S308 - every interpolated text is escaped or a number
        f'<svg class="mc-chart" viewBox="0 0 {WIDTH} {HEIGHT + 20}" width="{WIDTH}" '
        f'height="{HEIGHT + 20}" role="img" aria-label="{escape(title)}">'
        f"<title>{escape(title)}</title>"
        f'<line x1="{PAD}" y1="{HEIGHT}" x2="{WIDTH}" y2="{HEIGHT}" stroke="#999"/>'
        f"{body}{legend}</svg>"
    )


def _legend(items: Sequence[tuple[str, str]]) -> str:
    parts, x = [], PAD
    for label, colour in items:
        parts.append(
            f'<rect x="{x}" y="{HEIGHT + 8}" width="8" height="8" fill="{colour}"/>'
            f'<text x="{x + 11}" y="{HEIGHT + 16}" font-size="9">{escape(label)}</text>'
        )
        x += 14 + 6 * len(label)
    return "".join(parts)


def outcomes_chart(buckets: list[Bucket], *, title: str) -> SafeString:
    """Stacked bars: checks per hour by outcome."""
    top = max((sum(b.outcomes.values()) for b in buckets), default=0) or 1
    step = (WIDTH - PAD) / len(buckets)
    bars = []
    for i, bucket in enumerate(buckets):
        y = float(HEIGHT)
        for outcome, colour in OUTCOME_COLOURS.items():
            count = bucket.outcomes.get(outcome, 0)
            if count:
                height = (HEIGHT - 4) * count / top
                y -= height
                bars.append(
                    f'<rect x="{PAD + i * step + 1:.1f}" y="{y:.1f}" width="{step - 2:.1f}" '
                    f'height="{height:.1f}" fill="{colour}"><title>{bucket.start:%H}:00 '
                    f"{escape(outcome)}: {count}</title></rect>"
                )
    axis = f'<text x="2" y="10" font-size="9">{top}</text>'
    legend = _legend([(o.replace("_", " "), c) for o, c in OUTCOME_COLOURS.items()])
    return _frame(title, axis + "".join(bars), legend)


def latency_chart(buckets: list[Bucket], *, title: str) -> SafeString:
    """Two lines: p50 and p95 response time per hour (passing checks only)."""
    series = {"p50": [b.percentile(0.5) for b in buckets],
              "p95": [b.percentile(0.95) for b in buckets]}  # fmt: skip
    top = max((v for values in series.values() for v in values if v is not None), default=0)
    top = top or 1
    step = (WIDTH - PAD) / len(buckets)
    lines = []
    for (name, values), colour in zip(series.items(), ("#1565c0", "#ad1457"), strict=True):
        points = " ".join(
            f"{PAD + (i + 0.5) * step:.1f},{HEIGHT - (HEIGHT - 4) * v / top:.1f}"
            for i, v in enumerate(values)
            if v is not None
        )
        if points:
            lines.append(
                f'<polyline points="{points}" fill="none" stroke="{colour}" stroke-width="2">'
                f"<title>{name}</title></polyline>"
            )
    axis = f'<text x="2" y="10" font-size="9">{top:.0f} ms</text>'
    return _frame(title, axis + "".join(lines), _legend([("p50", "#1565c0"), ("p95", "#ad1457")]))


def chart_pair(buckets: list[Bucket], *, name: str) -> SafeString:
    return format_html(
        "{}{}",
        outcomes_chart(buckets, title=f"{name}: checks per hour by outcome, last 24 h"),
        latency_chart(buckets, title=f"{name}: response time p50/p95 per hour, last 24 h"),
    )
