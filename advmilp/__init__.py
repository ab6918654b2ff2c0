"""advmilp: provably optimal adversarial examples for ReLU networks by MILP.

Importing this package never imports TensorFlow; only :mod:`advmilp.training` does,
and only inside the functions that train.
"""

__version__ = "0.1.0"
