"""Corpus studies of a served model, run through the model interface (backends.interface) only."""
