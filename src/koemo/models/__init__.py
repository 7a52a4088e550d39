"""One module per base model: its network and the fold inputs its training stage builds."""
