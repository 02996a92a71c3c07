from django.dispatch import Signal

# Sent inside the transaction that records a response, so a receiver's writes
# (a follow-up for a detractor) commit or roll back with it.
# Arguments: response, created (False when the customer changed an earlier answer).
response_recorded = Signal()
