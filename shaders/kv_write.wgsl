// kv_write: not written yet
