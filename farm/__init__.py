"""Engine Farm: a distributed build-and-benchmark farm for inference engines.

The ``farm`` package is the coordinator side (spec, database, store, queue,
reports, CLI). It never imports TensorRT, torch or CUDA; device code lives in
``workers`` and reaches the coordinator only through entry points and the
job table.
"""

__version__ = "0.1.0"
