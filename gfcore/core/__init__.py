"""The ground floor: errors, paths, names, the tag and metric vocabulary, interrupts and the code version.

Imports nothing of gfcore but gfcore.config; every other package may import it."""
