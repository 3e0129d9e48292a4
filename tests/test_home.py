from pathlib import Path

import pytest

from tpslab import home, synthetic


def test_cache_home_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("TPSLAB_CACHE", str(tmp_path / "c"))
    assert home.cache_home() == (tmp_path / "c").resolve()
    monkeypatch.delenv("TPSLAB_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert home.cache_home() == (tmp_path / "xdg" / "tpslab").resolve()


def test_root_resolution_order(monkeypatch, tmp_path):
    calls = []

    def fake_mini(progress=True):
        calls.append(progress)
        return tmp_path / "mini"

    monkeypatch.setattr(synthetic, "ensure_mini", fake_mini)
    (tmp_path / "arg").mkdir()
    (tmp_path / "env").mkdir()
    monkeypatch.setenv("TPSLAB_DATA", str(tmp_path / "env"))
    assert home.resolve_root(tmp_path / "arg") == (tmp_path / "arg").resolve()  # argument first
    assert home.resolve_root() == (tmp_path / "env").resolve()  # then $TPSLAB_DATA
    assert calls == []
    monkeypatch.delenv("TPSLAB_DATA")
    assert home.resolve_root(progress=False) == tmp_path / "mini"  # then the mini dataset
    assert calls == [False]


def test_missing_roots_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path / "nope")):
        home.resolve_root(tmp_path / "nope")


def test_the_default_mini_dataset_is_generated_once_and_loads(monkeypatch):
    """The fallback with the real generator (tiny preset to stay fast)."""
    import tpslab

    monkeypatch.setattr(synthetic, "ensure_mini",
                        lambda progress=True, _real=synthetic.ensure_mini: _real(preset="tiny", progress=progress))
    ds = tpslab.load_dataset(progress=False)
    assert Path(ds.root).is_dir() and len(ds.parts) > 0
    assert tpslab.load_dataset(progress=False).root == ds.root
