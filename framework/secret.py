"""A value that must never be printed: API keys and secrets."""

from __future__ import annotations

import hashlib

from framework.log import register_secret


class Secret:
    """Holds a credential. Its repr and str are masked; the log redactor knows its value.

    Read the value with :meth:`reveal` only where it is used (signing, the API-Key header).
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register_secret(value)

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> str | tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


def key_id(api_key: str | Secret) -> str:
    """Short, stable identity of an API key: 12 hex chars of its SHA-256. Safe to log."""
    raw = api_key.reveal() if isinstance(api_key, Secret) else api_key
    return hashlib.sha256(raw.encode()).hexdigest()[:12]
