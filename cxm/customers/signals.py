from django.dispatch import Signal

# Sent once a new interaction is committed (not for a retry that finds it
# recorded), so a higher app can act on it: surveys invites after a purchase.
# A receiver that fails, or a process that dies before it runs, loses nothing a
# receiver cannot catch up on from the interactions table (surveys sweeps it).
# Arguments: interaction.
interaction_recorded = Signal()
