"""attnscope's English→Japanese transformer: architecture, tokenization, decoding, training."""
