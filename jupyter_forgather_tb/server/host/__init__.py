"""The machine: control groups, usage, /proc, listeners, local transport, run directories."""
