"""The window of believable label times (pure): a label made in year 1 or 9999 is a typo or a
broken clock, and would skew every "over time" chart and the latest-label-wins rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EARLIEST_LABEL_TIME = datetime(2000, 1, 1, tzinfo=UTC)
# Clocks of vendors' machines drift; a day ahead is tolerated, more is refused.
FUTURE_SLACK = timedelta(days=1)


def label_time_problem(value: datetime, *, now: datetime | None = None) -> str | None:
    """Why ``value`` (timezone-aware) is not a believable label time, or None when it is."""
    if value.tzinfo is None:
        return "has no time zone (add Z or +00:00)"
    latest = (now or datetime.now(UTC)) + FUTURE_SLACK
    if not EARLIEST_LABEL_TIME <= value <= latest:
        return (f"{value.isoformat()} is outside the accepted window "
                f"{EARLIEST_LABEL_TIME.date().isoformat()} … {latest.isoformat(timespec='seconds')}")
    return None
