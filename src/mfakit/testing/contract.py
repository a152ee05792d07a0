"""A conformance suite for :class:`~mfakit.typing.Store` implementations.

Subclass :class:`StoreContract` in your test suite and provide a ``store`` fixture that
returns a fresh, empty store; pytest then runs every check below against it::

    from mfakit.testing import StoreContract

    class TestMyStore(StoreContract):
        @pytest.fixture
        def store(self):
            return MyStore(...)

The checks cover the atomic conditional-write contract (including races between threads),
exact round-tripping of every field, ownership and isolation between subjects, and
:meth:`~mfakit.typing.Store.update_subject` units: what they read, that their changes are
written all or nothing, that a unit whose ``work`` fails writes nothing, and that units of
one subject never interleave.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest

from mfakit._models import (
    Challenge,
    Changes,
    Credential,
    CredentialStatus,
    LockState,
    QuotaState,
    SubjectRecords,
)
from mfakit.exceptions import StoreError
from mfakit.typing import Store

__all__ = ["StoreContract"]

T0 = dt.datetime(2026, 1, 1, 12, 0, tzinfo=dt.timezone.utc)
THREADS = 32


def make_credential(
    cid: str = "cr_1", subject_id: str = "s1", *, version: int = 1, counter: int = -1
) -> Credential:
    """A fully populated credential, so a round trip checks every field."""
    return Credential(
        id=cid,
        subject_id=subject_id,
        tenant="t1",
        factor="totp",
        label="Work phone \u2603",
        status=CredentialStatus.PENDING,
        created_at=T0,
        expires_at=T0 + dt.timedelta(minutes=10),
        confirmed_at=None,
        last_used_at=None,
        counter=counter,
        params={"algorithm": "SHA1", "digits": 6, "period": 30},
        secret=bytes(range(256))[:48],
        version=version,
    )


def make_challenge(chid: str = "ch_1", subject_id: str = "s1", *, version: int = 1) -> Challenge:
    """A fully populated challenge."""
    return Challenge(
        id=chid,
        subject_id=subject_id,
        tenant="t1",
        factor="sms",
        created_at=T0,
        expires_at=T0 + dt.timedelta(minutes=5),
        max_attempts=5,
        attempts=0,
        credential_id="cr_1",
        code_hash=b"\x00\xffhash",
        sends=1,
        resend_at=T0 + dt.timedelta(seconds=30),
        destination_hint="+61 4\u2022\u2022 \u2022\u2022\u2022 678",
        prompts=("q1", "free:Name of my first \u00e9cole?"),
        version=version,
    )


def _race(n: int, work: Callable[[int], bool]) -> list[bool]:
    barrier = threading.Barrier(n)

    def run(i: int) -> bool:
        barrier.wait()
        return work(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


class StoreContract:
    """The checks every store must pass. Provide a ``store`` fixture in a subclass."""

    @pytest.fixture
    def store(self) -> Store:
        """Override: return a fresh, empty store."""
        raise NotImplementedError("subclass StoreContract and provide a 'store' fixture")

    # credentials -----------------------------------------------------------------------
    def test_credential_round_trips_every_field(self, store: Store) -> None:
        credential = dataclasses.replace(
            make_credential(),
            status=CredentialStatus.ACTIVE,
            confirmed_at=T0 + dt.timedelta(seconds=1),
            last_used_at=T0 + dt.timedelta(seconds=2, microseconds=123456),
            counter=2**40,
        )
        assert store.put_credential(credential) is True
        loaded = store.get_credential(credential.id)
        assert loaded == credential
        assert loaded is not None
        assert loaded.secret == credential.secret
        assert dict(loaded.params) == dict(credential.params)
        assert loaded.created_at.utcoffset() == dt.timedelta(0)

    def test_unknown_ids_read_as_none(self, store: Store) -> None:
        assert store.get_credential("cr_missing") is None
        assert store.get_challenge("ch_missing") is None
        assert list(store.list_credentials("nobody")) == []

    def test_credential_insert_only_if_absent(self, store: Store) -> None:
        assert store.put_credential(make_credential()) is True
        assert store.put_credential(make_credential(counter=7)) is False
        loaded = store.get_credential("cr_1")
        assert loaded is not None
        assert loaded.counter == -1

    def test_credential_update_needs_the_previous_version(self, store: Store) -> None:
        assert store.put_credential(make_credential()) is True
        assert store.put_credential(make_credential(version=3, counter=9)) is False
        assert store.put_credential(make_credential(version=2, counter=5)) is True
        assert store.put_credential(make_credential(version=2, counter=6)) is False
        loaded = store.get_credential("cr_1")
        assert loaded is not None
        assert (loaded.version, loaded.counter) == (2, 5)

    def test_credential_version_zero_or_negative_never_written(self, store: Store) -> None:
        assert store.put_credential(make_credential(version=0)) is False
        assert store.put_credential(make_credential(version=-1)) is False
        assert store.get_credential("cr_1") is None

    def test_credential_id_never_changes_owner(self, store: Store) -> None:
        assert store.put_credential(make_credential(subject_id="s1")) is True
        assert store.put_credential(make_credential(subject_id="s2", version=2)) is False
        loaded = store.get_credential("cr_1")
        assert loaded is not None
        assert loaded.subject_id == "s1"
        assert list(store.list_credentials("s2")) == []

    def test_list_credentials_by_subject_oldest_first(self, store: Store) -> None:
        for i in range(5):
            assert store.put_credential(make_credential(f"cr_a{i}", "alice")) is True
        assert store.put_credential(make_credential("cr_b0", "bob")) is True
        assert [c.id for c in store.list_credentials("alice")] == [f"cr_a{i}" for i in range(5)]
        assert [c.id for c in store.list_credentials("bob")] == ["cr_b0"]
        assert {c.id for c in store.iter_credentials()} == {f"cr_a{i}" for i in range(5)} | {
            "cr_b0"
        }

    def test_delete_credential_needs_the_stored_version(self, store: Store) -> None:
        assert store.put_credential(make_credential()) is True
        assert store.delete_credential("cr_1", version=2) is False
        assert store.get_credential("cr_1") is not None
        assert store.delete_credential("cr_1", version=1) is True
        assert store.get_credential("cr_1") is None
        assert list(store.list_credentials("s1")) == []
        assert store.delete_credential("cr_1", version=1) is False

    # challenges ------------------------------------------------------------------------
    def test_challenge_round_trips_every_field(self, store: Store) -> None:
        challenge = make_challenge()
        assert store.put_challenge(challenge) is True
        assert store.get_challenge(challenge.id) == challenge

    def test_challenge_conditional_writes(self, store: Store) -> None:
        assert store.put_challenge(make_challenge()) is True
        assert store.put_challenge(make_challenge()) is False
        bumped = dataclasses.replace(make_challenge(), attempts=1, version=2)
        assert store.put_challenge(bumped) is True
        assert store.put_challenge(bumped) is False
        assert store.delete_challenge("ch_1", version=1) is False
        assert store.delete_challenge("ch_1", version=2) is True
        assert store.get_challenge("ch_1") is None

    def test_purge_removes_only_expired_challenges(self, store: Store) -> None:
        old = dataclasses.replace(make_challenge("ch_old"), expires_at=T0)
        new = dataclasses.replace(make_challenge("ch_new"), expires_at=T0 + dt.timedelta(hours=1))
        assert store.put_challenge(old)
        assert store.put_challenge(new)
        assert store.purge_challenges(now=T0 - dt.timedelta(microseconds=1)) == 0
        assert store.get_challenge("ch_old") == old
        assert store.purge_challenges(now=T0) == 1  # expired at its expiry instant
        assert store.get_challenge("ch_old") is None
        assert store.get_challenge("ch_new") == new

    # lock state ------------------------------------------------------------------------
    def test_lock_state_defaults_to_fresh(self, store: Store) -> None:
        assert store.get_lock_state("s1") == LockState("s1")

    def test_lock_state_conditional_writes_and_round_trip(self, store: Store) -> None:
        first = LockState("s1", failures=1, version=1)
        assert store.put_lock_state(first) is True
        assert store.put_lock_state(first) is False
        locked = LockState(
            "s1",
            failures=5,
            locked_until=T0 + dt.timedelta(seconds=30),
            suspended=True,
            lockouts=3,
            version=2,
        )
        assert store.put_lock_state(locked) is True
        assert store.get_lock_state("s1") == locked
        assert store.get_lock_state("s2") == LockState("s2")

    # send quotas -----------------------------------------------------------------------
    def test_quota_defaults_to_fresh_and_round_trips(self, store: Store) -> None:
        assert store.get_quota("dest:abc") == QuotaState("dest:abc")
        first = QuotaState("dest:abc", sent=(T0,), version=1)
        assert store.put_quota(first) is True
        assert store.put_quota(first) is False
        second = QuotaState(
            "dest:abc", sent=(T0, T0 + dt.timedelta(seconds=1, microseconds=7)), version=2
        )
        assert store.put_quota(second) is True
        assert store.get_quota("dest:abc") == second
        assert store.get_quota("dest:other") == QuotaState("dest:other")

    def test_racing_quota_writers_exactly_one_wins(self, store: Store) -> None:
        wins = _race(
            THREADS,
            lambda i: store.put_quota(
                QuotaState("q", sent=(T0 + dt.timedelta(seconds=i),), version=1)
            ),
        )
        assert wins.count(True) == 1

    # races -----------------------------------------------------------------------------
    def test_racing_writers_of_one_version_exactly_one_wins(self, store: Store) -> None:
        assert store.put_credential(make_credential()) is True
        wins = _race(THREADS, lambda i: store.put_credential(make_credential(version=2, counter=i)))
        assert wins.count(True) == 1
        loaded = store.get_credential("cr_1")
        assert loaded is not None
        assert loaded.counter == wins.index(True)

    def test_racing_challenge_writers_exactly_one_wins(self, store: Store) -> None:
        assert store.put_challenge(make_challenge()) is True
        wins = _race(
            THREADS,
            lambda i: store.put_challenge(
                dataclasses.replace(make_challenge(), attempts=i, version=2)
            ),
        )
        assert wins.count(True) == 1

    def test_racing_inserts_exactly_one_wins(self, store: Store) -> None:
        wins = _race(
            THREADS, lambda i: store.put_lock_state(LockState("s1", failures=i, version=1))
        )
        assert wins.count(True) == 1

    def test_retrying_increments_are_exact(self, store: Store) -> None:
        per_thread = 20

        def bump(_: int) -> bool:
            for _round in range(per_thread):
                while True:
                    state = store.get_lock_state("s1")
                    nxt = dataclasses.replace(
                        state, failures=state.failures + 1, version=state.version + 1
                    )
                    if store.put_lock_state(nxt):
                        break
            return True

        assert all(_race(THREADS, bump))
        final = store.get_lock_state("s1")
        assert final.failures == THREADS * per_thread
        assert final.version == THREADS * per_thread

    # units (update_subject) ------------------------------------------------------------
    def test_unit_reads_the_subjects_records_and_writes_its_changes(self, store: Store) -> None:
        credential = make_credential()
        lock = LockState("s1", failures=2, version=1)
        challenge = make_challenge()
        assert store.put_credential(credential)
        assert store.put_credential(make_credential("cr_other", "s2"))
        assert store.put_lock_state(lock)
        assert store.put_challenge(challenge)
        seen: list[SubjectRecords] = []

        def work(records: SubjectRecords) -> tuple[Changes, str]:
            seen.append(records)
            return Changes(
                lock=dataclasses.replace(records.lock, failures=0, version=2),
                credential=dataclasses.replace(credential, counter=5, version=2),
                withdraw=records.challenge,
            ), "decided"

        assert store.update_subject("s1", work, challenge_id="ch_1") == "decided"
        assert len(seen) == 1
        assert seen[0] == SubjectRecords(lock, (credential,), challenge)
        assert store.get_lock_state("s1") == dataclasses.replace(lock, failures=0, version=2)
        assert store.get_credential("cr_1") == dataclasses.replace(credential, counter=5, version=2)
        assert store.get_challenge("ch_1") is None
        other = store.get_credential("cr_other")
        assert other is not None
        assert other.version == 1

    def test_unit_updates_a_challenge(self, store: Store) -> None:
        assert store.put_challenge(make_challenge())

        def work(records: SubjectRecords) -> tuple[Changes, None]:
            assert records.challenge is not None
            return Changes(challenge=records.challenge.charged()), None

        store.update_subject("s1", work, challenge_id="ch_1")
        loaded = store.get_challenge("ch_1")
        assert loaded is not None
        assert (loaded.attempts, loaded.version) == (1, 2)
        assert loaded == make_challenge().charged()

    def test_unit_of_a_subject_without_records(self, store: Store) -> None:
        seen: list[SubjectRecords] = []

        def work(records: SubjectRecords) -> tuple[Changes, None]:
            seen.append(records)
            lock = records.lock
            return Changes(
                lock=dataclasses.replace(lock, failures=1, version=lock.version + 1)
            ), None

        store.update_subject("nobody", work, challenge_id="ch_missing")
        (records,) = seen
        assert records.credentials == ()
        assert records.challenge is None
        # A clean slate: never stored (version 0), or created by the store so that it has a
        # row to lock (version 1).
        assert dataclasses.replace(records.lock, version=0) == LockState("nobody")
        assert records.lock.version in (0, 1)
        assert store.get_lock_state("nobody").failures == 1

    def test_unit_does_not_read_another_subjects_challenge(self, store: Store) -> None:
        assert store.put_challenge(make_challenge("ch_bob", "bob"))
        seen: list[SubjectRecords] = []

        def work(records: SubjectRecords) -> tuple[Changes, None]:
            seen.append(records)
            return Changes(), None

        store.update_subject("alice", work, challenge_id="ch_bob")
        assert seen[0].challenge is None
        assert store.get_challenge("ch_bob") == make_challenge("ch_bob", "bob")

    def test_unit_refuses_a_change_for_another_subject(self, store: Store) -> None:
        bobs = make_credential("cr_bob", "bob")
        assert store.put_credential(bobs)
        assert store.put_lock_state(LockState("alice", failures=3, version=1))

        def work(records: SubjectRecords) -> tuple[Changes, None]:
            return Changes(
                lock=dataclasses.replace(
                    records.lock, failures=0, version=records.lock.version + 1
                ),
                credential=dataclasses.replace(bobs, counter=99, version=2),
            ), None

        with pytest.raises(StoreError):
            store.update_subject("alice", work)
        assert store.get_credential("cr_bob") == bobs
        assert store.get_lock_state("alice").failures == 3  # nothing of the unit written

    def test_unit_whose_work_raises_writes_nothing(self, store: Store) -> None:
        class Refused(Exception):
            pass

        def work(records: SubjectRecords) -> tuple[Changes, None]:
            raise Refused("no")

        with pytest.raises(Refused):
            store.update_subject("fresh", work)
        # Not even the row a store may create to lock a subject without one.
        assert store.get_lock_state("fresh") == LockState("fresh")

    def test_unit_changes_are_all_or_nothing(self, store: Store) -> None:
        credential = make_credential()
        assert store.put_credential(credential)
        calls: list[SubjectRecords] = []

        def work(records: SubjectRecords) -> tuple[Changes, int]:
            calls.append(records)
            lock = records.lock
            # The first run's credential change does not fit (a version too far): none of
            # that run may be written, not even its lock change.
            version = 7 if len(calls) == 1 else 2
            return Changes(
                lock=dataclasses.replace(
                    lock, failures=lock.failures + 1, version=lock.version + 1
                ),
                credential=dataclasses.replace(credential, counter=1, version=version),
            ), len(calls)

        assert store.update_subject("s1", work) == 2
        assert calls[1].lock == calls[0].lock  # the first run's lock write was rolled back
        assert store.get_lock_state("s1").failures == 1
        loaded = store.get_credential("cr_1")
        assert loaded is not None
        assert (loaded.counter, loaded.version) == (1, 2)

    def test_racing_units_of_one_subject_never_interleave(self, store: Store) -> None:
        seen_failures: list[int] = []
        lock = threading.Lock()

        def work(records: SubjectRecords) -> tuple[Changes, int]:
            state = records.lock
            return Changes(
                lock=dataclasses.replace(
                    state, failures=state.failures + 1, version=state.version + 1
                )
            ), state.failures

        def run(_: int) -> bool:
            seen = store.update_subject("s1", work)
            with lock:
                seen_failures.append(seen)
            return True

        assert all(_race(THREADS, run))
        # Each written run saw the state the previous one left: 0, 1, ..., 31 exactly once.
        assert sorted(seen_failures) == list(range(THREADS))
        assert store.get_lock_state("s1").failures == THREADS
