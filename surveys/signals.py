from django.dispatch import Signal

# Sent inside the transaction that records a response, so a receiver's writes
# (a follow-up for a detractor) commit or roll back with it. Not sent when an
# answer is sent again unchanged.
# Arguments: response; created (False when the customer changed an earlier answer);
# changed, the field names of the answers that changed ("score", "comment", "q12").
response_recorded = Signal()
