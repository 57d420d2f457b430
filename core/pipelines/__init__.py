"""Whole jobs as pure functions: parameters and inputs in, a HumanAsset out.

The server wraps each in a queue, a cache of loaded models and a Progress that streams to clients;
tests and scripts call them directly.
"""
