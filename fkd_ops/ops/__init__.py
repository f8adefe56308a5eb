"""The ops layer: loading the compiled libraries, the TensorFlow op wrappers with
their gradients (:mod:`~fkd_ops.ops.wrappers`), their pure-TF twins
(:mod:`~fkd_ops.ops.reference`) and the normalization settings they share.

Importing this package costs nothing: TensorFlow is imported by the modules
that need it, and the op library is loaded when the first op runs.
"""
