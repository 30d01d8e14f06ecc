"""Users, organisations and tokens of the local Hub, and who may read or write which namespace.

The rules are the Hub's: a write token may write in its user's namespace and in the organisations the user belongs
to; a read token may read what the user can see but write nothing; private repositories are visible only to members
of their namespace.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import secrets
from collections.abc import Iterable

from beam_pusher.localhub.names import check_name

__all__ = ["Accounts", "HubUser", "Identity", "InvalidToken"]


@dataclasses.dataclass(frozen=True)
class HubUser:
    """A user of the local Hub.

    Args:
        name: the user's namespace (``user`` in ``user/my-space``); the Hub's name rule applies (``_`` may start it).
        token: the user's write token.
        orgs: organisations the user belongs to (with write access to their namespaces).
        read_tokens: extra tokens of this user that can read but not write.

    Example::

        HubUser("alice", "hf_alice_write", orgs=("acme",), read_tokens=("hf_alice_read",))
    """

    name: str
    token: str
    orgs: tuple[str, ...] = ()
    read_tokens: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_name(self.name, "user name")
        for org in self.orgs:
            check_name(org, "organisation")
        if not self.token:
            raise ValueError(f"HubUser {self.name!r} needs a non-empty write token")
        object.__setattr__(self, "orgs", tuple(self.orgs))
        object.__setattr__(self, "read_tokens", tuple(self.read_tokens))

    def __repr__(self) -> str:  # tokens never appear in logs or error messages
        return f"HubUser(name={self.name!r}, orgs={self.orgs!r})"

    @classmethod
    def generate(cls, name: str = "user", orgs: Iterable[str] = ()) -> HubUser:
        """A user with a random write token (``hf_`` + 32 hex digits)."""
        return cls(name, "hf_" + secrets.token_hex(16), tuple(orgs))


@dataclasses.dataclass(frozen=True)
class Identity:
    """The user a request's token belongs to, and that token's role (``read`` or ``write``)."""

    user: HubUser
    role: str

    @property
    def name(self) -> str:
        return self.user.name

    def is_member(self, namespace: str) -> bool:
        return namespace == self.user.name or namespace in self.user.orgs

    def can_write(self, namespace: str) -> bool:
        return self.role == "write" and self.is_member(namespace)


class InvalidToken(Exception):
    """The Authorization header carries a token no user has."""


class Accounts:
    """Token lookup for a fixed set of users."""

    def __init__(self, users: Iterable[HubUser]):
        self.users = list(users)
        if not self.users:
            raise ValueError("the local Hub needs at least one user")
        self._by_token: dict[str, Identity] = {}
        for user in self.users:
            self._by_token[user.token] = Identity(user, "write")
            for token in user.read_tokens:
                self._by_token[token] = Identity(user, "read")
        self.orgs = sorted({org for user in self.users for org in user.orgs})

    def authenticate(self, authorization: str | None) -> Identity | None:
        """Returns the caller's identity, None when anonymous.

        Accepts ``Bearer <token>`` (the huggingface_hub client) and ``Basic base64(user:token)`` (the git CLI).

        Raises:
            InvalidToken: a token was sent but is not known.
        """
        if not authorization:
            return None
        scheme, _, value = authorization.strip().partition(" ")
        token = value.strip()
        if scheme.lower() == "basic":
            try:
                token = base64.b64decode(token, validate=True).decode().partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                raise InvalidToken() from None
        elif scheme.lower() != "bearer":
            raise InvalidToken()
        identity = self._by_token.get(token)
        if identity is None:
            raise InvalidToken()
        return identity

    def members(self, namespace: str) -> list[HubUser]:
        return [user for user in self.users if user.name == namespace or namespace in user.orgs]

    def namespace_exists(self, namespace: str) -> bool:
        return bool(self.members(namespace))
