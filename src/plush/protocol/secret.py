"""Secrets that must never reach a log, a repr, an error message or a command line.

:class:`Secret` wraps a string (the per-run join token). Its ``repr``/``str`` are masked; the value is
read only through :meth:`Secret.reveal`, so every place that exposes it is greppable. Comparison against a
received value is constant-time (``hmac.compare_digest``) so a peer cannot learn the token byte by byte.

Ships to agents: standard library only, Python 3.8 syntax.
"""

from __future__ import annotations

import hmac
import secrets

__all__ = ["Secret"]


class Secret:
    """A string whose value is masked everywhere except :meth:`reveal`."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not isinstance(value, str) or not value:
            raise ValueError("a secret must be a non-empty string")
        self._value = value

    @classmethod
    def generate(cls, nbytes: int = 32) -> Secret:
        """A fresh random token (URL-safe text, ``nbytes`` of entropy)."""
        return cls(secrets.token_urlsafe(nbytes))

    def reveal(self) -> str:
        """The secret value. Call it only where the value must leave the process (a 0600 file, the wire)."""
        return self._value

    def matches(self, candidate: object) -> bool:
        """Whether ``candidate`` is this secret, compared in constant time. Non-strings never match."""
        if not isinstance(candidate, str):
            return False
        return hmac.compare_digest(candidate.encode("utf-8"), self._value.encode("utf-8"))

    def __repr__(self) -> str:
        return "Secret('********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and self.matches(other._value)

    def __hash__(self) -> int:
        return hash(Secret)  # all secrets share a hash: never leak anything through it
