"""Ratio benchmarks of fkd_ops against the pure-TF code a user would write instead.

Run ``python benchmarks/run.py [--quick] [--json PATH]`` from the repository root.
"""
