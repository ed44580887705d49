"""crossgroup.crypto: keyed tokens, party keys and sealed packages, with fixed algorithms.

Public recipes: `tokens` (normalize + HMAC tokens), `keys` (key directories, registry,
rotation), `package` (seal / verify / open, replay ledger). Modules starting with `_` are
hazardous primitives used only by those recipes.
"""
