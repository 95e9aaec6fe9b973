"""``make demo`` stays green: the walkthrough runs in a scratch folder and every step
holds, on the kind sandbox and on the realistic one (``sandbox.realism``)."""

import pytest

from functions.demo import DEMO_DIR, run_demo


@pytest.mark.parametrize("profile", ["default", "realistic"])
def test_demo_walkthrough_passes(tmp_path, monkeypatch, capsys, profile):
    monkeypatch.chdir(tmp_path)
    assert run_demo(profile) == 0
    out = capsys.readouterr().out
    assert "demo passed" in out and "FAIL" not in out
    assert (tmp_path / DEMO_DIR / "crmsync.db").exists()
