"""Keys bounded by a stable digest, texts cut with a mark, strings made valid UTF-8."""

from mail2ticket.store.bounds import DIGEST_MARK, TRUNCATED_MARK, bounded_key, bounded_text, valid_utf8
from mail2ticket.store.models import MessageLink, PersonItem, Replica, ReplicasByMessageId


def test_a_key_within_its_limit_is_kept_as_it_is() -> None:
    value = "CAF1234+abc@mail.example.org"
    assert bounded_key(value, 2048) == value
    assert bounded_key("é" * 1024, 2048) == "é" * 1024


def test_a_longer_key_becomes_its_prefix_and_digest_stable_distinct_and_within_the_limit() -> None:
    long_a, long_b = "a" * 3000, "a" * 2999 + "b"

    key_a, key_b = bounded_key(long_a, 2048), bounded_key(long_b, 2048)

    assert key_a == bounded_key(long_a, 2048) and key_a != key_b
    assert len(key_a.encode()) <= 2048 and key_a.startswith("a" * 100) and DIGEST_MARK in key_a
    # A digest form is its own bounded form: a value read back and looked up again finds the same item.
    assert bounded_key(key_a, 2048) == key_a


def test_a_multibyte_key_is_cut_on_a_character_boundary() -> None:
    key = bounded_key("€" * 1000, 1024)
    assert len(key.encode()) <= 1024
    assert key.encode().decode() == key


def test_texts_are_cut_with_a_visible_mark() -> None:
    assert bounded_text("short", 100) == "short"
    cut = bounded_text("ü" * 100, 51)
    assert cut.endswith(TRUNCATED_MARK) and len(cut.encode()) <= 51


def test_lone_surrogates_from_undecodable_bytes_are_replaced() -> None:
    raw = b"Caf\xe9 r\xe9union".decode("ascii", errors="surrogateescape")
    assert valid_utf8(raw) == "Caf\ufffd r\ufffdunion"
    assert bounded_text(raw, 100).encode()
    assert bounded_key(raw, 100).encode()


def test_model_keys_and_indexed_values_are_bounded_when_written_and_looked_up() -> None:
    long_id = "x" * 2093 + "@example.org"

    assert len(MessageLink.pk.serialize(MessageLink.key(long_id)).encode()) <= 1024
    assert len(PersonItem.pk.serialize(PersonItem.key("a" * 3000 + "@example.org")).encode()) <= 1024
    assert len(Replica.sk.serialize(Replica.sort_key("9" * 3000)).encode()) <= 1024
    assert Replica.message_id.serialize(long_id) == ReplicasByMessageId.message_id.serialize(long_id)
    assert MessageLink.pk.serialize(MessageLink.key("short@example.org")) == "msgid#short@example.org"
