"""Blueprints of the emulated Pisano API, one per resource."""
