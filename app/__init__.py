"""attnscope web service: a FastAPI app serving translations and every attention map of the model."""
