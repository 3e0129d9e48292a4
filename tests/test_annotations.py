import json

import pytest

from tpslab import AnnotationError
from tpslab.annotations import frame_number, read_frame
from tpslab.vocab import Vocab


def write(tmp_path, content, name="img_00007.json"):
    f = tmp_path / name
    f.write_text(content if isinstance(content, str) else json.dumps(content))
    return f


RAW = {"humans": [{"number": 1, "box": [10, 20, 110, 220], "extra": "kept?", "parts": [
    {"name": "left_hand", "box": [12, 30, 20, 40.5], "verb": "hold", "obj_class": "dumbbell",
     "obj_bbox": [5, 25, 30, 45]},
    {"name": "head", "box": [40, 20, 60, 45], "verb": "none", "obj_class": None},
    {"name": "right_hand", "box": [90, 30, 100, 40], "verb": "grab", "obj_class": ""},
    {"name": "left_foot", "box": [20, 200, 35, 215], "verb": "step_on"},
    {"name": "right_foot", "box": [80, 200, 95, 215], "verb": "step_on", "obj_class": "none",
     "obj_bbox": [0, 210, 120, 219]},
]}]}


def test_frame_number():
    assert frame_number("img_00001.json") == 1
    assert frame_number("/a/b/img_12345.json") == 12345
    with pytest.raises(ValueError):
        frame_number("frame_1.json")


def test_raw_list_form(tmp_path):
    fr = read_frame(write(tmp_path, RAW))
    assert fr.frame == 7 and fr.problems == []
    (h,) = fr.humans
    assert h.box == (10, 20, 110, 220)
    by = {p.name: p for p in h.parts}
    assert by["left_hand"].object == "dumbbell" and by["left_hand"].object_box == (5, 25, 30, 45)
    assert by["left_hand"].box == (12, 30, 20, 40.5)
    # null, "" and a missing key all mean "no object"
    assert by["head"].object is None and by["right_hand"].object is None and by["left_foot"].object is None
    # the label "none" is an object outside the vocabulary, with its box
    assert by["right_foot"].object == "none" and by["right_foot"].object_box == (0, 210, 120, 219)
    assert [p.name for p in h.parts] == ["left_hand", "head", "right_hand", "left_foot", "right_foot"]


def test_dict_form_equals_list_form(tmp_path):
    parts = {p["name"]: {k: v for k, v in p.items() if k != "name"} for p in RAW["humans"][0]["parts"]}
    d = {"humans": [{"box": RAW["humans"][0]["box"], "parts": parts}]}
    a = read_frame(write(tmp_path, RAW, "img_00001.json"))
    b = read_frame(write(tmp_path, d, "img_00002.json"))
    assert a.humans == b.humans


def test_empty_frame_and_partless_human(tmp_path):
    assert read_frame(write(tmp_path, {"humans": []})).humans == []
    fr = read_frame(write(tmp_path, {"humans": [{"box": [0, 0, 5, 5], "parts": []}, {"box": [1, 1, 2, 2]}]}))
    assert [len(h.parts) for h in fr.humans] == [0, 0]


BAD = [
    ("{not json", "", "malformed JSON"),
    ('{"people": []}', "humans", "'humans' list"),
    ('{"humans": {}}', "humans", "expected a list"),
    ({"humans": [{"box": [0, 0, 5]}]}, "humans[0].box", "4 numbers"),
    ({"humans": [{"box": [0, 0, 5, "6"]}]}, "humans[0].box", "4 numbers"),
    ({"humans": [{"box": [0, 0, True, 6]}]}, "humans[0].box", "4 numbers"),
    ({"humans": [{"box": [9, 0, 5, 6]}]}, "humans[0].box", "x1 <= x2"),
    ({"humans": [{"box": [0, 0, 9, 9], "parts": [{"name": "hed", "box": [0, 0, 1, 1], "verb": "none"}]}]},
     "humans[0].parts[0].name", "unknown part 'hed'"),
    ({"humans": [{"box": [0, 0, 9, 9], "parts": [{"name": "head", "box": [0, 0, 1, 1], "verb": "bnd"}]}]},
     "humans[0].parts[0].verb", "did you mean"),
    ({"humans": [{"box": [0, 0, 9, 9], "parts": [{"name": "head", "box": [0, 0, 1, 1], "verb": "none",
                                                 "obj_class": "dumbel", "obj_bbox": [0, 0, 1, 1]}]}]},
     "humans[0].parts[0].obj_class", "unknown object 'dumbel'"),
    ({"humans": [{"box": [0, 0, 9, 9], "parts": [{"name": "head", "box": [0, 0, 1, 1], "verb": "none",
                                                 "obj_class": "ball"}]}]},
     "humans[0].parts[0].obj_bbox", "4 numbers"),
    ({"humans": [{"box": [0, 0, 9, 9], "parts": [{"name": "head", "box": [0, 0, 1, 1], "verb": "none"},
                                                {"name": "head", "box": [0, 0, 2, 2], "verb": "nod"}]}]},
     "humans[0].parts[1].name", "duplicate part 'head'"),
    ({"humans": [{"box": [0, 0, 9, 9], "parts": "head"}]}, "humans[0].parts", "expected a list"),
]


@pytest.mark.parametrize("content,fld,msg", BAD)
def test_strict_errors_name_file_field_and_expectation(tmp_path, content, fld, msg):
    f = write(tmp_path, content)
    with pytest.raises(AnnotationError) as e:
        read_frame(f)
    assert e.value.path == str(f) and e.value.field == fld
    assert msg in str(e.value) and str(f) in str(e.value)


@pytest.mark.parametrize("content,fld,msg", BAD)
def test_lenient_collects_the_same_problem(tmp_path, content, fld, msg):
    fr = read_frame(write(tmp_path, content), strict=False)
    assert [(p.field, msg in p.message) for p in fr.problems] == [(fld, True)]


def test_lenient_keeps_the_good_parts_and_unknown_names(tmp_path):
    content = {"humans": [
        {"box": [0, 0, 9, 9], "parts": [{"name": "head", "box": [0, 0, 1], "verb": "none"},
                                        {"name": "hip", "box": [0, 0, 1, 1], "verb": "wobble"}]},
        {"box": "bad"},
        {"box": [1, 1, 5, 5], "parts": {"left_leg": {"box": [1, 1, 2, 2], "verb": "bend"}}},
    ]}
    fr = read_frame(write(tmp_path, content), strict=False)
    assert [p.field for p in fr.problems] == ["humans[0].parts[0].box", "humans[0].parts[1].verb", "humans[1].box"]
    assert [[p.name for p in h.parts] for h in fr.humans] == [["hip"], ["left_leg"]]
    assert fr.humans[0].parts[0].state == "wobble"  # kept and reported


def test_custom_vocabulary(tmp_path):
    from tpslab.vocab import Vocabulary
    v = Vocab.default()
    v = Vocab(v.actions, v.parts, Vocabulary("part state", list(v.states) + ["wobble"]), v.objects)
    content = {"humans": [{"box": [0, 0, 9, 9], "parts": [{"name": "hip", "box": [0, 0, 1, 1], "verb": "wobble"}]}]}
    assert read_frame(write(tmp_path, content), v).humans[0].parts[0].state == "wobble"


def test_unreadable_file(tmp_path):
    with pytest.raises(AnnotationError, match="cannot read"):
        read_frame(tmp_path / "img_00001.json")
