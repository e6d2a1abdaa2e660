"""The version stamp never records another repository's commit as xbarsim's."""
import subprocess

from xbarsim.experiments import provenance


def test_only_xbarsim_own_checkout_counts(tmp_path):
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "someone-elses-project"\n')
    assert not provenance._is_xbarsim_checkout(tmp_path)
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "xbarsim"\n')
    assert provenance._is_xbarsim_checkout(tmp_path)
    assert not provenance._is_xbarsim_checkout(tmp_path / "missing")


def test_site_packages_inside_a_user_repository_gets_no_commit(tmp_path, monkeypatch):
    # a user's git repository whose venv holds an installed xbarsim (no pyproject beside the package)
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    pkg = tmp_path / "venv" / "site-packages" / "xbarsim"
    pkg.mkdir(parents=True)
    monkeypatch.setattr(provenance, "_ROOT", pkg)
    provenance.xbarsim_version.cache_clear()
    try:
        assert "+g" not in provenance.xbarsim_version()
    finally:
        provenance.xbarsim_version.cache_clear()
