"""The command line: thin Typer commands that parse, call one service, render and exit."""
