"""Reaction-front tracking in in-situ movies (nanowires, particles, lattice images) and kinetics."""
__all__: list[str] = []
