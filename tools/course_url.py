#!/usr/bin/env python
"""The course's public address, defined once (pyproject.toml, [project.urls] Repository), and
copied into every notebook's Colab badge and install cell and into the README.

Badges and install cells are pinned to the release tag ``v<version>`` (pyproject.toml's
[project] version): a Colab learner opens the notebooks of one release and installs that same
release, whose wheel carries the evidence records those notebooks show. Releasing: bump the
version, run ``--write``, commit, tag the commit ``v<version>`` and push the tag.

    .venv/bin/python tools/course_url.py                       # check: exit 1 and list what disagrees
    .venv/bin/python tools/course_url.py --write               # propagate pyproject's address
    .venv/bin/python tools/course_url.py --set https://github.com/you/fpt-course   # a fork: one command

Only GitHub addresses are supported (the Colab badge opens notebooks from GitHub).
"""
from __future__ import annotations

import argparse
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
URL_RE = re.compile(r"^https://github\.com/(?P<repo>[\w.-]+/[\w.-]+?)/?$")
# what the notebooks and the README contain (any owner/name), so a new address replaces the old one
BADGE_RE = re.compile(r"https://colab\.research\.google\.com/github/[\w.-]+/[\w.-]+/blob/[\w.-]+/notebooks/")
INSTALL_RE = re.compile(r"git\+https://github\.com/[\w.-]+/[\w.-]+?(@[\w.-]+)?(?=[\\\"#\s])")
README_RE = re.compile(r"`github\.com/[\w.-]+/[\w.-]+`")
PYPROJECT_RE = re.compile(r'^(Repository\s*=\s*")[^"]*(")', re.M)


def release_tag(root: Path = ROOT) -> str:
    """The git tag the badges and install cells pin: ``v`` + pyproject.toml's version."""
    return "v" + tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"]


def course_url(root: Path = ROOT) -> str:
    urls = tomllib.loads((root / "pyproject.toml").read_text())["project"].get("urls", {})
    url = urls.get("Repository")
    if not url or not URL_RE.match(url):
        raise ValueError(f"pyproject.toml [project.urls] Repository must be https://github.com/OWNER/NAME, got {url!r}")
    return url.rstrip("/")


def targets(root: Path = ROOT) -> list[Path]:
    return sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")) + [root / "README.md"]


def rewrite(text: str, url: str, tag: str) -> str:
    repo = URL_RE.match(url)["repo"]
    text = BADGE_RE.sub(f"https://colab.research.google.com/github/{repo}/blob/{tag}/notebooks/", text)
    text = INSTALL_RE.sub(f"git+{url}@{tag}", text)
    return README_RE.sub(f"`github.com/{repo}`", text)


def stale(root: Path = ROOT) -> list[str]:
    """Files whose badge, install cell or README mention disagrees with pyproject's address."""
    url, tag = course_url(root), release_tag(root)
    out = []
    for path in targets(root):
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".ipynb" and (not BADGE_RE.search(text) or not INSTALL_RE.search(text)):
            out.append(f"{path.name}: no Colab badge or no install cell")
        elif rewrite(text, url, tag) != text:
            out.append(f"{path.name}: points elsewhere than {url} at {tag}")
    return out


def write(root: Path = ROOT, url: str | None = None) -> list[Path]:
    if url is not None:
        if not URL_RE.match(url):
            raise ValueError(f"{url!r} is not https://github.com/OWNER/NAME")
        py = root / "pyproject.toml"
        text = py.read_text()
        if not PYPROJECT_RE.search(text):
            raise ValueError("pyproject.toml has no [project.urls] Repository line to change")
        py.write_text(PYPROJECT_RE.sub(lambda m: m[1] + url.rstrip("/") + m[2], text, count=1))
    url, tag = course_url(root), release_tag(root)
    changed = []
    for path in targets(root):
        text = path.read_text(encoding="utf-8")
        new = rewrite(text, url, tag)
        if new != text:
            path.write_text(new, encoding="utf-8")
            changed.append(path)
    return changed


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="copy pyproject's address into notebooks and README")
    ap.add_argument("--set", metavar="URL", help="change the address in pyproject.toml, then --write")
    args = ap.parse_args(argv)
    if args.write or args.set:
        for path in write(url=args.set):
            print(f"updated {path.relative_to(ROOT)}")
        print(f"course address: {course_url()} at {release_tag()}")
        return 0
    problems = stale()
    for line in problems:
        print(line)
    print(f"course address: {course_url()} at {release_tag()} ({'all agree' if not problems else f'{len(problems)} files disagree'})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
