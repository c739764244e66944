# The packaged default: no custom whitelist lambdas.
whitelist_rules: list[dict] = []
