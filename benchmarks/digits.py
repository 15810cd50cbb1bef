"""scikit-learn's digits (bundled, no download) for the dendrite benchmarks and their CI-sized tests."""

from __future__ import annotations

import numpy as np


def digits_split(test: int = 450, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(train x, test x, train y, test y): 64 features standardised by one mean and one std over all pixels
    (as MNIST's (0.1306, 0.3081)), so a permuted task keeps a distinct mean input (a per-feature standardisation
    would make every task's mean the zero vector and the prototype contexts uninformative)."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    x, y = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x / 16, y, test_size=test, random_state=seed)
    mean, std = x_train.mean(), x_train.std()
    return ((x_train - mean) / std).astype(np.float32), ((x_test - mean) / std).astype(np.float32), y_train, y_test
