"""`python -m energyhub` runs the `energyhub` command."""

from energyhub.cli import app

app()
