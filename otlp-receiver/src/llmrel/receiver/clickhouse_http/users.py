"""The interface's users and how a request proves to be one of them.

- `llmrel_reader` (dashboards): reads llmrel's database; password `LLMREL_READER_PASSWORD`.
- `llmrel_writer` (a collector's clickhouseexporter): inserts into `otel_traces`; `LLMREL_WRITER_PASSWORD`.
- `llmrel_admin` (llmrel's own CLI beside `serve`): everything; its password is read from
  `LLMREL_CLICKHOUSE_HTTP_ADMIN_SECRET_FILE`, created (0600) in the store directory when absent.

A user without a password is disabled: there is no default password.
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass

from starlette.datastructures import Headers, QueryParams

from llmrel.config import Settings
from llmrel.receiver.clickhouse_http.errors import ClickHouseError
from llmrel.receiver.clickhouse_http.policy import ADMIN, READER, WRITER
from llmrel.served_store import ADMIN_USER, ensure_admin_secret

READER_USER, WRITER_USER = "llmrel_reader", "llmrel_writer"


@dataclass(frozen=True)
class User:
    name: str
    role: str
    password: str


class Users:
    """The enabled users, checked in constant time."""

    def __init__(self, settings: Settings) -> None:
        users = [User(ADMIN_USER, ADMIN, ensure_admin_secret(settings))]
        if settings.reader_password is not None:
            users.append(User(READER_USER, READER, settings.reader_password.get_secret_value()))
        if settings.writer_password is not None:
            users.append(User(WRITER_USER, WRITER, settings.writer_password.get_secret_value()))
        self._users = {u.name: u for u in users}

    def authenticate(self, headers: Headers, params: QueryParams) -> User:
        """The user a request authenticates as (Basic, `X-ClickHouse-User`/`-Key` or `user`/`password`).

        Raises:
            ClickHouseError: REQUIRED_PASSWORD (401) without credentials, AUTHENTICATION_FAILED (403) otherwise.
        """
        name, password = _credentials(headers, params)
        if name is None:
            raise ClickHouseError(194, "default: Authentication failed: password is required; "
                                       "pass a user and password (Basic auth or X-ClickHouse-User/Key)")
        user = self._users.get(name)
        if user is None or not hmac.compare_digest(user.password.encode(), (password or "").encode()):
            raise ClickHouseError(516, f"{name}: Authentication failed: password is incorrect, "
                                       "or there is no user with such name")
        return user


def _credentials(headers: Headers, params: QueryParams) -> tuple[str | None, str | None]:
    header_user = headers.get("x-clickhouse-user")
    authorization = headers.get("authorization")
    url_user = params.get("user")
    given = sum(x is not None for x in (header_user, authorization, url_user))
    if given > 1:
        raise ClickHouseError(516, "Authentication failed: use only one of Basic auth, "
                                   "X-ClickHouse-User/Key headers and user/password parameters")
    if header_user is not None:
        return header_user, headers.get("x-clickhouse-key", "")
    if url_user is not None:
        return url_user, params.get("password", "")
    if authorization is not None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "basic":
            raise ClickHouseError(516, f"Authentication failed: unsupported authorization scheme {scheme!r}")
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            raise ClickHouseError(516, "Authentication failed: malformed Basic credentials") from None
        name, _, password = decoded.partition(":")
        return name, password
    return None, None
