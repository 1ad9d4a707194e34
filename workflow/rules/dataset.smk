# dataset stage: rules are being written.
def dataset_targets():
    return []
