# split stage: rules are being written.
def split_targets():
    return []
