"""The model registry: servable pyfunc packaging, registration and the champion lifecycle."""
