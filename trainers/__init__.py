"""Training and evaluation of one model: data, prompts, proxy CoIT run, final MuIT run, alignment."""
