"""`koemo check`: what params.yaml will need (data, encoders, machine), checked in seconds."""
