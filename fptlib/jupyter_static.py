"""A Jupyter server extension that serves bertviz's browser libraries from installed packages.

bertviz's views load require.js, d3 and jQuery from a CDN in the browser, so without internet they
stay blank. ``tools/setup.sh`` installs those three libraries from the npm registry into
``<venv>/share/fptlib/js/node_modules`` and enables this extension, which serves that folder at
``<base_url>fptlib/js/`` behind the server's authentication (its token or login, as for notebooks);
:func:`fptlib.viz.bertviz_views` points the views there first and at the
CDN second, so they draw offline in JupyterLab and online anywhere (Colab included).

To switch it on by hand, write ``{"ServerApp": {"jpserver_extensions": {"fptlib.jupyter_static": true}}}``
to ``<venv>/etc/jupyter/jupyter_server_config.d/fptlib.json`` (what ``tools/setup.sh`` does).
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

ROUTE = "fptlib/js"     # under the server's base_url
# the files bertviz needs, as the npm packages lay them out (tools/setup.sh installs these versions)
FILES = {"require": "requirejs/require.js", "d3": "d3/dist/d3.min.js", "jquery": "jquery/dist/jquery.min.js"}
NPM_PACKAGES = ("requirejs@2.3.6", "d3@5.7.0", "jquery@3.7.1")


def js_dir() -> Path:
    """Where the npm packages are: ``FPT_JS_DIR``, else ``<sys.prefix>/share/fptlib/js/node_modules``."""
    if os.environ.get("FPT_JS_DIR"):
        return Path(os.environ["FPT_JS_DIR"])
    return Path(sys.prefix) / "share" / "fptlib" / "js" / "node_modules"


def missing_files(folder: Path | None = None) -> list[str]:
    folder = js_dir() if folder is None else folder
    return [rel for rel in FILES.values() if not (folder / rel).is_file()]


def _jupyter_server_extension_points():
    return [{"module": "fptlib.jupyter_static"}]


def script_handler():
    """The handler class: Jupyter's own ``AuthenticatedFileHandler`` (a request without the
    server's token or login gets 403, as for any notebook file), limited to the three FILES."""
    from jupyter_server.base.handlers import AuthenticatedFileHandler
    from tornado import web

    class ScriptHandler(AuthenticatedFileHandler):
        @web.authenticated
        def get(self, path, include_body=True):
            if path not in FILES.values():
                raise web.HTTPError(404)
            return super().get(path, include_body=include_body)

    return ScriptHandler


def _load_jupyter_server_extension(serverapp) -> None:
    from jupyter_server.utils import url_path_join

    folder = js_dir()
    missing = missing_files(folder)
    if missing:
        serverapp.log.warning(f"fptlib: {', '.join(missing)} not found in {folder}; bertviz views will load "
                              f"them from the CDN (offline: run tools/setup.sh, or npm install --prefix "
                              f"{folder.parent} {' '.join(NPM_PACKAGES)})")
    web_app = serverapp.web_app
    pattern = url_path_join(web_app.settings["base_url"], ROUTE, "(.*)")
    web_app.add_handlers(".*$", [(pattern, script_handler(), {"path": str(folder)})])
    serverapp.log.info(f"fptlib: serving bertviz's scripts from {folder} at {pattern}")
