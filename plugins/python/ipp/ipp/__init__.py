"""The IPP flow's modules (see app.py)."""

# The job record lives 7 days, like the DynamoDB item's TTL it replaces.
JOB_TTL_MS = 7 * 24 * 3_600_000
KV_BUCKET = "default"
# Larger lists belong in the automatic mode.
MAX_MOSTRADORES = 1_000
