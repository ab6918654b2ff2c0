"""advmilp: provably optimal adversarial examples for ReLU networks by MILP.

The Python API (see `advmilp.api`)::

    import advmilp
    net = advmilp.load_network("dnn1")
    result = advmilp.attack(net, 0)          # test image 0, targeted, the exact `tight` method
    result.status, result.objective, result.verified

Importing this package is light: it never imports TensorFlow, PuLP or HiGHS (the API is loaded on
first use), and it does not change the environment.
"""

__version__ = "0.1.0"
__all__ = ["AttackResult", "attack", "load_network", "__version__"]

_API = ("AttackResult", "attack", "load_network")


def __getattr__(name: str):
    if name in _API:
        from advmilp import api

        return getattr(api, name)
    raise AttributeError(f"module 'advmilp' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_API))
