"""Content items, runs, judgements and review queues: built in the auto-labeling issue."""
