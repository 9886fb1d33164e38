"""The ground floor: errors, paths, the tag and metric vocabulary, interrupts, the code version and the garbage
collector's policy at start-up. Imports nothing of gfcore; every other package may import it."""
