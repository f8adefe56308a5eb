"""The training layer: a run's settings and folder (:mod:`~fkd_ops.train.config`,
no TensorFlow), training (:mod:`~fkd_ops.train.training`), the run's state on disk
for --resume (:mod:`~fkd_ops.train.checkpoints`), the multi-worker loop
(:mod:`~fkd_ops.train.multiworker`), evaluation in pixels
(:mod:`~fkd_ops.train.evaluation`), pictures (:mod:`~fkd_ops.train.plots`), and
on Apache Spark: the session and multi-worker training over barrier tasks
(:mod:`~fkd_ops.train.spark`) and the hyperparameter search
(:mod:`~fkd_ops.train.tune`).
"""
