"""modfit inside other people's training code. `modfit.integrations.transformers`: the `auto` stopping
rule and a canary's ASR in a user's own `transformers.Trainer` (imports transformers when imported)."""
