"""The local package cache: content-addressed artifacts, unpacked wheels, built sdists."""
