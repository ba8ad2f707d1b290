"""Segmentation of in-situ TEM movies (electrode, SEI, lithium, bubbles) and the
measurements they give (SEI thickness, lithium area, dendrites)."""
