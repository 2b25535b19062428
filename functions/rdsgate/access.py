"""Who is calling, and whether a definition's ``allowed_principals`` lets them use it."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .definitions import ConnectionDefinition
from .errors import Forbidden

__all__ = ["Caller", "TRUSTED"]

_ROLE_ARN = re.compile(r"^arn:(?P<partition>[^:]+):iam::(?P<account>\d{12}|\*):role/(?:.*/)?(?P<role>[^/]+)$")


@dataclass(frozen=True)
class Caller:
    """The identity a request runs for.

    ``governed`` callers (API Gateway) must be listed in ``allowed_principals``;
    Step Functions and direct invokes are governed by ``lambda:InvokeFunction``
    and only recorded.
    """

    arn: str | None
    governed: bool

    def may_use(self, definition: ConnectionDefinition) -> bool:
        if not self.governed:
            return True
        if not self.arn or not definition.allowed_principals:
            return False  # secure by default: no list, no API access
        return any(_pattern(p).match(self.arn) for p in definition.allowed_principals)

    def check(self, definition: ConnectionDefinition) -> None:
        """Raise Forbidden naming the connection (never the list) when the caller is not allowed."""
        if not self.may_use(definition):
            who = self.arn or "an unidentified caller"
            raise Forbidden(f"{who} may not use connection {definition.name!r}")


TRUSTED = Caller(arn=None, governed=False)


@lru_cache(maxsize=512)
def _pattern(principal: str) -> re.Pattern[str]:
    """An ARN pattern with ``*`` wildcards; a role ARN also matches that role's assumed-role sessions."""
    alternatives = [_glob(principal)]
    role = _ROLE_ARN.match(principal)
    if role:
        alternatives.append(
            _glob(f"arn:{role['partition']}:sts::{role['account']}:assumed-role/{role['role']}/") + r"[^/]+"
        )
    return re.compile("^(?:" + "|".join(alternatives) + ")$")


def _glob(text: str) -> str:
    return ".*".join(re.escape(part) for part in text.split("*"))
