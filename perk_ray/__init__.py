"""perk-ray: PERK (long-context reasoning as parameter-efficient test-time learning) on Ray."""
