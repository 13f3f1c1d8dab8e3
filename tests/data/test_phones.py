import pytest

from ese.data import phones as P
from ese.errors import CorpusError


def test_set_sizes():
    assert (len(P.PHONES_61), len(P.PHONES_48), len(P.PHONES_39)) == (61, 48, 39)


@pytest.mark.parametrize("phone, p48, p39", [
    ("ao", "ao", "aa"), ("ax-h", "ax", "ah"), ("axr", "er", "er"), ("hv", "hh", "hh"),
    ("ix", "ix", "ih"), ("el", "el", "l"), ("em", "m", "m"), ("en", "en", "n"), ("nx", "n", "n"),
    ("eng", "ng", "ng"), ("zh", "zh", "sh"), ("ux", "uw", "uw"), ("bcl", "vcl", "sil"),
    ("kcl", "cl", "sil"), ("h#", "sil", "sil"), ("pau", "sil", "sil"), ("epi", "epi", "sil"),
])
def test_known_foldings(phone, p48, p39):
    assert P.fold_61_to_48(phone) == p48
    assert P.fold_61_to_39(phone) == p39
    assert P.fold_48_to_39(p48) == p39


def test_glottal_stop_is_removed():
    assert P.fold_61_to_48("q") is None and P.fold_61_to_39("q") is None


def test_every_48_class_is_reached_and_folds_into_39():
    reached = {P.fold_61_to_48(p) for p in P.PHONES_61} - {None}
    assert reached == set(P.PHONES_48)
    assert {P.PHONES_39[i] for i in P.MAP_48_TO_39} == set(P.PHONES_39)
    assert P.PHONES_39[P.MAP_48_TO_39[P.INDEX_48["cl"]]] == "sil"


def test_unknown_phone_names_the_phone():
    with pytest.raises(CorpusError, match="unknown phone 'xx'"):
        P.fold_61_to_48("xx")
