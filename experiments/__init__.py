"""Experiment drivers built on ``train_ssl.py``: each one runs a set of
training runs (resumable, optionally several at a time) and writes a table.

    python -m experiments.ssl_table --labels 100 --seeds 1 2 3 --out DIR
    python -m experiments.ssl_ablation --epochs 20 --out DIR
    python -m experiments.ssl_paths --iterations 30 --out DIR
"""
