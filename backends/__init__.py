"""Translation models behind one interface (backends.interface): the built-in transformer and Hugging Face checkpoints."""
