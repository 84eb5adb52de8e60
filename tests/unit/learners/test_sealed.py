"""Sealed blobs: a good blob round-trips; a tampered or foreign one is refused before any of
it is decoded; a previous secret verifies while it is listed."""

from __future__ import annotations

import pytest

from learners.sealed import Keyring, SealError

PAYLOAD = b"\x93\x01\x02\x03 any bytes, e.g. a msgpack snapshot holding pickles"


def test_a_sealed_blob_round_trips() -> None:
    keyring = Keyring(b"secret-a")
    assert keyring.unseal(keyring.seal(PAYLOAD)) == PAYLOAD
    assert keyring.unseal(keyring.seal(b"")) == b""


@pytest.mark.parametrize("position", [0, 5, 40, -1])
def test_one_changed_byte_anywhere_is_refused(position: int) -> None:
    keyring = Keyring(b"secret-a")
    blob = bytearray(keyring.seal(PAYLOAD))
    blob[position] ^= 0x01
    with pytest.raises(SealError):
        keyring.unseal(bytes(blob))


@pytest.mark.parametrize("blob", [b"", b"ARS1", PAYLOAD, b"ARS1" + bytes(32) + PAYLOAD])
def test_unsealed_or_forged_blobs_are_refused(blob: bytes) -> None:
    with pytest.raises(SealError):
        Keyring(b"secret-a").unseal(blob)


def test_a_previous_secret_verifies_only_while_it_is_listed() -> None:
    old = Keyring(b"secret-a").seal(PAYLOAD)
    rotated = Keyring(b"secret-b", [b"secret-a"])
    assert rotated.unseal(old) == PAYLOAD
    with pytest.raises(SealError):  # new blobs are sealed with the current secret only
        Keyring(b"secret-a").unseal(rotated.seal(PAYLOAD))
    with pytest.raises(SealError):
        Keyring(b"secret-b").unseal(old)


def test_the_secrets_never_appear_in_the_repr() -> None:
    assert "secret-a" not in repr(Keyring(b"secret-a", [b"secret-0"]))
