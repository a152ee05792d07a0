"""The example's own accounts: users with argon2id password hashes, and session records.

Both tables live in the same SQLite file as mfakit's (SQLAlchemy Core). mfakit never sees a
password: the app checks it, then hands mfakit a :class:`~mfakit.Subject`.

Session records make the cookie session revocable: a cookie names a random session id, and
a request whose id is no longer in the table is signed out. That is how signing out, an
administrator's reset and the rotation after the second factor (SECURITY.md 32) end a
session for good, even if someone kept a copy of the old cookie.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import secrets
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from mfakit import Subject
from mfakit.hazmat.hashing import SecretHasher

USERNAME: Final = re.compile(r"[A-Za-z0-9._-]{3,32}")
MIN_PASSWORD: Final = 8  # NIST SP 800-63B 3.1.1.2: at least 8 with a second factor
MAX_PASSWORD: Final = 256

metadata = sa.MetaData()
users = sa.Table(
    "app_users",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(32), nullable=False, unique=True),  # stored case-folded
    sa.Column("display_name", sa.String(64), nullable=False),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("is_admin", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)
sessions = sa.Table(
    "app_sessions",
    metadata,
    sa.Column("sid", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, nullable=False, index=True),
    sa.Column("created_at", sa.DateTime, nullable=False),
)


class SignUpError(ValueError):
    """The sign-up form was refused; the message is safe to show."""


@dataclasses.dataclass(frozen=True)
class User:
    """One account of the example app."""

    id: int
    username: str
    display_name: str
    is_admin: bool

    def subject(self, tenant: str) -> Subject:
        """The :class:`~mfakit.Subject` mfakit knows this user as."""
        return Subject(
            id=f"user-{self.id}",
            tenant=tenant,
            username=self.username,
            display_name=self.display_name,
        )


def _user(row: Any) -> User:  # a Row of _COLUMNS
    return User(id=row[0], username=row[1], display_name=row[2], is_admin=bool(row[3]))


_COLUMNS: Final = (users.c.id, users.c.username, users.c.display_name, users.c.is_admin)


class Accounts:
    """Users and session records on one engine.

    Args:
        engine: Where the tables live (created if missing).
        hasher: argon2id for passwords (mfakit's :class:`SecretHasher`).
    """

    def __init__(self, engine: Engine, hasher: SecretHasher) -> None:
        self.engine = engine
        self.hasher = hasher
        metadata.create_all(engine)

    # users ----------------------------------------------------------------------------------
    def create(self, username: str, password: str, display_name: str = "") -> User:
        """Create an account (not an administrator: see :meth:`set_admin`).

        Raises:
            SignUpError: A bad username or password, or the username is taken.
        """
        name = username.strip().casefold()
        if not USERNAME.fullmatch(name):
            raise SignUpError("Usernames are 3 to 32 letters, digits, dots, dashes or underscores.")
        if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
            raise SignUpError(f"Passwords are {MIN_PASSWORD} to {MAX_PASSWORD} characters long.")
        if password.casefold() == name:
            raise SignUpError("The password cannot be the username.")
        shown = " ".join(display_name.split())[:64] or name
        hashed = self.hasher.hash(password)
        try:
            with self.engine.begin() as conn:
                result = conn.execute(
                    users.insert().values(
                        username=name,
                        display_name=shown,
                        password_hash=hashed,
                        is_admin=False,
                        created_at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
                    )
                )
                user_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        except sa.exc.IntegrityError:
            raise SignUpError("That username is taken.") from None
        return User(user_id, name, shown, False)

    def count(self) -> int:
        """How many accounts exist."""
        with self.engine.connect() as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(users)).scalar_one())

    def set_admin(self, username: str, is_admin: bool = True) -> bool:
        """Grant (or take away) the user-management role; ``False`` if no such user."""
        with self.engine.begin() as conn:
            result = conn.execute(
                users.update()
                .where(users.c.username == username.strip().casefold())
                .values(is_admin=is_admin)
            )
            return result.rowcount == 1

    def authenticate(self, username: str, password: str) -> User | None:
        """The user whose password this is, or ``None``.

        An unknown username costs the same argon2id work as a wrong password, so the time
        taken does not say which usernames exist.
        """
        if len(password) > MAX_PASSWORD or not password:
            return None
        with self.engine.connect() as conn:
            row = conn.execute(
                sa.select(*_COLUMNS, users.c.password_hash).where(
                    users.c.username == username.strip().casefold()
                )
            ).first()
        if row is None:
            self.hasher.dummy_verify(password)
            return None
        if not self.hasher.verify(row.password_hash, password):
            return None
        if self.hasher.needs_rehash(row.password_hash):
            with self.engine.begin() as conn:
                conn.execute(
                    users.update()
                    .where(users.c.id == row.id)
                    .values(password_hash=self.hasher.hash(password))
                )
        return User(row.id, row.username, row.display_name, bool(row.is_admin))

    def get(self, user_id: int) -> User | None:
        """The user with this id, or ``None``."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(*_COLUMNS).where(users.c.id == user_id)).first()
        return None if row is None else _user(row)

    def all(self) -> list[User]:
        """Every user, by username."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(*_COLUMNS).order_by(users.c.username)).all()
        return [_user(row) for row in rows]

    # sessions -------------------------------------------------------------------------------
    def new_session(self, user_id: int) -> str:
        """Record a new session for ``user_id`` and return its random id."""
        sid = secrets.token_urlsafe(32)
        with self.engine.begin() as conn:
            conn.execute(
                sessions.insert().values(
                    sid=sid,
                    user_id=user_id,
                    created_at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
                )
            )
        return sid

    def session_user(self, sid: str) -> int | None:
        """The user of a live session, or ``None`` if it ended."""
        with self.engine.connect() as conn:
            return conn.execute(
                sa.select(sessions.c.user_id).where(sessions.c.sid == sid)
            ).scalar_one_or_none()

    def end_session(self, sid: str) -> None:
        """End one session."""
        with self.engine.begin() as conn:
            conn.execute(sessions.delete().where(sessions.c.sid == sid))

    def end_sessions_of(self, user_id: int) -> int:
        """End every session of a user; returns how many."""
        with self.engine.begin() as conn:
            return conn.execute(sessions.delete().where(sessions.c.user_id == user_id)).rowcount
