#!/usr/bin/env bash
# The checks that need a GPU (issue 13, "any device"), in one run: the CUDA tests (tests/test_device.py; skipped
# where there is no GPU), the float64 torch = JAX agreement with JAX on its default device (the GPU where JAX has
# one), the engine benchmark's rows with torch on the GPU (JAX rows on JAX's default device), the circuits on named
# axes against torch.nn there, and the GPU's table of dense against CSR products (ACCELERATOR_DENSE_CELLS).
#
#   bash benchmarks/device_check.sh [log folder]      (PYTHON names the interpreter; python3 by default)
#
# It needs torch with CUDA, JAX, and circuitdsl's own dependencies importable (lark, pydantic, google-re2,
# networkx, scipy; for the worm, cect or a circuitdsl cache holding its data: CIRCUITDSL_CACHE).  A failing test
# does not stop the benchmark; the exit status is that of the tests.
set -uo pipefail
logs=${1:-.}
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
$python -c "import torch, jax; print('torch', torch.__version__, torch.cuda.get_device_name(), '| jax',
jax.__version__, jax.devices())"
$python -m pytest -q -p no:cacheprovider tests/test_device.py tests/test_engine_dtype.py 2>&1 |
  tee "$logs/device_tests.log"
status=$?
for rows in "--only worm" "--only fly" "--only jax" "--only ncap" "--only ncap --compile"; do  # one process each:
  # a failing row does not hide the others
  $python -m benchmarks.engine --device cuda --rounds 5 $rows 2>&1 | tee -a "$logs/device_engine.log"
done
$python -m benchmarks.axes --device cuda --rounds 5 2>&1 | tee "$logs/device_axes.log"
$python -m benchmarks.lowerings --device cuda 2>&1 | tee "$logs/device_lowerings.log"
exit $status
