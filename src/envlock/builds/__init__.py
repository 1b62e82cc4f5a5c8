"""Building locked sdists: their build dependencies, pinned at lock time, and the offline,
isolated PEP 517 build of each sdist into a wheel from the cache alone."""
