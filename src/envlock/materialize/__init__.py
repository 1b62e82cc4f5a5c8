"""Lock + target + cache -> an environment directory or a reproducible archive; verification."""
