# The packaged default: no triggers.
triggers: list[dict] = []
