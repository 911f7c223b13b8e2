"""bertviz offline: the views ask fptlib's Jupyter server extension for their scripts first."""
import re
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from fptlib import jupyter_static
from fptlib.viz import CDN_REQUIRE, bertviz_views, offline_bertviz

pytest.importorskip("bertviz")


@pytest.fixture(scope="module")
def views():
    torch.manual_seed(0)
    attn = torch.softmax(torch.randn(2, 1, 3, 6, 6), dim=-1)     # 2 layers, 1 example, 3 heads, 6 tokens
    return bertviz_views(attn, [str(i) for i in range(6)])


def test_views_load_scripts_from_the_server_first_then_the_cdn(views):
    for view in views:
        html = view.data
        assert f'<script src="{CDN_REQUIRE}">' not in html                 # no hard CDN dependency
        assert "local + 'requirejs/require.js'" in html and f"'{CDN_REQUIRE}'" in html   # local, then CDN
        paths = re.search(r"require\.config\(\{paths: (.*)\}\);", html).group(1)
        assert "local + 'd3/dist/d3.min'" in paths and "local + 'jquery/dist/jquery.min'" in paths
        assert "cdnjs.cloudflare.com/ajax/libs/d3/" in paths                 # the CDN stays as the fallback
        assert html.count("require.config(") == 1                           # bertviz's own config removed
        assert "requirejs(['jquery', 'd3']" in html                          # bertviz's drawing code kept


def test_weights_are_rounded_so_outputs_stay_small(views):
    numbers = re.findall(r"\d\.\d+", views[0].data.split('"attention"', 1)[1].split("root_div_id")[0])
    assert numbers and all(len(x.split(".")[1]) <= 3 for x in numbers)


def test_unexpected_bertviz_html_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="pin bertviz or update"):
        offline_bertviz("<div>no scripts here</div>")


def test_server_extension_serves_the_npm_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FPT_JS_DIR", str(tmp_path))
    added, warned = [], []
    app = SimpleNamespace(web_app=SimpleNamespace(settings={"base_url": "/base/"},
                                                  add_handlers=lambda host, handlers: added.extend(handlers)),
                          log=SimpleNamespace(warning=warned.append, info=lambda msg: None))
    jupyter_static._load_jupyter_server_extension(app)
    (pattern, handler, kwargs), = added
    assert pattern == "/base/fptlib/js/(.*)" and Path(kwargs["path"]) == tmp_path
    assert warned and "npm install" in warned[0]            # nothing installed there: says how to get it
    for rel in jupyter_static.FILES.values():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("//")
    assert jupyter_static.missing_files() == []
