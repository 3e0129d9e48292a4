import json
import os

import pandas as pd
import pytest

import tpslab
from tpslab import AnnotationError
from tpslab import index as index_mod
from tpslab.dataset import read_flist
from release import human, make_release, part, write_frame

A, B, C = "aaaaaaaaaaa_000001_000011", "bbbbbbbbbbb_000002_000012", "ccccccccccc_000003_000013"
PART_COLUMNS = ["video", "frame", "human", "human_x1", "human_y1", "human_x2", "human_y2", "part",
                "part_x1", "part_y1", "part_x2", "part_y2", "state", "object", "object_x1", "object_y1",
                "object_x2", "object_y2"]


def small_release(root, flist="header3"):
    return make_release(root, {
        ("lunge", A): {
            1: {"humans": [human([0, 0, 50, 100], [part("head", [10, 0, 20, 10], "none"),
                                                  part("left_hand", [1, 2, 3, 4.5], "hold", "dumbbell", [0, 0, 5, 5])])]},
            3: {"humans": []},
            10: {"humans": [human([0, 0, 40, 90], [part("hip", [5, 40, 30, 60], "none", "none", [1, 1, 3, 3])]),
                            human([60, 0, 90, 80], [])]},
        },
        ("push_up", B): {2: {"humans": [human([1, 1, 9, 9], {"right_foot": {"box": [2, 2, 3, 3], "verb": "step_on"}})]}},
    }, flist=flist, test_videos=[("lunge", C, 30)])


@pytest.fixture
def release(tmp_path):
    return small_release(tmp_path / "Kinetics-TPS")


def test_tables_follow_the_contract(release):
    ds = tpslab.load_dataset(release, progress=False)
    assert list(ds.videos.columns) == ["video", "label", "split", "path", "num_frames", "num_annotated_frames"]
    assert list(ds.frames.columns) == ["video", "frame", "num_humans"]
    assert list(ds.humans.columns) == ["video", "frame", "human", "x1", "y1", "x2", "y2", "num_parts"]
    assert list(ds.parts.columns) == PART_COLUMNS
    v = ds.videos.set_index("video")
    assert v.loc[A, "label"] == "lunge" and v.loc[A, "split"] == "train" and v.loc[C, "split"] == "test"
    assert v.loc[A, "num_frames"] == 12 and v.loc[C, "num_frames"] == 30
    assert v.loc[A, "num_annotated_frames"] == 3 and v.loc[C, "num_annotated_frames"] == 0
    assert v.loc[A, "path"] == str(release / "train_videos" / "lunge" / f"{A}.mp4")
    assert ds.frames[["frame", "num_humans"]].values.tolist() == [[1, 1], [3, 0], [10, 2], [2, 1]]
    assert ds.humans[["human", "num_parts"]].values.tolist() == [[0, 2], [0, 1], [1, 0], [0, 1]]
    p = ds.parts
    assert p["part"].tolist() == ["head", "left_hand", "hip", "right_foot"]
    assert p["state"].tolist() == ["none", "hold", "none", "step_on"]
    assert p["object"].isna().tolist() == [True, False, False, True]
    assert p["object"].tolist()[1:3] == ["dumbbell", "none"]  # "none" stays a label
    assert p.loc[1, ["part_x1", "part_y1", "part_x2", "part_y2"]].tolist() == [1, 2, 3, 4.5]
    assert p.loc[2, ["human_x1", "human_y1", "human_x2", "human_y2"]].tolist() == [0, 0, 40, 90]
    assert p["frame"].tolist() == [1, 1, 10, 2]


def test_selections_and_paths(release):
    ds = tpslab.load_dataset(release, progress=False)
    assert ds.frames_of(A)["frame"].tolist() == [1, 3, 10]
    assert len(ds.humans_of(A, 10)) == 2 and len(ds.parts_of(A, 1)) == 2 and len(ds.parts_of(C)) == 0
    assert ds.annotation_path(A, 10) == release / "train_annotations" / "lunge" / A / A / "img_00010.json"
    assert ds.annotation_path(A, 10).is_file()
    with pytest.raises(KeyError):
        ds.parts_of("nope")


def test_subset_keeps_types(release):
    ds = tpslab.load_dataset(release, progress=False)
    sub = ds.subset([B])
    assert sub.videos["video"].tolist() == [B] and sub.parts["part"].tolist() == ["right_foot"]
    assert sub.parts["state"].dtype == ds.parts["state"].dtype
    with pytest.raises(KeyError, match="unknown videos"):
        ds.subset(["zzz"])


def test_cache_is_reused_then_rebuilt_when_a_file_changes(release):
    ds = tpslab.load_dataset(release, progress=False)
    assert not ds.index.from_cache and ds.index.cache_path.parent == release / ".tpslab"
    again = tpslab.load_dataset(release, progress=False)
    assert again.index.from_cache
    pd.testing.assert_frame_equal(again.parts, ds.parts)
    pd.testing.assert_frame_equal(again.humans, ds.humans)
    f = release / "train_annotations" / "push_up" / B / B / "img_00002.json"
    f.write_text(json.dumps({"humans": [human([1, 1, 9, 9], {"right_foot": {"box": [2, 2, 3, 3], "verb": "tiptoe"}})]}))
    os.utime(f, ns=(f.stat().st_atime_ns, f.stat().st_mtime_ns + 10**9))
    changed = tpslab.load_dataset(release, progress=False)
    assert not changed.index.from_cache and changed.parts["state"].tolist()[-1] == "tiptoe"
    write_frame(release, "push_up", B, 7, {"humans": []})  # a new file
    added = tpslab.load_dataset(release, progress=False)
    assert not added.index.from_cache and len(added.frames) == 5
    assert len(list((release / ".tpslab").glob("index-*"))) == 1  # the superseded cache is gone


@pytest.mark.parametrize("damage", ["truncate", "flip", "manifest", "delete"])
def test_corrupt_cache_is_rebuilt_never_trusted(release, damage):
    ds = tpslab.load_dataset(release, progress=False)
    f = ds.index.cache_path / "parts.parquet"
    data = bytearray(f.read_bytes())
    if damage == "truncate":
        f.write_bytes(data[: len(data) // 2])
    elif damage == "flip":  # same size, one byte of a data page changed
        data[len(data) // 3] ^= 0xFF
        f.write_bytes(bytes(data))
    elif damage == "manifest":
        (ds.index.cache_path / "manifest.json").write_text("{")
    else:
        f.unlink()
    with pytest.warns(UserWarning, match="rebuilding"):
        again = tpslab.load_dataset(release, progress=False)
    assert not again.index.from_cache
    pd.testing.assert_frame_equal(again.parts, ds.parts)
    assert tpslab.load_dataset(release, progress=False).index.from_cache


def test_read_only_data_folder_caches_elsewhere(release, monkeypatch, tmp_path):
    real = index_mod._writable_dir
    monkeypatch.setattr(index_mod, "_writable_dir", lambda p: False if p == release / ".tpslab" else real(p))
    ds = tpslab.load_dataset(release, progress=False)
    assert release not in ds.index.cache_path.parents
    assert str(ds.index.cache_path).startswith(os.environ["TPSLAB_CACHE"])
    assert tpslab.load_dataset(release, progress=False).index.from_cache


def test_parallel_build_equals_serial(release, monkeypatch):
    serial = tpslab.load_dataset(release, progress=False, cache=False, workers=1)
    monkeypatch.setattr(index_mod, "PARALLEL_MIN_FILES", 0)
    monkeypatch.setattr(index_mod, "BATCH_FILES", 1)
    parallel = tpslab.load_dataset(release, progress=False, cache=False, workers=2)
    for t in ("frames", "humans", "parts"):
        pd.testing.assert_frame_equal(getattr(serial, t), getattr(parallel, t))


def test_strict_raises_lenient_reports(release):
    write_frame(release, "lunge", A, 5, '{"humans": [{"box": [1, 2, 3]}]}')
    write_frame(release, "lunge", A, 6, "{oops")
    with pytest.raises(AnnotationError) as e:
        tpslab.load_dataset(release, progress=False)
    assert "img_00005.json" in str(e.value) and "2 problems" in str(e.value)
    ds = tpslab.load_dataset(release, strict=False, progress=False)
    errors = [p for p in ds.problems if p.severity == "error"]
    assert sorted(os.path.basename(p.path) for p in errors) == ["img_00005.json", "img_00006.json"]
    assert 5 in ds.frames_of(A)["frame"].tolist() and 6 not in ds.frames_of(A)["frame"].tolist()


def test_unknown_names_are_kept_in_lenient_mode(release):
    write_frame(release, "lunge", A, 4, {"humans": [human([0, 0, 9, 9], [part("hip", [0, 0, 1, 1], "wobble")])]})
    ds = tpslab.load_dataset(release, strict=False, progress=False)
    assert "wobble" in ds.parts["state"].tolist()
    assert any("unknown part state 'wobble'" in p.message for p in ds.problems)


def test_single_nesting_and_stray_files(tmp_path):
    root = small_release(tmp_path / "r")
    write_frame(root, "lunge", "ddddddddddd_000004_000014", 1, {"humans": []}, nested=False)
    (root / "train_annotations" / "lunge" / A / A / "notes.txt").write_text("x")
    ds = tpslab.load_dataset(root, progress=False)
    assert ds.frames_of("ddddddddddd_000004_000014")["frame"].tolist() == [1]
    assert any(p.severity == "warning" and p.path.endswith("notes.txt") for p in ds.problems)


@pytest.mark.parametrize("flist", ["header3", "plain2"])
def test_flist_shapes_in_dataset(tmp_path, flist):
    ds = tpslab.load_dataset(small_release(tmp_path / "r", flist=flist), progress=False)
    assert ds.videos.set_index("video").loc[C, "num_frames"] == 30


@pytest.mark.parametrize("text,labels", [
    ("video,frames\nabc,10\nxyz,20\n", [None, None]),
    ("abc,10\nxyz,20\n", [None, None]),
    ("lunge,abc,10\npush_up,xyz,20\n", ["lunge", "push_up"]),
    ("class,video,frames\nlunge,abc,10\npush_up,xyz,20\n", ["lunge", "push_up"]),
    ("label\tname\tnum_frames\nlunge\tabc\t10\npush_up\txyz\t20\n", ["lunge", "push_up"]),
    ("abc 10\nxyz   20\n", [None, None]),
    ("num_frames;video\n10;abc\n20;xyz\n", [None, None]),
    ("lunge/abc.mp4,10\npush_up/xyz.mp4,20\n", ["lunge", "push_up"]),
])
def test_read_flist_sniffs_shapes(tmp_path, text, labels):
    f = tmp_path / "video_train_flist.csv"
    f.write_text(text)
    fl = read_flist(f)
    assert fl["video"].tolist() == ["abc", "xyz"] and fl["frames"].tolist() == [10, 20]
    assert [x if isinstance(x, str) else None for x in fl["label"]] == labels


@pytest.mark.parametrize("text,match", [("abc,ten\n", "not an integer"), ("a,b,c,1\n", "4 columns"),
                                        ("abc,-3\n", "negative")])
def test_read_flist_errors_name_the_file(tmp_path, text, match):
    f = tmp_path / "video_train_flist.csv"
    f.write_text(text)
    with pytest.raises(ValueError, match=match) as e:
        read_flist(f)
    assert str(f) in str(e.value)


def test_split_is_seeded_stratified_and_disjoint(tmp_path):
    videos = {("lunge" if i % 2 else "push_up", f"v{i:010d}_000000_000010"): {1: {"humans": []}} for i in range(20)}
    ds = tpslab.load_dataset(make_release(tmp_path / "r", videos), progress=False)
    train, val = ds.split_train_val(0.2, seed=3)
    assert set(train).isdisjoint(val) and len(train) + len(val) == 20
    labels = ds.videos.set_index("video")["label"]
    assert sorted(labels[val].value_counts().tolist()) == [2, 2]
    assert ds.split_train_val(0.2, seed=3) == (train, val)
    assert ds.split_train_val(0.2, seed=4) != (train, val)
    with pytest.raises(ValueError):
        ds.split_train_val(1.5)


def test_root_resolution(tmp_path, monkeypatch, release):
    monkeypatch.setenv("TPSLAB_DATA", str(release))
    assert tpslab.load_dataset(progress=False).root == release.resolve()
    monkeypatch.setenv("TPSLAB_DATA", str(tmp_path / "absent"))
    with pytest.raises(FileNotFoundError, match="TPSLAB_DATA"):
        tpslab.load_dataset(progress=False)
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("TPSLAB_DATA", str(tmp_path / "empty"))  # as a notebook pointed at an empty folder
    with pytest.raises(FileNotFoundError, match=r"empty is not a Kinetics-TPS release: no train_videos/"):
        tpslab.load_dataset(progress=False)


def test_large_tree_mode_notices_added_and_replaced_files(release, monkeypatch):
    monkeypatch.setattr(index_mod, "STAT_FILES_UP_TO_FOLDERS", 0)  # folder-level fingerprint
    tpslab.load_dataset(release, progress=False)
    assert tpslab.load_dataset(release, progress=False).index.from_cache
    f = release / "train_annotations" / "push_up" / B / B / "img_00002.json"
    tmp = f.with_suffix(".tmp")
    tmp.write_text(json.dumps({"humans": []}))
    os.replace(tmp, f)  # how editors and archive tools replace a file
    replaced = tpslab.load_dataset(release, progress=False)
    assert not replaced.index.from_cache and replaced.frames["num_humans"].tolist()[-1] == 0
    write_frame(release, "lunge", A, 11, {"humans": []})
    assert not tpslab.load_dataset(release, progress=False).index.from_cache
