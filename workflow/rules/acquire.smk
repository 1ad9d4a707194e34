# acquire stage: rules are being written.
def acquire_targets():
    return []
