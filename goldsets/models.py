"""Golden sets: built in the golden-dataset issue."""
