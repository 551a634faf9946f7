"""Sizes in bytes: "512M"-style settings and human-readable byte counts (pure)."""

from __future__ import annotations

import math

import pytest

from jupyter_forgather_tb.common.sizes import MAX_SIZE, format_size, parse_size

KiB, MiB, GiB, TiB = 1 << 10, 1 << 20, 1 << 30, 1 << 40


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (512 * MiB, 512 * MiB),
        ("512M", 512 * MiB),
        ("1.5G", GiB + GiB // 2),
        ("2g", 2 * GiB),
        ("1024K", MiB),
        ("3T", 3 * TiB),
        ("100", 100),
        ("0", 0),
        (" 512 M ", 512 * MiB),
        ("\t2G\n", 2 * GiB),
        ("512MiB", 512 * MiB),
        ("512 mib", 512 * MiB),
        ("64MB", 64 * MiB),
        ("100B", 100),
        (".5K", 512),
        ("1.", 1),
        ("0.3K", 307),  # fractions of a byte are dropped
        (1.5e9, 1_500_000_000),
        ("1024T", MAX_SIZE),
    ],
)
def test_sizes_are_read_in_binary_multiples(value, expected):
    assert parse_size(value) == expected


def test_a_formatted_size_reads_back_as_the_same_size():
    for size in (0, 100, KiB, 512 * MiB, 3 * GiB, 2 * TiB):
        assert parse_size(format_size(size)) == size


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (-1, "negative"),
        ("-1", "negative"),
        (" -5M", "negative"),
        ("12X", "suffix"),
        ("5P", "suffix"),
        ("M", "suffix"),
        ("", "suffix"),
        ("1e3M", "suffix"),
        ("1,5G", "suffix"),
        ("0x10", "suffix"),
        ("nan", "suffix"),
        ("inf", "suffix"),
        ("\uff11\uff12M", "suffix"),  # full-width digits
        (math.nan, "finite"),
        (math.inf, "finite"),
        (-math.inf, "finite"),
        (True, "not bool"),
        (None, "not NoneType"),
        ([512], "not list"),
        ("1025T", "larger than 1 PiB"),
        (MAX_SIZE + 1, "larger than 1 PiB"),
        ("9" * 400, "larger than 1 PiB"),
    ],
)
def test_bad_sizes_are_refused_with_a_clear_message(value, words):
    with pytest.raises(ValueError) as error:
        parse_size(value)
    assert words in str(error.value)


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (1023, "1023 B"),
        (KiB, "1 KiB"),
        (1536, "1.5 KiB"),
        (512 * MiB, "512 MiB"),
        (530 * MiB + 400 * KiB, "530 MiB"),  # one decimal only below 100
        (99 * MiB + 512 * KiB, "99.5 MiB"),
        (GiB + GiB // 2, "1.5 GiB"),
        (GiB - 1, "1 GiB"),  # not "1024 MiB"
        (3 * TiB, "3 TiB"),
        (MAX_SIZE, "1 PiB"),
    ],
)
def test_sizes_are_formatted_in_binary_units(size, text):
    assert format_size(size) == text


@pytest.mark.parametrize("size", [-1, 1.5, "512", True])
def test_formatting_refuses_what_is_not_a_byte_count(size):
    with pytest.raises(ValueError):
        format_size(size)
