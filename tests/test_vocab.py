import pytest

from tpslab.vocab import (ACTIONS, OBJECTS, PARTS, STATES, UnknownNameError, Vocab, Vocabulary,
                          mirror_part, mirror_permutation, part_groups, read_list_file)


def test_default_sizes_match_the_known_names():
    v = Vocab.default()
    assert (len(v.actions), len(v.parts), len(v.states), len(v.objects)) == (24, 10, 66, 69)
    assert v.states.names[:2] == ("none", "others")
    assert "none" in v.objects


def test_name_id_round_trip():
    v = Vocab.default().states
    for i, name in enumerate(STATES):
        assert v.id(name) == i and v.name(i) == name
    assert v.ids(["bend", "none"]).tolist() == [STATES.index("bend"), 0]
    with pytest.raises(IndexError):
        v.name(len(STATES))


def test_unknown_name_suggests_the_nearest():
    with pytest.raises(UnknownNameError) as e:
        Vocab.default().states.id("bnd")
    assert "bend" in e.value.suggestions
    assert "unknown part state 'bnd'" in str(e.value) and "did you mean" in str(e.value)
    assert isinstance(e.value, KeyError)


def test_duplicate_names_are_refused():
    with pytest.raises(ValueError, match="repeats"):
        Vocabulary("part", ["head", "head"])


@pytest.mark.parametrize("text", ["head\nhip\n", "1 head\n2 hip\n", "head,1\nhip,2\n", "\ufeffhead\n\n# c\nhip"])
def test_list_file_forms(tmp_path, text):
    f = tmp_path / "body_part.txt"
    f.write_text(text, encoding="utf-8")
    assert read_list_file(f) == ["head", "hip"]


def test_list_file_with_two_names_on_a_line_is_an_error(tmp_path):
    f = tmp_path / "object.txt"
    f.write_text("ball bat\n")
    with pytest.raises(ValueError, match=r"object.txt: line 1: expected one name"):
        read_list_file(f)


def test_from_root_reads_list_files_and_falls_back(tmp_path):
    (tmp_path / "list").mkdir()
    (tmp_path / "list" / "part_stat.txt").write_text("none\nbend\nnew_state\n")
    (tmp_path / "train_videos" / "lunge").mkdir(parents=True)
    v = Vocab.from_root(tmp_path)
    assert v.states.names == ("none", "bend", "new_state")
    assert v.parts.names == PARTS and v.objects.names == OBJECTS
    assert v.actions.names == ("lunge",)
    assert Vocab.from_root(tmp_path / "missing").actions.names == ACTIONS


def test_write_lists_round_trip(tmp_path):
    Vocab.default().write_lists(tmp_path)
    v = Vocab.from_root(tmp_path)
    assert (v.parts, v.states, v.objects) == (Vocab.default().parts, Vocab.default().states, Vocab.default().objects)


def test_mirror_and_groups():
    assert mirror_part("left_hand") == "right_hand" and mirror_part("right_foot") == "left_foot"
    assert mirror_part("head") == "head"
    groups = part_groups(PARTS)
    assert groups["hand"] == ["left_hand", "right_hand"] and groups["head"] == ["head"]
    assert len(groups) == 6
    assert mirror_permutation(["head", "left_hand", "right_hand"]) == [0, 2, 1]
    with pytest.raises(ValueError, match="cannot mirror \\['left_foot'\\]"):
        mirror_permutation(["head", "left_hand", "right_hand", "left_foot"])  # no right foot: a flip mislabels it


def test_codes_of_a_column():
    import pandas as pd

    v = Vocab.default().states
    plain = pd.Series(["bend", None, "none"], dtype=object)
    assert v.codes(plain).tolist() == [v.id("bend"), -1, 0]
    assert v.codes(plain.astype("category")).tolist() == [v.id("bend"), -1, 0]
    assert v.codes(["hold"]).tolist() == [v.id("hold")]
    with pytest.raises(ValueError, match=r"part state names not in the vocabulary: \['bnd'\]"):
        v.codes(["bnd", "none"])


def test_name_codes_marks_unknown_values():
    from tpslab.vocab import name_codes

    assert name_codes(["b", "z", None, "a"], ["a", "b"]).tolist() == [1, -1, -1, 0]
    assert name_codes(["z"], ["a"], unknown=-2).tolist() == [-2]


def test_vocabularies_hash_as_they_compare():
    a, b = Vocab.default(), Vocab.default()
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert {a.states: 1}[b.states] == 1
