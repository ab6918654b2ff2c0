"""advmilp: provably optimal adversarial examples for ReLU networks by MILP.

Importing this package never imports TensorFlow; only :mod:`advmilp.nn.training` does,
and only inside the functions that train.
"""

import os as _os

# One solve per core: numpy's OpenBLAS would otherwise start a thread per core in every worker
# process, and two workers on two cores then fight over them (measured on DNN1 with the other core
# busy: 0.40 s per instance with one BLAS thread, 0.42-0.46 s with two).  Set before numpy loads;
# an explicit OPENBLAS_NUM_THREADS in the environment wins.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

__version__ = "0.1.0"
