"""Drivers of many runs and the documentation pictures, run as modules:

    python -m experiments.ssl_table --labels 100 --seeds 1 2 3 --out DIR
    python -m experiments.ssl_ablation --epochs 20 --out DIR
    python -m experiments.ssl_blog_ablation --epochs 20 --out DIR
    python -m experiments.ssl_paths --iterations 30 --out DIR
    python -m experiments.doc_images --ssl RUN --compare DIR

``ssl_table`` and the two ablations run ``train_ssl.py`` configurations
(resumably, ``--jobs N`` at a time) and write a Markdown and a JSON table.
"""
