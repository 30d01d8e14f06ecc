"""The users file of a local Hub with several users: who signs in with which token, and who belongs to which org.

``hub serve --users-file FILE``, ``LocalHub(users_file=FILE)`` and ``@pytest.mark.local_hub(users_file=FILE)`` read
it. YAML (or JSON, which is YAML too)::

    users:
      - name: alice
        token: hf_alice_write          # the user's write token
        read_tokens: [hf_alice_read]   # optional: tokens that can read but not write
      - name: bob
        token: hf_bob_write
    orgs:                              # optional: organisation -> {member: role}
      acme:
        alice: admin                   # read | contributor | write | admin
        bob: contributor

Names follow the Hub's rule (``names``), roles are ``accounts.ORG_ROLES``, and a token belongs to one user only.
Every problem in the file is reported at once, naming the file and the key; token values never appear in them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from beam_pusher.localhub.accounts import ORG_ROLES, HubUser
from beam_pusher.localhub.names import NAME_RULE, valid_name

__all__ = ["UsersFileError", "load_users"]

_USER_KEYS = {"name", "token", "read_tokens"}


class UsersFileError(ValueError):
    """A users file that cannot be used; the message lists every problem, each with its key."""


def load_users(path: str | os.PathLike) -> list[HubUser]:
    """The users a users file declares, in its order (the first is the local Hub's default user).

    Raises:
        UsersFileError: the file is missing or not YAML, or any user, token, organisation or role is invalid.
    """
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise UsersFileError(f"Cannot read the users file {str(path)!r}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise UsersFileError(f"Users file {str(path)!r} is not valid YAML or JSON: {err}") from None
    problems: list[str] = []
    users = _parse(data, problems)
    if problems:
        raise UsersFileError(f"Users file {str(path)!r} has {len(problems)} problem(s):\n- " + "\n- ".join(problems)
                             + "\nSee beam_pusher.localhub.users_file for the format.")
    return users


def _parse(data: Any, problems: list[str]) -> list[HubUser]:
    if not isinstance(data, dict) or not isinstance(data.get("users"), list) or not data["users"]:
        problems.append("the file must be a mapping with a non-empty list 'users' "
                        "(each: name, token, optional read_tokens) and an optional mapping 'orgs'")
        return []
    for key in sorted(set(data) - {"users", "orgs"}, key=str):
        problems.append(f"unknown key {key!r}: use 'users' and 'orgs'")
    roles = _org_roles(data.get("orgs") or {}, problems)
    users, names, tokens = [], set(), set()  # names as given, compared without case as the Hub does
    for index, item in enumerate(data["users"]):
        where = f"users[{index}]"
        if not isinstance(item, dict):
            problems.append(f"{where} must be a mapping with name, token and optional read_tokens")
            continue
        for key in sorted(set(item) - _USER_KEYS, key=str):
            problems.append(f"{where}: unknown key {key!r}: use {', '.join(sorted(_USER_KEYS))}")
        name, token, read_tokens = item.get("name"), item.get("token"), item.get("read_tokens") or []
        if not valid_name(name):
            problems.append(f"{where}.name {name!r} is not a valid user name: {NAME_RULE}")
            continue
        if name.lower() in {known.lower() for known in names}:
            problems.append(f"{where}.name {name!r} is declared twice: each user once")
        names.add(name)
        if not isinstance(read_tokens, list):
            problems.append(f"{where}.read_tokens of {name!r} must be a list of tokens")
            read_tokens = []
        for label, value in [("token", token)] + [(f"read_tokens[{i}]", t) for i, t in enumerate(read_tokens)]:
            if not isinstance(value, str) or not value.strip():
                problems.append(f"{where}.{label} of {name!r} must be a non-empty string")
            elif value in tokens:
                problems.append(f"{where}.{label} of {name!r} is already the token of another entry: tokens are "
                                "unique")
            tokens.add(value)
        mine = {org: members[name] for org, members in roles.items() if name in members}
        if isinstance(token, str) and token.strip() and all(isinstance(t, str) for t in read_tokens):
            users.append(HubUser(name, token, orgs=mine, read_tokens=tuple(read_tokens)))
    _check_members(roles, names, problems)
    return users


def _org_roles(orgs: Any, problems: list[str]) -> dict[str, dict[str, str]]:
    """``{org: {user: role}}`` of the ``orgs`` mapping, the invalid entries reported and left out."""
    if not isinstance(orgs, dict):
        problems.append("orgs must map each organisation to its members and their roles ({alice: admin})")
        return {}
    found: dict[str, dict[str, str]] = {}
    for org, members in orgs.items():
        if not valid_name(org):
            problems.append(f"orgs: {org!r} is not a valid organisation name: {NAME_RULE}")
            continue
        if not isinstance(members, dict) or not members:
            problems.append(f"orgs.{org} must map member names to roles ({', '.join(ORG_ROLES)})")
            continue
        for member, role in members.items():
            if role not in ORG_ROLES:
                problems.append(f"orgs.{org}.{member}: role {role!r} is not one of {', '.join(ORG_ROLES)}")
            else:
                found.setdefault(org, {})[member] = role
    return found


def _check_members(roles: dict[str, dict[str, str]], names: set[str], problems: list[str]) -> None:
    for org, members in roles.items():
        if org.lower() in {name.lower() for name in names}:
            problems.append(f"orgs.{org}: {org!r} is already a user name: organisations and users share namespaces")
        for member in members:
            if member not in names:
                problems.append(f"orgs.{org}.{member}: no user {member!r} in 'users'")
