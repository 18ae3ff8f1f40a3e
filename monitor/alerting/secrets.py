"""Secrets (webhook URLs with tokens, signing keys, routing keys): read from the environment or a
file, held in a ``Secret`` whose ``repr``/``str``/``format`` never show the value. Pure module.

The configuration file only names where a secret lives (``secret_env = "NAME"``,
``secret_file = "/run/secrets/x"``); the value is read when the dispatcher starts, so it never
passes through the TOML, the config's ``to_dict`` or its ``repr``. ``scrub`` replaces any secret
value found in a text (an HTTP client's error message quoting the URL, say) before it is logged or
written to the dead-letter topic.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import quote, unquote, urlsplit

from monitor.core.errors import ConfigError
from monitor.core.sink_settings import REDACTED, redact_url


class Secret:
    """A string that is only ever shown as ``hint`` (default ``***``); ``reveal()`` gives it."""

    __slots__ = ("_hint", "_value")

    def __init__(self, value: str, hint: str = REDACTED) -> None:
        self._value = value
        self._hint = hint

    def reveal(self) -> str:
        return self._value

    @property
    def hint(self) -> str:
        return self._hint

    def __repr__(self) -> str:
        return f"Secret({self._hint!r})"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(
            self._value.encode(), other._value.encode()
        )

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self._value.encode()).digest())

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret is not pickled")


def url_secret(url: str) -> Secret:
    return Secret(url, redact_url(url))


def read_secret(
    where: str, env: str | None, file: str | None, environ: Mapping[str, str], what: str
) -> str:
    """The value of the variable ``env`` or the contents of ``file`` (surrounding whitespace
    stripped); a ConfigError naming ``where`` (never the value) when it is missing or empty."""
    if env is not None:
        value = environ.get(env)
        if value is None:
            raise ConfigError(f"{where}_env: environment variable {env} ({what}) is not set")
        key = f"{where}_env"
    elif file is not None:
        try:
            value = Path(file).expanduser().read_text()
        except OSError as exc:
            raise ConfigError(
                f"{where}_file: cannot read {file} ({what}): {exc.strerror}"
            ) from None
        key = f"{where}_file"
    else:  # pragma: no cover - the config parser guarantees one of them
        raise ConfigError(f"{where}: no source")
    value = value.strip()
    if not value:
        raise ConfigError(f"{key}: {what} is empty")
    return value


def scrub(text: str, secrets: Iterable[Secret]) -> str:
    """``text`` with every secret's value (and its URL-quoted/unquoted forms and, for URLs, the
    path) replaced by the secret's hint."""
    for s in secrets:
        v = s.reveal()
        forms = {v, quote(v, safe=":/?&=%"), unquote(v)}
        try:
            parts = urlsplit(v)
            if parts.scheme and parts.path not in ("", "/"):
                forms.add(parts.path)
                if parts.query:
                    forms.add(parts.query)
        except ValueError:
            pass
        for f in sorted((f for f in forms if len(f) >= 4), key=len, reverse=True):
            text = text.replace(f, s.hint)
    return text
