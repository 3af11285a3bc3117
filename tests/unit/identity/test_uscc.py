"""The unified social credit code check (GB 32100-2015), against codes from public registers and
an independent implementation of the check character."""

from __future__ import annotations

import pytest

from idp.identity.uscc import check_character, is_valid_uscc

# Published codes (the GB 32100 example and well-known companies) and the test fixtures' codes.
VALID = [
    "91350100M000100Y43",
    "91110000100006485K",
    "91330100799655058B",
    "9144030071526726XG",
    "91110108551385082Q",
    "91310000MA1K000019",
    "91310115MA1H7GXX3K",
]
CHARSET = "0123456789ABCDEFGHJKLMNPQRTUWXY"  # 31 characters: no I, O, Z, S, V


def reference_check(first17: str) -> str:
    """GB 32100 written out independently: weight of position i is 3^i mod 31."""
    total = sum(CHARSET.index(c) * pow(3, i, 31) for i, c in enumerate(first17))
    return CHARSET[(31 - total % 31) % 31]


@pytest.mark.parametrize("code", VALID)
def test_published_codes_are_valid(code):
    assert is_valid_uscc(code)
    assert check_character(code[:17]) == reference_check(code[:17]) == code[17]


@pytest.mark.parametrize("code", VALID)
def test_every_other_check_character_is_refused(code):
    for wrong in CHARSET.replace(code[17], ""):
        assert not is_valid_uscc(code[:17] + wrong)


@pytest.mark.parametrize("code", VALID)
def test_a_changed_character_is_detected(code):
    changed = code[:8] + ("1" if code[8] != "1" else "2") + code[9:]
    assert not is_valid_uscc(changed)


@pytest.mark.parametrize("code", ["91310000ma1k000019", "91310115ma1h7gxx3k", "9144030071526726xg"])
def test_lowercase_is_refused(code):
    # Callers normalise (idp.orgs.registration.add_org upper-cases); the check itself is exact.
    assert not is_valid_uscc(code)
    assert is_valid_uscc(code.upper())


@pytest.mark.parametrize(
    "code",
    ["", "91310000MA1K00001", "91310000MA1K0000190", "9131000MA1K000019", "91310000MA1K000019 "],
)
def test_wrong_length_is_refused(code):
    assert not is_valid_uscc(code)


@pytest.mark.parametrize("letter", ["I", "O", "Z", "S", "V"])
def test_letters_outside_the_charset_are_refused(letter):
    body = "91310000MA1K" + letter + "0001"
    # Even with the check character the formula would give if the letter were allowed.
    for check in CHARSET:
        assert not is_valid_uscc(body + check)
    assert not is_valid_uscc("91310000MA1K00001" + letter)


@pytest.mark.parametrize("code", ["９１３１００００ＭＡ１Ｋ００００１９", "91310000MA1K00001９"])
def test_full_width_characters_are_refused(code):
    assert not is_valid_uscc(code)
