"""The compiled reader of part files (tpslab/_partfile.c) against the msgspec reader it stands in front of:
where it reads a text, the columns are the msgspec reader's to the bit; elsewhere it leaves the text alone."""

import json
import random
import re
import shutil
import sys
from decimal import Decimal

import numpy as np
import pytest

from tpslab import challenge
from tpslab.challenge import compiled_reader, decode_part_file
from tps_cases import random_case, realistic_case

needs_reader = pytest.mark.skipif(compiled_reader() is None, reason="tpslab._partfile is not built here")

COLUMNS = ("videos", "video_frames", "frame_key", "frame_humans", "human_parts", "part_name", "form",
           "human_box_array", "part_verb", "part_box_array", "part_nverb", "proposal_verb", "part_nbox",
           "proposal_box_array")


def _msgspec_columns(text: bytes, form: str, monkeypatch):
    with monkeypatch.context() as m:
        m.setattr(challenge, "compiled_reader", lambda: None)
        return decode_part_file(text, "f.json", form)


def _differences(a, b) -> list:
    """The columns in which two PartColumns differ (arrays: dtype, shape and bytes)."""
    out = []
    for name in COLUMNS:
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            same = (isinstance(x, np.ndarray) and isinstance(y, np.ndarray) and x.dtype == y.dtype
                    and x.shape == y.shape and x.tobytes() == y.tobytes())
        else:
            same = x == y
        if not same:
            out.append(name)
    return out


def _text(part: dict) -> bytes:
    return json.dumps(part).encode()


def test_without_the_compiled_reader_the_columns_are_the_same(monkeypatch):
    """The pure-Python install (no C compiler) reads the same columns (the msgspec reader alone)."""
    _, gt_part, _, pred_part = realistic_case(n_videos=4, frames=6, seed=2, proposals=2)
    for part, form in ((gt_part, "single"), (pred_part, "list")):
        plain = _msgspec_columns(_text(part), form, monkeypatch)
        assert plain is not None and not _differences(plain, decode_part_file(_text(part), "f.json", form))


@needs_reader
def test_the_plain_form_is_read_by_the_compiled_reader(monkeypatch):
    _, gt_part, _, pred_part = realistic_case(n_videos=6, frames=8, seed=1, proposals=3)
    for part, form in ((gt_part, "single"), (pred_part, "list")):
        for text in (_text(part), json.dumps(part, indent=2).encode(), json.dumps(part, separators=(",", ":")).encode()):
            fast = challenge._compiled_columns(text, "f.json", form)
            assert fast is not None
            assert _differences(fast, _msgspec_columns(text, form, monkeypatch)) == []
            assert fast.human_box_array.flags.writeable and fast.human_box_array.flags.c_contiguous


def _number_texts(rng: random.Random) -> list:
    """Decimal texts of numbers, many of them hard: repr of random doubles, 15 to 25 digits, integers past
    2**53, points halfway between two doubles written to 17-19 digits, zeros of every sign and form."""
    texts = ["0", "-0", "0.0", "-0.0", "0e5", "-0E-5", "0.000", "1", "-1", "1e22", "1e23", "9007199254740993",
             "18446744073709551616", "123456789012345678901234567890", "4.9406564584124654e-324",
             "2.2250738585072014e-308", "1.7976931348623157e308", "0.1", "0.3", "1E+2", "1.5e-0", "1e-400",
             "2.5e-324", "1e-99999999999", "123456789012345678901234567890e-10", "0." + "0" * 400 + "1"]
    for _ in range(3000):
        x = rng.uniform(-2000, 2000) * 10 ** rng.randint(-8, 8)
        texts.append(repr(x))
        texts.append(f"{x:.{rng.randint(0, 20)}e}")
        digits = "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 25))).lstrip("0") or "0"
        point = rng.randint(0, len(digits))
        sign = rng.choice(["", "-"])
        texts.append(f"{sign}{digits[:point] or '0'}.{digits[point:] or '0'}" if point < len(digits) else sign + digits)
        # Halfway between a double and the next one up, to 17-19 significant digits and exactly.
        low = abs(x) or 1.0
        high = np.nextafter(low, np.inf)
        mid = (Decimal(low) + Decimal(float(high))) / 2
        for digits in (17, 18, 19, 40):
            texts.append(f"{mid:.{digits - 1}e}")
        texts.append(format(mid, "f")[:60])
    return [t for t in texts if np.isfinite(float(t))]


@needs_reader
def test_numbers_are_read_as_python_reads_them():
    """Every float is json.loads' number made a float: correctly rounded from its decimal text, an integer
    as float(int) ("-0" is 0.0, "-0.0" is -0.0)."""
    texts = _number_texts(random.Random(7))
    texts += ["0"] * (-len(texts) % 4)
    boxes = [texts[i:i + 4] for i in range(0, len(texts), 4)]
    humans = ",".join('{"box":[%s],"parts":{}}' % ",".join(b) for b in boxes)
    text = ('{"v":{"img_00001.json":{"humans":[%s]}}}' % humans).encode()
    cols = challenge._compiled_columns(text, "f.json", "single")
    assert cols is not None
    got = cols.human_box_array.reshape(-1)
    expected = np.array([float(json.loads(t)) for t in texts])
    wrong = np.flatnonzero(got.view(np.uint64) != expected.view(np.uint64))
    assert not len(wrong), [(texts[i], got[i], expected[i]) for i in wrong[:5]]


# Pieces spliced into files: escapes, non-ASCII, keys and fields twice, numbers past the float range,
# other JSON values, brackets and quotes out of place.
SPLICES = [b'\\', b'\\"', b'\\u00e9', "é".encode(), b'\xff', b'"box":[1,2,3,4],', b'"verb":"bend",', b'"x":null,',
           b'"humans":[],', b'"parts":{},', b'1e999', b'-0', b'01', b'1.', b'.5', b'+1', b'nan', b'true', b'{}', b'[]',
           b'null', b'[[1,2,3,4]]', b'{', b'}', b'[', b']', b',', b':', b'"', b' ', b'\n', b'\t', b'\x00',
           b'"head":{"box":[1,2,3,4],"verb":"bend"},', b'"img_00001.json":{"humans":[]},', b'"extra":{"a":[1,{"b":"c"}]},']


NUMBER = re.compile(rb"-?[0-9][0-9.eE+-]*")


def _kept_valid(text: bytes, rng: random.Random, numbers: list) -> bytes:
    """A change that keeps the file valid and plain: a number written another way, white space, a field
    nobody reads."""
    kind = rng.random()
    if kind < 0.5:
        spans = [m.span() for m in NUMBER.finditer(text)]
        if spans:
            a, b = rng.choice(spans)
            return text[:a] + rng.choice(numbers).encode() + text[b:]
    if kind < 0.75:
        at = rng.choice([i + 1 for i, c in enumerate(text) if c in b",:[{"] or [0])
        return text[:at] + rng.choice([b" ", b"\n", b"\t\r "]) + text[at:]
    starts = [i + 1 for i in range(len(text) - 1) if text[i:i + 2] == b'{"']
    at = rng.choice(starts or [0])
    return text[:at] + rng.choice([b'"x":null,', b'"extra":{"a":[1,{"b":"c"}],"t":true},', b'"n":-0.5e3,']) + text[at:]


def _mutated(text: bytes, rng: random.Random, numbers: list) -> bytes:
    for _ in range(rng.choice([1, 1, 2, 3])):
        at = rng.randrange(len(text) + 1)
        kind = rng.random()
        if kind < 0.5:
            text = _kept_valid(text, rng, numbers)
        elif kind < 0.75:
            text = text[:at] + rng.choice(SPLICES) + text[at:]
        elif kind < 0.85:
            text = text[:at] + text[at + rng.randint(1, 8):]
        elif kind < 0.95 and at < len(text):
            text = text[:at] + bytes([rng.randrange(256)]) + text[at + 1:]
        else:
            text = text[:at]
    return text


@needs_reader
@pytest.mark.parametrize("form", ["single", "list"])
def test_where_the_compiled_reader_reads_a_text_msgspec_reads_the_same(form, monkeypatch):
    """Random files and 2,000 mutations of them (bytes spliced in, cut, changed; files cut short): the
    compiled reader never crashes, and each text it reads gives msgspec's columns to the bit. Texts it
    leaves alone are msgspec's (or the walker's) to judge."""
    rng = random.Random(11 if form == "list" else 12)
    nrng = np.random.default_rng(3)
    numbers = _number_texts(random.Random(5))
    read = left = 0
    for case in range(40):
        _, gt_part, _, pred_part = random_case(nrng, n_videos=3, mode=form, floats=case % 2 == 0)
        base = _text(gt_part if form == "single" and case % 4 < 2 else pred_part)  # GT files are single
        for _ in range(50):
            text = _mutated(base, rng, numbers)
            fast = challenge._compiled_columns(text, "f.json", form)
            repeats = compiled_reader().parse(text, form == "list", repeats=True)
            if fast is None:
                left += 1
                continue
            assert repeats == [], text  # a text it reads holds no key twice
            read += 1
            plain = _msgspec_columns(text, form, monkeypatch)
            assert plain is not None, text
            assert _differences(fast, plain) == [], text
    assert read > 200 and left > 200, (read, left)  # both sides of the reader were exercised


@needs_reader
@pytest.mark.parametrize("text", [
    b'{"v":{"img_00001.json":{"humans":[]}},"v":{"img_00001.json":{"humans":[]}}}',  # a video twice
    b'{"v":{"img_00001.json":{"humans":[]},"img_00001.json":{"humans":[]}}}',  # a frame twice
    b'{"v":{"f":{"humans":[{"box":[1,2,3,4],"parts":{"head":{"box":[1,2,3,4],"verb":"a"},'
    b'"head":{"box":[1,2,3,4],"verb":"b"}}}]}}}',  # a part twice
    b'{"v":{"f":{"humans":[{"box":[1,2,3,4],"box":[1,2,3,4],"parts":{}}]}}}',  # a field twice
    b'{"v":{"f":{"humans":[{"box":[1,2,3,4],"parts":[{"name":"head","box":[1,2,3,4],"verb":"a"}]}]}}}',  # list
    b'{"v":{"f":{"humans":[{"box":[1,2,3,1e400],"parts":{}}]}}}',  # beyond the float range
    b'{"v":{"f":{"humans":[{"box":[1,2,3],"parts":{}}]}}}',  # three numbers
    b'{"v\\u00e9":{}}', '{"vé":{}}'.encode(),  # an escape, non-ASCII text
    b'\xef\xbb\xbf{}', b'{} {}', b'', b'[]',  # a BOM, text after the object, nothing, not an object
])
def test_what_the_compiled_reader_leaves_to_msgspec(text):
    assert challenge._compiled_columns(text, "f.json", "single") is None


@needs_reader
@needs_reader
def test_keys_held_twice_are_found_at_every_level_the_reader_reads():
    from tpslab.challenge import repeated_in_part_file

    box, part = "[1, 2, 3, 4]", '{"box": [1, 2, 3, 4], "verb": "bend"}'
    text = ('{"v": {"f": {"humans": [{"box": %s, "parts": {"head": %s, "hip": {"box": %s, "verb": "a", "verb": "b"},'
            ' "head": %s}, "parts": {}}], "humans": []}, "g": {"humans": []}, "f": {"humans": []}}}'
            % (box, part, box, part)).encode()
    assert challenge._compiled_columns(text, "f.json", "single") is None
    assert repeated_in_part_file(text) == ["v/f/humans[0].parts.hip.verb", "v/f/humans[0].parts.head",
                                           "v/f/humans[0].parts", "v/f/humans", "v/f"]
    assert repeated_in_part_file(text.replace(b'"verb": "b"', b'"verb": "\\u00e9"')) is None  # msgspec's text
    assert repeated_in_part_file(b'{"v": {"f": {"humans": []}}}') == []


def test_deep_unknown_fields_do_not_exhaust_the_stack():
    deep = b"[" * 200_000 + b"]" * 200_000
    text = b'{"v":{"f":{"humans":[],"extra":%b}}}' % deep
    assert challenge._compiled_columns(text, "f.json", "single") is None


def test_the_reader_is_built_where_a_compiler_is():
    """`pip install -e .` builds tpslab._partfile where a C compiler is at hand (it is optional elsewhere)."""
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler here")
    assert compiled_reader() is not None, f"tpslab._partfile is not built for {sys.executable}: pip install -e ."


@needs_reader
def test_more_distinct_strings_than_the_table_holds_are_left_to_msgspec():
    verbs = [f"verb{i}" for i in range(40_000)]
    parts = ",".join('"p%d":{"box":[1,2,3,4],"verb":"%s"}' % (i % 10, v) for i, v in enumerate(verbs[:10]))
    humans = ",".join('{"box":[1,2,3,4],"parts":{"head":{"box":[1,2,3,4],"verb":"%s"}}}' % v for v in verbs)
    text = ('{"v":{"img_00001.json":{"humans":[%s]}},"w":{"img_00001.json":{"humans":[{"box":[1,2,3,4],'
            '"parts":{%s}}]}}}' % (humans, parts)).encode()
    assert challenge._compiled_columns(text, "f.json", "single") is None
    cols = decode_part_file(text, "f.json", "single")
    assert cols is not None and cols.part_verb[:3] == verbs[:3] and len(cols.part_verb) == 40_010


@needs_reader
def test_two_files_read_at_once_in_two_threads(monkeypatch):
    """The reader lets go of the GIL (open_evaluation reads the ground truth in a thread): two texts read
    at once give the columns each gives alone."""
    import threading

    _, gt_part, _, pred_part = realistic_case(n_videos=40, frames=10, seed=4, proposals=2)
    texts = [(_text(gt_part), "single"), (_text(pred_part), "list")] * 2
    alone = [challenge._compiled_columns(t, "f.json", form) for t, form in texts]
    together = [None] * len(texts)

    def read(i):
        together[i] = challenge._compiled_columns(texts[i][0], "f.json", texts[i][1])

    threads = [threading.Thread(target=read, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(a is not None and _differences(a, b) == [] for a, b in zip(alone, together))


_OTHER_PATH = """
import importlib.util, sys
import pytest
spec = importlib.util.spec_from_file_location("tpslab._partfile", sys.argv[1])
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
from tpslab import challenge
challenge.compiled_reader = lambda: module
import test_partfile as t
t.test_numbers_are_read_as_python_reads_them()
for form in ("single", "list"):
    with pytest.MonkeyPatch.context() as m:
        t.test_where_the_compiled_reader_reads_a_text_msgspec_reads_the_same(form, m)
print("ok")
"""


@pytest.mark.slow
@needs_reader
def test_the_path_without_extended_precision(tmp_path):
    """Where long double has no 64-bit significand (Windows, macOS arm64, Linux aarch64), numbers the fast
    path cannot do exactly go to CPython's conversion: the reader built that way here reads the same."""
    import subprocess
    import sysconfig
    from pathlib import Path

    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        pytest.skip("no C compiler here")
    source = Path(challenge.__file__).with_name("_partfile.c")
    built = tmp_path / f"_partfile{sysconfig.get_config_var('EXT_SUFFIX')}"
    subprocess.run([compiler, "-O2", "-fPIC", "-shared", "-DTPSLAB_NO_EXTENDED", f"-I{sysconfig.get_paths()['include']}",
                    str(source), "-o", str(built)], check=True, capture_output=True)
    out = subprocess.run([sys.executable, "-c", _OTHER_PATH, str(built)], capture_output=True, text=True,
                         cwd=Path(__file__).parent)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_a_build_of_another_interface_is_not_used(monkeypatch):
    """A source tree updated without a rebuild keeps the old module: it is left unused (msgspec reads),
    not called with arguments it does not know."""
    import types

    import tpslab

    stale = types.SimpleNamespace(API=1, parse=None)
    monkeypatch.setitem(sys.modules, "tpslab._partfile", stale)
    monkeypatch.setattr(tpslab, "_partfile", stale, raising=False)
    challenge.compiled_reader.cache_clear()
    try:
        assert challenge.compiled_reader() is None
        _, gt_part, _, _ = realistic_case(n_videos=2, frames=3, seed=5)
        assert decode_part_file(_text(gt_part), "f.json", "single") is not None
    finally:
        challenge.compiled_reader.cache_clear()
