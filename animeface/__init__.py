"""The blog's first experiment: a DCGAN on anime faces in four variants
(DCGAN, + feature matching, + minibatch discrimination, + both).

Commands (each ``python -m animeface.<name> --help``):

* ``build_dataset`` -- crop faces from illustrations into a folder of PNGs;
* ``emoji`` -- face images from the emoji-datasource npm packages;
* ``analogy`` -- interpolation grids from a generator snapshot;
* ``compare`` -- train the four variants and write the comparison;
* ``evaluate`` -- the collapse metrics of one run.

Training itself is ``train_dcgan.py`` at the repository root.  This package
is unrelated to the PyPI face detector of the same name; see
:mod:`animeface.detector`.
"""
