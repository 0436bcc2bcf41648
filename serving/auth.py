"""API keys: a file of ``tenant:key`` lines, looked up in constant time; keys never appear in logs or errors."""

from __future__ import annotations

import hashlib
import hmac
import re
from pathlib import Path

from perk_ray.errors import ConfigError

TENANT_PATTERN = re.compile(r"[A-Za-z0-9_.-]{1,64}")
OPEN_TENANT = ""  # the one tenant of a service without keys


def _digest(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


class ApiKeys:
    """Maps a bearer key to its tenant. Only the keys' SHA-256 digests are kept."""

    def __init__(self, keys: dict[str, str]):
        self._digests = [(_digest(key), tenant) for key, tenant in keys.items()]

    @classmethod
    def from_file(cls, path: str | Path) -> ApiKeys:
        """Parse ``tenant:key`` lines (blank lines and ``#`` comments skipped); errors name the line, never the key."""
        try:
            lines = Path(path).read_text().splitlines()
        except (OSError, UnicodeDecodeError) as err:
            raise ConfigError(f"serve.api_keys_file {path}: cannot read it ({type(err).__name__})") from None
        keys: dict[str, str] = {}
        for number, line in enumerate(lines, 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            tenant, sep, key = (part.strip() for part in line.partition(":"))
            where = f"serve.api_keys_file {path}, line {number}"
            if not sep or not key:
                raise ConfigError(f"{where}: expected tenant:key")
            if not TENANT_PATTERN.fullmatch(tenant):
                raise ConfigError(f"{where}: tenant must match {TENANT_PATTERN.pattern}")
            if key in keys:
                raise ConfigError(f"{where}: this key is already given to tenant {keys[key]!r}")
            keys[key] = tenant
        if not keys:
            raise ConfigError(f"serve.api_keys_file {path} holds no tenant:key line")
        return cls(keys)

    @property
    def tenants(self) -> set[str]:
        return {tenant for _, tenant in self._digests}

    def tenant(self, authorization: str | None) -> str | None:
        """The tenant of an ``Authorization: Bearer <key>`` header, or None (compared with every key, constant time)."""
        scheme, _, key = (authorization or "").partition(" ")
        digest = _digest(key.strip()) if scheme.lower() == "bearer" else b""
        found = None
        for known, tenant in self._digests:
            if hmac.compare_digest(known, digest):
                found = tenant
        return found
