"""Supply-chain checks of a lock: policy, licenses, vulnerabilities, inventories and SBOMs."""
