"""``make demo`` stays green: the walkthrough runs in a scratch folder and every step holds."""

from functions.demo import DEMO_DIR, run_demo


def test_demo_walkthrough_passes(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert run_demo() == 0
    out = capsys.readouterr().out
    assert "demo passed" in out and "FAIL" not in out
    assert (tmp_path / DEMO_DIR / "crmsync.db").exists()
