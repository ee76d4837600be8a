#!/usr/bin/env bash
# Build the native forwarder backend against the libtritonserver of the nvidia-pytriton
# wheel: build.sh OUT_DIR  ->  OUT_DIR/forwarder/libtriton_forwarder.so
# Needs g++ (not needed by `make test`; only perf/bench/router_overhead.py --native uses it).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:?usage: build.sh OUT_DIR}"
python="${PYTHON:-$here/../../../.venv/bin/python}"
libs="$("$python" -c 'import nvidia_pytriton.libs, os; print(os.path.dirname(nvidia_pytriton.libs.__file__))' 2>/dev/null \
  || "$python" -c 'import pytriton, pathlib; print(pathlib.Path(pytriton.__file__).parent.parent / "nvidia_pytriton.libs")')"
lib="$(cd "$libs" && ls libtritonserver*.so | head -n 1)"
mkdir -p "$out/forwarder"
g++ -std=c++17 -O2 -Wall -Wextra -shared -fPIC "$here/forwarder.cc" -o "$out/forwarder/libtriton_forwarder.so" \
  -L"$libs" -l:"$lib" -Wl,-rpath,"$libs"
echo "$out/forwarder/libtriton_forwarder.so"
