"""Ray Tune search spaces over the PERK configuration: the ablations and ``run_space.py`` for your own."""
