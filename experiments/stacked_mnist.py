"""The four-way comparison on Stacked-MNIST over seeds: the commands of
docs/RESULTS.md, now :mod:`experiments.four_way_seeds` with its default
data (``--data stacked-mnist``).

    python -m experiments.stacked_mnist --seeds 0 1 2 --jobs 2 \\
        --out result/stacked_mnist
"""
from experiments.four_way_seeds import main

if __name__ == '__main__':
    main()
