"""DVC stage scripts. Importing this package pins the numeric kernels every stage computes with.

OpenBLAS and numpy pick their kernels by CPU (AVX2, AVX-512, ...), and those round the last
bits differently: the same seed then gives a model and predictions with other bytes on
another machine, and the committed dvc.lock no longer matches. Every stage runs as
`python -m stages.<name>`, which imports this file before numpy, so capping both at AVX2
here makes outputs identical on every x86-64 machine. Set the variables yourself to override.
"""

import os
import platform

if platform.machine().lower() in ("x86_64", "amd64"):
    os.environ.setdefault("OPENBLAS_CORETYPE", "Haswell")
    os.environ.setdefault("NPY_DISABLE_CPU_FEATURES", "X86_V4 AVX512_ICL AVX512_SPR")
