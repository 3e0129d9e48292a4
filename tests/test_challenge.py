"""The challenge's conventions in one place: frame keys, the scored stride, limits, JSON, boxes, and the one
reader of the part files (dicts walked, JSON text decoded), which must agree."""

from __future__ import annotations

import json

import numpy as np
import orjson
import pytest

from tps_cases import random_case
from tpslab import challenge
from tpslab.challenge import (BAD_PARTS, MISSING, NO_PARTS, PART_NULL, PART_OBJECT, PartColumns, ScoringError,
                              box_problem, decode_part_file, file_frame_number, frame_key, frame_number, is_scored,
                              load_json, loads_json, part_columns, parts_dict, walk_part_file)

F1, F6 = "img_00001.json", "img_00006.json"


def test_frame_keys_and_numbers():
    assert frame_key(1) == F1 and frame_key(12345) == "img_12345.json" and frame_key(123456) == "img_123456.json"
    assert frame_number(F6) == 6 and frame_number("img_123456.json") == 123456
    for bad in ("img_6.json", "a/img_00006.json", "img_00006.jpg", "frame1", 6):
        with pytest.raises(ValueError, match="img_00001.json"):
            frame_number(bad)
    # Release file names: any number of digits, also as paths.
    assert file_frame_number("img_6.json") == 6 and file_frame_number("/a/b/img_00042.json") == 42
    with pytest.raises(ValueError, match="annotation file name"):
        file_frame_number("frame_1.json")


def test_frame_one_is_index_zero_and_errors_name_the_first_bad_value():
    assert challenge.frame_stem(7) == "img_00007" and challenge.FRAME_NAME.match("img_7.png").group(1) == "7"
    assert challenge.frame_number_to_index(1) == 0 and challenge.index_to_frame_number(0) == 1
    assert challenge.frame_number_to_index(np.arange(1, 4)).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match=r"start at 1 \(img_00001\), got 0$"):
        challenge.frame_number_to_index(np.array([3, 0, -2] + [5] * 10000))  # not the whole array
    with pytest.raises(ValueError, match="start at 0, got -1$"):
        challenge.index_to_frame_number(-1)
    with pytest.raises(ValueError, match="got 1.5$"):
        challenge.frame_number_to_index(1.5)


def test_the_scored_stride():
    assert challenge.SCORED_STRIDE == 5
    assert [n for n in range(1, 17) if is_scored(n)] == [1, 6, 11, 16]
    assert is_scored(np.array([1, 2, 6])).tolist() == [True, False, True]
    assert isinstance(is_scored(6), bool)


def test_the_old_names_are_the_same_conventions():
    from tpslab import annotations, sampling, submission
    from tpslab.metrics import official

    assert annotations.frame_number is file_frame_number and annotations.frame_key is frame_key
    assert submission.frame_number is frame_number and submission.frame_key is frame_key
    assert sampling.is_scored is is_scored and submission.is_scored is is_scored
    assert sampling.SCORED_STRIDE == challenge.SCORED_STRIDE
    assert (official.HUMAN_LIMIT, official.PROPOSAL_LIMIT) == (challenge.MAX_HUMANS, challenge.MAX_PROPOSALS) == (10, 5)
    assert official.MODES == challenge.MODES == ("list", "single")
    assert official.PAIRINGS == challenge.PAIRINGS and official.ScoringError is ScoringError
    assert submission.PRED_PART == challenge.PRED_PART == "pred_part_result.json"
    from tpslab import video

    assert video.frame_number_to_index is challenge.frame_number_to_index
    assert video.index_to_frame_number is challenge.index_to_frame_number and video.FRAME_TEMPLATE == challenge.FRAME_STEM


def test_modes_are_checked():
    assert challenge.check_mode("single") == "single"
    with pytest.raises(ValueError, match="mode must be one of"):
        challenge.check_mode("multi")


def test_json_loading(tmp_path):
    assert loads_json(b'{"a": 1}') == {"a": 1}
    with pytest.raises(ScoringError, match="x is not valid JSON"):
        loads_json(b"{", "x")
    with pytest.raises(ScoringError, match=r"x: expected a JSON object \{...\}, got a list"):
        loads_json(b"[1]", "x")
    path = tmp_path / "f.json"
    path.write_text('{"b": 2}')
    assert load_json(path) == {"b": 2} and load_json(str(path)) == {"b": 2}
    d = {"c": 3}
    assert load_json(d) is d
    with pytest.raises(ScoringError, match="cannot read x from"):
        load_json(tmp_path / "missing.json", "x")
    with pytest.raises(ScoringError, match="got null"):
        load_json(None, "x")
    with pytest.raises(TypeError):
        load_json(object(), "x")
    # what the parser's own words would get wrong: "str is not valid UTF-8", "input data is empty"
    for data in ('{"a": 1}'.encode("utf-16"), '{"a": 1}'.encode("utf-16-le"), '{"a": 1}'.encode("utf-16-be")):
        with pytest.raises(ScoringError, match=r"^x is not valid JSON: it is UTF-16 text; JSON files are UTF-8 "
                           r"\(save it as UTF-8\)$"):
            loads_json(data, "x")
    with pytest.raises(ScoringError, match=r"^x is not valid JSON: it holds only white space \(3 bytes\)$"):
        loads_json(b" \n ", "x")
    with pytest.raises(ScoringError, match=r"^x is not valid JSON: it is empty \(0 bytes\)$"):
        loads_json(b"", "x")


def test_box_checks():
    assert box_problem([0, 1, 2.5, 3]) is None and box_problem((0, 1, 2, 3)) is None
    assert "4 numbers, got 3" in box_problem([0, 1, 2])
    assert "got NoneType" in box_problem(None)
    for bad in ([0, 1, 2, True], [0, 1, 2, False], [0, 1, 2, "3"], [0, 1, 2, float("nan")], [0, 1, 2, 10 ** 400]):
        assert "4 finite numbers" in box_problem(bad), bad
    assert challenge.box_problems([[0, 0, 1, 1], [0, 0, True, 1], None]) == [
        (1, "expected 4 finite numbers, got [0, 0, True, 1]"), (2, "expected a box [x1, y1, x2, y2], got NoneType")]


def test_both_forms_of_parts():
    listed = [{"name": "head", "verb": "a"}, {"name": "hip", "verb": "b"}, {"name": "head", "verb": "c"}]
    # A repeated name keeps its first place and its last value, as a JSON object would.
    assert list(parts_dict(listed, "f", "w").items()) == [("head", listed[2]), ("hip", listed[1])]
    d = {"head": {}}
    assert parts_dict(d, "f", "w") is d
    with pytest.raises(ScoringError) as e:
        parts_dict([{"name": "head"}, {"name": 3}], "f", "v/img/humans[0]")
    assert [(p.field, p.message) for p in e.value.problems] == [
        ("v/img/humans[0].parts[1]", "expected an object with a 'name' string")]
    with pytest.raises(ScoringError, match="expected an object or a list, got a number"):
        parts_dict(3, "f", "w")


def _sample():
    return {"v": {F1: {"humans": [
        {"box": [0, 0, 9, 9], "parts": {"head": {"box": [[0, 0, 4, 4], [1, 1, 4, 4]], "verb": ["none", "nod"]},
                                        "hip": {"box": [[0, 0, 5, 5]], "verb": ["bend"]}}},
        {"box": [10, 10, 19, 19], "parts": [{"name": "left_hand", "box": [[10, 10, 12, 12]], "verb": ["hold"]}]}]},
        F6: {"humans": []}},
        "w": {}}


def test_walking_a_part_file_keeps_every_place():
    cols = walk_part_file(_sample(), "pred_part_result.json")
    assert cols.videos == ["v", "w"] and cols.video_frames.tolist() == [2, 0]
    assert cols.frame_key == [F1, F6] and cols.frame_humans.tolist() == [2, 0]
    assert cols.human_parts.tolist() == [2, 1] and cols.part_name == ["head", "hip", "left_hand"]
    assert cols.part_verb_values([0]) == [["none", "nod"]] and cols.part_box_values([2]) == [[[10, 10, 12, 12]]]
    assert cols.where_part(2) == "v/img_00001.json/humans[1].parts.left_hand"
    assert cols.where_human(1) == "v/img_00001.json/humans[1]" and cols.where_frame(1) == "v/img_00006.json"
    assert cols.parts_of(np.array([1])).tolist() == [2] and cols.humans_of(np.array([0, 1])).tolist() == [0, 1]


def test_walking_marks_what_is_malformed_without_raising():
    bad = {"v": {F1: {"humans": [{"box": [0, 0, 1, 1]}, "x", {"parts": [{"verb": "a"}]},
                                 {"box": 1, "parts": {"head": None, "hip": [1], "arm": {"box": 1}}}]},
                 F6: {"people": []}},
           "w": [1, 2]}
    cols = walk_part_file(bad, "pred_part_result.json")
    assert cols.video_frames.tolist() == [2, -1] and cols.frame_humans.tolist() == [4, -1]
    assert cols.human_is_object.tolist() == [True, False, True, True]
    assert cols.human_box_values([0, 1, 2, 3]) == [[0, 0, 1, 1], MISSING, MISSING, 1]
    assert cols.human_parts.tolist() == [NO_PARTS, NO_PARTS, BAD_PARTS, 3]
    assert cols.parts_problems == {2: (".parts[0]", "expected an object with a 'name' string")}
    assert cols.part_kind.tolist() == [PART_NULL, challenge.PART_OTHER, PART_OBJECT]
    assert cols.part_verb_values([0, 1, 2]) == [MISSING, MISSING, MISSING]
    assert cols.part_box_values([0, 1, 2]) == [MISSING, MISSING, 1]


@pytest.mark.parametrize("form", ["list", "single"])
def test_decoding_json_text_gives_the_walkers_columns(form):
    rng = np.random.default_rng(3)
    for _ in range(30):
        c = random_case(rng, n_videos=3, mode=form)
        for obj, file_form in ((c[3], form), (c[1], "single")):
            blob = orjson.dumps(obj)
            walked = walk_part_file(orjson.loads(blob), "f.json")
            decoded = decode_part_file(blob, "f.json", file_form)
            assert decoded is not None and decoded.form == file_form
            for name in ("videos", "frame_key", "part_name"):
                assert getattr(decoded, name) == getattr(walked, name)
            for name in ("video_frames", "frame_humans", "human_parts", "part_kind"):
                assert getattr(decoded, name).tolist() == getattr(walked, name).tolist()
            everything = np.arange(len(walked.part_name))
            assert decoded.part_verb_values(everything) == walked.part_verb_values(everything)
            as_floats = json.loads(json.dumps(walked.part_box_values(everything)), parse_int=float)
            assert decoded.part_box_values(everything) == as_floats
            humans = np.arange(len(walked.human_parts))
            assert decoded.human_box_values(humans) == json.loads(json.dumps(walked.human_box_values(humans)),
                                                                  parse_int=float)


def test_text_not_in_the_strict_form_is_walked(tmp_path):
    good = {"v": {F1: {"humans": [{"box": [0, 0, 9, 9], "parts": {"head": {"box": [0, 0, 4, 4], "verb": "none"}}}]}}}
    assert decode_part_file(orjson.dumps(good), "f", "single") is not None
    assert decode_part_file(orjson.dumps(good), "f", "list") is None  # the other form
    for change in ({"box": [0, 0, 9, True]}, {"box": [0, 0, 9]}, {"parts": None}, {"number": 1, "box": "x"}):
        human = dict(good["v"][F1]["humans"][0], **change)
        assert decode_part_file(orjson.dumps({"v": {F1: {"humans": [human]}}}), "f", "single") is None
    assert decode_part_file(b'{"v": {"img_00001.json": {"humans": [{"box": [0, 0, 9, 1e999], "parts": {}}]}}}',
                            "f", "single") is None
    assert decode_part_file(b"[1, 2]", "f", "single") is None
    # part_columns falls back to the walker, and says what is wrong with the whole file.
    path = tmp_path / "p.json"
    path.write_bytes(orjson.dumps({"v": {F1: {"humans": [{"box": [0, 0, 9, True], "parts": {}}]}}}))
    cols = part_columns(path, "pred_part_result", "list")
    assert cols.form is None and cols.human_box_values([0]) == [[0, 0, 9, True]]
    assert cols.file == str(path)  # what the problems inside it name
    path.write_text("[]")
    with pytest.raises(ScoringError, match=r"pred_part_result \(.*p.json\): expected a JSON object"):
        part_columns(path, "pred_part_result")
    with pytest.raises(ScoringError, match="zip:pred: expected a JSON object"):
        part_columns(b"[]", "pred_part_result", label="zip:pred")
    cols = part_columns(good, "gt_part_result")
    assert isinstance(cols, PartColumns) and part_columns(cols, "x") is cols


@pytest.mark.parametrize("form", ["list", "single"])
def test_verbs_of_the_vocabulary_are_shared_strings_and_others_still_decode(form):
    from tpslab.vocab import STATES

    def part(verb):
        return {"box": [[0, 0, 4, 4]] if form == "list" else [0, 0, 4, 4], "verb": [verb] if form == "list" else verb}

    def decoded(*verbs):
        parts = {name: part(v) for name, v in zip(("head", "hip"), verbs)}
        cols = decode_part_file(orjson.dumps({"v": {F1: {"humans": [{"box": [0, 0, 9, 9], "parts": parts}]}}}),
                                "f.json", form)
        assert cols is not None and cols.form == form
        return cols.part_verb_values(np.arange(len(verbs)))

    got = decoded("bend", "step_on")
    assert got == ([["bend"], ["step_on"]] if form == "list" else ["bend", "step_on"])
    flat = [v[0] for v in got] if form == "list" else got
    assert flat[0] is STATES[STATES.index("bend")] and flat[1] is STATES[STATES.index("step_on")]
    # A verb outside the vocabulary (the validator warns; it never scores): decoded as it is.
    assert decoded("bend", "Bend ") == ([["bend"], ["Bend "]] if form == "list" else ["bend", "Bend "])


def test_repeated_keys_are_found_where_json_readers_keep_the_last():
    """json.load, the public scorers and tpslab keep the last of two equal keys: the first is dropped
    without a word (a writer that emitted a video twice, a frame written again on a resumed run)."""
    frame = {"humans": [{"box": [0, 0, 9, 9], "parts": {"head": {"box": [0, 0, 4, 4], "verb": "nod"}}}]}
    clean = json.dumps({"v1": {"img_00001.json": frame, "img_00006.json": frame}, "v2": {}}, indent=2).encode()
    assert challenge.repeated_keys(clean, 2) == []
    frame_twice = clean.replace(b'"img_00006.json"', b'"img_00001.json"')
    assert challenge.repeated_keys(frame_twice, 2) == ["v1/img_00001.json"]
    video_twice = clean.replace(b'"v2"', b'"v1"')
    assert challenge.repeated_keys(video_twice, 2) == ["v1"]
    assert challenge.repeated_keys(b'{"v": "lunge", "w": "lunge", "v": "push_up"}', 1) == ["v"]
    assert challenge.repeated_keys(b'{"v": {}, "v": {}}', 2) == ["v"]  # nothing but the key is lost
    # keys and names holding colons, quotes or escapes are not mistaken for repeats, nor repeats missed
    odd = b'{"a:b": {"f:1": {"x": ":"}}, "c\\"d": {"f": {}}, "\\u0061": {}}'
    assert challenge.repeated_keys(odd, 2) == []
    assert challenge.repeated_keys(b'{"a": {}, "\\u0061": {}}', 2) == ["a"]  # the same name, spelt two ways
    # an escaped colon in a name cannot cancel a repeat out; escapes elsewhere keep the count
    assert challenge.repeated_keys(b'{"a\\u003ab": {}, "c": {"f": 1, "f": 2}}', 2) == ["c/f"]
    assert challenge.repeated_keys(b'{"a": {"f": "x\\"y"}, "b": {"f": 1, "f": 2}}', 2) == ["b/f"]
    assert challenge.repeated_keys(b'{"a": {"f": "x\\"y"}, "b": {"f": 1}}', 2) == []
    # deeper levels and text that is not objects to that depth are not its business
    assert challenge.repeated_keys(b'{"v": {"f": {"humans": [], "humans": []}}}', 2) == []
    assert challenge.repeated_keys(b'{"v": [1, 2]}', 2) is None and challenge.repeated_keys(b"not json", 1) is None


def test_frame_numbers_read_each_key_and_mark_other_shapes():
    from tpslab.challenge import frame_numbers

    keys = ["img_00011.json", "img_6.json", "img_00001.json", "img_00011.json", "x/img_00001.json", "img_00000.json"]
    assert frame_numbers(keys).tolist() == [11, 0, 1, 11, 0, 0]
    assert frame_numbers(keys, other=-1).tolist() == [11, -1, 1, 11, -1, 0]
    assert frame_numbers([]).dtype == np.int64 and len(frame_numbers([])) == 0


@pytest.mark.parametrize("empty", ["[]", "[ ]", "[\n\t]"])
def test_msgspec_reads_an_empty_proposal_list_whatever_its_white_space(empty, monkeypatch):
    """An empty list of proposal boxes with white space inside is still the strict form (the msgspec reader
    handed such a file to the walker before)."""
    from tpslab import challenge

    monkeypatch.setattr(challenge, "compiled_reader", lambda: None)
    text = ('{"v": {"%s": {"humans": [{"box": [0, 0, 9, 9], "parts": {"head": {"box": %s, "verb": []}, '
            '"hip": {"box": [[1, 2, 3, 4]], "verb": ["bend"]}}}]}}}' % (F1, empty)).encode()
    cols = challenge.decode_part_file(text, "f.json", "list")
    assert cols is not None and cols.part_nbox.tolist() == [0, 1]
    assert cols.proposal_box_array.tolist() == [[1, 2, 3, 4]]
