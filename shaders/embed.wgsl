// embed: not written yet
