"""Dates, times and intervals for `rdsgate connect`: the API's ISO 8601 text to PostgreSQL's numbers and back.

PostgreSQL's binary formats count from 2000-01-01: days (int32) for ``date``,
microseconds (int64) for ``timestamp`` and ``timestamptz`` (UTC), microseconds for
``time``, and ``(microseconds, days, months)`` for ``interval``. Python's ``datetime``
stops at year 9999 and knows no BC, PostgreSQL goes to year 294276 and 4713 BC, so
the calendar arithmetic here is done on integers (proleptic Gregorian, astronomical
years: 1 BC is year 0). Text is written as PostgreSQL writes it in ISO DateStyle,
which is also what it reads back.
"""

from __future__ import annotations

import re
from decimal import Decimal

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
DAY_US = 86_400_000_000
_UNIX_TO_2000 = 10957  # days from 1970-01-01 to 2000-01-01

_DATE = re.compile(r"\s*(\d{4,})-(\d\d)-(\d\d)")
_CLOCK = re.compile(r"[T ]?(\d\d):(\d\d)(?::(\d\d)(?:\.(\d+))?)?")
_OFFSET = re.compile(r"\s*([+-])(\d\d)(?::?(\d\d))?(?::?(\d\d))?")
_ISO_DURATION = re.compile(r"(-)?P(?:(-?\d+)Y)?(?:(-?\d+)M)?(?:(-?\d+)W)?(?:(-?\d+)D)?"
                           r"(?:T(?:(-?\d+)H)?(?:(-?\d+)M)?(?:(-?\d+(?:\.\d+)?)S)?)?")


class BadValue(ValueError):
    """A value that is not in the form the API (or a client's binary parameter) should carry."""


# -- the calendar ---------------------------------------------------------------------------------


def days_from_civil(year: int, month: int, day: int) -> int:
    """Days from 2000-01-01 to the given date (astronomical year), after Howard Hinnant's algorithm."""
    year -= month <= 2
    era = year // 400
    yoe = year - era * 400
    doy = (153 * (month + (-3 if month > 2 else 9)) + 2) // 5 + day - 1
    return era * 146097 + yoe * 365 + yoe // 4 - yoe // 100 + doy - 719468 - _UNIX_TO_2000


def civil_from_days(days: int) -> tuple[int, int, int]:
    """The date ``days`` after 2000-01-01: (astronomical year, month, day)."""
    days += 719468 + _UNIX_TO_2000
    era = days // 146097
    doe = days - era * 146097
    yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = mp + 3 if mp < 10 else mp - 9
    return yoe + era * 400 + (month <= 2), month, day


# -- text to numbers ------------------------------------------------------------------------------


def _fraction_us(digits: str | None) -> int:
    return int((digits or "0")[:6].ljust(6, "0"))


def date_days(text: str) -> int:
    """``2026-01-08``, ``20000-01-01``, ``0044-03-15 BC``, ``infinity`` → days from 2000-01-01."""
    special = _special(text, INT32_MAX, INT32_MIN)
    if special is not None:
        return special
    match = _DATE.match(text)
    if match is None:
        raise BadValue(f"not a date: {text!r}")
    year = int(match.group(1))
    if text.rstrip().endswith("BC"):
        year = 1 - year
    return days_from_civil(year, int(match.group(2)), int(match.group(3)))


def clock_us(text: str, at: int = 0) -> tuple[int, int]:
    """``HH:MM[:SS[.ffffff]]`` at ``at`` → (microseconds, where it ended)."""
    match = _CLOCK.match(text, at)
    if match is None:
        raise BadValue(f"not a time of day: {text!r}")
    hours, minutes, seconds = int(match.group(1)), int(match.group(2)), int(match.group(3) or 0)
    return ((hours * 60 + minutes) * 60 + seconds) * 1_000_000 + _fraction_us(match.group(4)), match.end()


def offset_seconds(text: str, at: int) -> tuple[int, int]:
    """A UTC offset such as ``+05:30`` or ``-08`` at ``at`` → (seconds east of UTC, where it ended); none is 0."""
    match = _OFFSET.match(text, at)
    if match is None:
        return 0, at
    seconds = int(match.group(2)) * 3600 + int(match.group(3) or 0) * 60 + int(match.group(4) or 0)
    return (-seconds if match.group(1) == "-" else seconds), match.end()


def timestamp_us(text: str) -> int:
    """``2026-01-05T10:00:00.5+01:00`` (or with a space, or `` BC``) → microseconds from 2000-01-01 UTC."""
    special = _special(text, INT64_MAX, INT64_MIN)
    if special is not None:
        return special
    match = _DATE.match(text)
    if match is None:
        raise BadValue(f"not a timestamp: {text!r}")
    days = date_days(text[:match.end()] + (" BC" if text.rstrip().endswith("BC") else ""))
    clock, at = clock_us(text, match.end()) if match.end() < len(text) and text[match.end()] in "T " \
        and text[match.end() + 1:match.end() + 2].isdigit() else (0, match.end())
    offset, _ = offset_seconds(text, at)
    return days * DAY_US + clock - offset * 1_000_000


def time_us(text: str) -> tuple[int, int]:
    """``10:00:00.5`` or ``10:00:00.5+05:30`` → (microseconds, offset in seconds east of UTC)."""
    clock, at = clock_us(text.strip())
    return clock, offset_seconds(text.strip(), at)[0]


def interval_parts(text: str) -> tuple[int, int, int]:
    """An ISO 8601 duration (how the API carries intervals) → (months, days, microseconds)."""
    match = _ISO_DURATION.fullmatch(text.strip())
    if match is None or text.strip() in ("P", "-P"):
        raise BadValue(f"not an interval: {text!r}")
    negate = -1 if match.group(1) else 1
    years, months, weeks, days, hours, minutes = (negate * int(match.group(i) or 0) for i in range(2, 8))
    seconds = negate * Decimal(match.group(8) or 0)
    micros = (hours * 3600 + minutes * 60) * 1_000_000 + int(seconds * 1_000_000)
    return years * 12 + months, days + 7 * weeks, micros


def _special(text: str, plus: int, minus: int) -> int | None:
    word = text.strip().lower()
    return plus if word == "infinity" else minus if word == "-infinity" else None


# -- numbers to text ------------------------------------------------------------------------------


def _date_text(days: int) -> tuple[str, bool]:
    year, month, day = civil_from_days(days)
    bc = year <= 0
    return f"{(1 - year if bc else year):04d}-{month:02d}-{day:02d}", bc


def clock_text(micros: int) -> str:
    """Microseconds → ``HH:MM:SS[.ffffff]`` (hours may pass 24, as in ``24:00:00``)."""
    seconds, fraction = divmod(micros, 1_000_000)
    text = f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"
    return text + f".{fraction:06d}".rstrip("0") if fraction else text


def offset_text(seconds_east: int) -> str:
    sign = "-" if seconds_east < 0 else "+"
    hours, rest = divmod(abs(seconds_east), 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{sign}{hours:02d}" + (f":{minutes:02d}" if minutes or seconds else "") + (f":{seconds:02d}" if seconds else "")


def date_text(days: int) -> str:
    if days in (INT32_MAX, INT32_MIN):
        return "infinity" if days > 0 else "-infinity"
    text, bc = _date_text(days)
    return text + (" BC" if bc else "")


def timestamp_text(micros: int, *, utc: bool) -> str:
    """Microseconds from 2000-01-01 → ``2026-01-05 10:00:00[+00][ BC]``, as PostgreSQL writes it in ISO style."""
    if micros in (INT64_MAX, INT64_MIN):
        return "infinity" if micros > 0 else "-infinity"
    days, clock = divmod(micros, DAY_US)
    text, bc = _date_text(days)
    return f"{text} {clock_text(clock)}" + ("+00" if utc else "") + (" BC" if bc else "")


def interval_text(months: int, days: int, micros: int) -> str:
    """(months, days, microseconds) → text PostgreSQL reads back exactly: ``14 mons -3 days +04:05:06.5``."""
    sign = "-" if micros < 0 else "+"
    return f"{months} mons {days} days {sign}{clock_text(abs(micros))}"


def _truncated(value: int, unit: int) -> tuple[int, int]:
    """divmod rounding toward zero, as C does: both parts carry the sign of ``value``."""
    quotient = abs(value) // unit
    return (-quotient, -(abs(value) - quotient * unit)) if value < 0 else (quotient, value - quotient * unit)


def _seconds(seconds: int, micros: int, pad: bool) -> str:
    text = f"{abs(seconds):02d}" if pad else str(abs(seconds))
    return text + f".{abs(micros):06d}".rstrip("0") if micros else text


def styled_interval(months: int, days: int, micros: int, style: str) -> str:
    """An interval in one of PostgreSQL's IntervalStyles, as its EncodeInterval writes it."""
    year, mon = _truncated(months, 12)
    hour, rest = _truncated(micros, 3_600_000_000)
    minute, rest = _truncated(rest, 60_000_000)
    sec, fsec = _truncated(rest, 1_000_000)
    parts = (year, mon, days, hour, minute, sec, fsec)
    if style == "sql_standard":
        negative, positive = any(p < 0 for p in parts), any(p > 0 for p in parts)
        year_month, day_time = bool(year or mon), bool(days or hour or minute or sec or fsec)
        standard = not (negative and positive) and not (year_month and day_time)
        if not negative and not positive:
            return "0"
        if not standard:
            signs = ("-" if year < 0 or mon < 0 else "+", "-" if days < 0 else "+",
                     "-" if hour < 0 or minute < 0 or sec < 0 or fsec < 0 else "+")
            return (f"{signs[0]}{abs(year)}-{abs(mon)} {signs[1]}{abs(days)} {signs[2]}{abs(hour)}:{abs(minute):02d}:"
                    + _seconds(sec, fsec, True))
        sign = "-" if negative else ""
        if year_month:
            return f"{sign}{abs(year)}-{abs(mon)}"
        clock = f"{abs(hour)}:{abs(minute):02d}:" + _seconds(sec, fsec, True)
        return f"{sign}{abs(days)} {clock}" if days else sign + clock
    if style == "postgres_verbose":
        out, zero, before = "@", True, False
        for value, unit in ((year, "year"), (mon, "mon"), (days, "day"), (hour, "hour"), (minute, "min")):
            if value:
                if zero:
                    before, value = value < 0, abs(value)
                elif before:
                    value = -value
                out += f" {value} {unit}{'' if value == 1 else 's'}"
                zero = False
        if sec or fsec:
            out += " "
            if sec < 0 or (sec == 0 and fsec < 0):
                if zero:
                    before = True
                elif not before:
                    out += "-"
            elif before:
                out += "-"
            out += _seconds(sec, fsec, False) + (" secs" if abs(sec) != 1 or fsec else " sec")
            zero = False
        return out + (" 0" if zero else "") + (" ago" if before else "")
    out, zero, before = "", True, False  # postgres
    for value, unit in ((year, "year"), (mon, "mon"), (days, "day")):
        if value:
            out += f"{'' if zero else ' '}{'+' if before and value > 0 else ''}{value} {unit}{'' if value == 1 else 's'}"
            before, zero = value < 0, False
    if zero or hour or minute or sec or fsec:
        minus = hour < 0 or minute < 0 or sec < 0 or fsec < 0
        out += (f"{'' if zero else ' '}{'-' if minus else '+' if before else ''}{abs(hour):02d}:{abs(minute):02d}:"
                + _seconds(sec, fsec, True))
    return out
