import pytest

from mail2ticket.config.sizes import parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10M", 10 * 1024**2),
        ("500K", 500 * 1024),
        ("3G", 3 * 1024**3),
        ("2048", 2048),
        (" 10m ", 10 * 1024**2),
    ],
)
def test_sizes_are_read_in_binary_multiples(text: str, expected: int) -> None:
    assert parse_size(text) == expected


# Whole numbers with K, M or G only, as iTop writes them: "20MB" would leave MB or MiB to guess.
@pytest.mark.parametrize("text", ["", "M", "10X", "-1M", "ten", "1.5m", "20MB"])
def test_a_bad_size_is_rejected_with_its_text(text: str) -> None:
    with pytest.raises(ValueError, match="invalid size"):
        parse_size(text)
