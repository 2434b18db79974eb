"""`energyhub demo`: the whole system on embedded defaults, from a bare machine."""

from energyhub.demo.run import DemoOptions, run_demo

__all__ = ["DemoOptions", "run_demo"]
