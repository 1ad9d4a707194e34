# evaluate stage: rules are being written.
def evaluate_targets():
    return []
