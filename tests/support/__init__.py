"""Helpers shared by test packages: private services and the simulated field of system tests."""
