// matvec: not written yet
