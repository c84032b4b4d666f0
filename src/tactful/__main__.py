"""`python -m tactful ...` runs the command line, like the `tactful` script."""

from tactful.cli import app

app(prog_name="tactful")
