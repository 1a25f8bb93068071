"""contract.handled: a status marker says a value was acted on when it is the value's digest;
an exact copy kept by an operator before digests counts only for a value that fit whole and
only when the copy is not digest-shaped."""

from __future__ import annotations

from tidings.contract import LEGACY_MAX, digest, handled


def test_the_digest_marks_a_value_of_any_length() -> None:
    for value in ("r1", "x" * 5000):
        assert handled(value, digest(value))
        assert not handled(value + "y", digest(value))


def test_an_exact_pre_digest_copy_still_counts_after_an_upgrade() -> None:
    value = "a" * LEGACY_MAX
    assert handled(value, value)


def test_a_value_cut_by_an_old_operator_is_acted_on_once_more_not_never() -> None:
    value = "a" * (LEGACY_MAX + 1)
    assert not handled(value, value[:LEGACY_MAX])


def test_a_new_value_whose_text_is_the_stored_digest_is_new() -> None:
    stored = digest("r1")
    assert not handled(stored, stored)
