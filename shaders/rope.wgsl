// rope: not written yet
