"""Semi-supervised MNIST with a feature-matching GAN (Salimans et al. 2016,
section 5): data sources and the wiring of one run."""
