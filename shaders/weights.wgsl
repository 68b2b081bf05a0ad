// weights: not written yet
