"""The scenarios that ship with weir: TOML files in this folder (see `weir list`)."""
