"""Old experiment folders: the registry that maps them to sites, scanning, listing and wrapping their scripts."""
