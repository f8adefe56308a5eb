"""The data layer: Kaggle's files in and out (:mod:`~fkd_ops.data.kaggle_files`), the
synthetic faces (:mod:`~fkd_ops.data.synthetic`, drawn by
:mod:`~fkd_ops.data.face_drawing` from :mod:`~fkd_ops.data.face_shape_model`) and the
built-in set made of them (:mod:`~fkd_ops.data.builtin`), train/validation splits
(:mod:`~fkd_ops.data.splits`) and the tf.data input pipeline
(:mod:`~fkd_ops.data.pipeline`, the only module here that needs TensorFlow).
"""
