"""Users, organisations and tokens of the local Hub, and who may read or write which namespace.

The rules are the Hub's: a write token may write in its user's namespace and, by the user's role in an organisation,
in that organisation's namespace; a read token may read what the user can see but write nothing; private
repositories are visible only to members of their namespace. Organisation roles are the Hub's: ``read`` (see the
organisation's private repositories), ``contributor`` (also create repositories there and write to those the user
created), ``write`` (write to, rename and delete any of them) and ``admin`` (write, and manage the organisation).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import secrets
from collections.abc import Iterable, Mapping

from beam_pusher.localhub.names import check_name

__all__ = ["ORG_ROLES", "Accounts", "HubUser", "Identity", "InvalidToken"]

ORG_ROLES = ("read", "contributor", "write", "admin")
_WRITING_ROLES = ("write", "admin")


@dataclasses.dataclass(frozen=True)
class HubUser:
    """A user of the local Hub.

    Args:
        name: the user's namespace (``user`` in ``user/my-space``); the Hub's name rule applies (``_`` may start it).
        token: the user's write token.
        orgs: organisations the user belongs to: names (the ``write`` role in each), or a mapping of name to role
            (one of ``ORG_ROLES``); kept as the names, the roles go to ``org_roles``.
        read_tokens: extra tokens of this user that can read but not write.
        org_roles: ``(organisation, role)`` pairs; filled from ``orgs``, give it only to add to them.

    Example::

        HubUser("alice", "hf_alice_write", orgs=("acme",), read_tokens=("hf_alice_read",))
        HubUser("bob", "hf_bob_write", orgs={"acme": "contributor", "lab": "read"})
    """

    name: str
    token: str
    orgs: tuple[str, ...] | Mapping[str, str] = ()
    read_tokens: tuple[str, ...] = ()
    org_roles: tuple[tuple[str, str], ...] = ()

    def __post_init__(self) -> None:
        check_name(self.name, "user name")
        given = self.orgs.items() if isinstance(self.orgs, Mapping) else ((org, "write") for org in self.orgs)
        roles = dict(self.org_roles)
        roles.update(given)
        for org, role in roles.items():
            check_name(org, "organisation")
            if role not in ORG_ROLES:
                raise ValueError(f"Invalid role {role!r} of user {self.name!r} in organisation {org!r}: use one of "
                                 f"{', '.join(ORG_ROLES)}")
        if not self.token:
            raise ValueError(f"HubUser {self.name!r} needs a non-empty write token")
        object.__setattr__(self, "orgs", tuple(roles))
        object.__setattr__(self, "org_roles", tuple(roles.items()))
        object.__setattr__(self, "read_tokens", tuple(self.read_tokens))

    def role_in(self, org: str) -> str | None:
        """The user's role in organisation ``org`` (one of ``ORG_ROLES``), None when not a member."""
        return dict(self.org_roles).get(org)

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
        """True for the user's own namespace and every organisation the user belongs to, whatever the role."""
        return namespace == self.user.name or namespace in self.user.orgs

    def can_create(self, namespace: str) -> bool:
        """True if this token may create repositories in ``namespace`` (a contributor may, in an organisation)."""
        return self.role == "write" and self.role_in(namespace) in ("contributor",) + _WRITING_ROLES

    def can_write(self, namespace: str, creator: str | None = None) -> bool:
        """True if this token may write to a repository of ``namespace`` that ``creator`` created.

        A contributor writes only to the repositories it created; ``write`` and ``admin`` members to all of them.
        """
        if self.role != "write":
            return False
        role = self.role_in(namespace)
        return role in _WRITING_ROLES or (role == "contributor" and creator == self.user.name)

    def role_in(self, namespace: str) -> str | None:
        """The user's role in ``namespace``: ``admin`` for their own, an organisation role, or None."""
        return "admin" if namespace == self.user.name else self.user.role_in(namespace)


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
