"""Dataset stage (SPEC 2-5): map/label pairs from acquired entries.

* :mod:`~cryosse.dataset.structure`: a model as arrays (residues, CA, backbone, chain atoms);
* :mod:`~cryosse.dataset.dssp`: per-residue helix/sheet/other with pydssp or mkdssp;
* :mod:`~cryosse.dataset.chains`: chain selection (size, within-entry dedup, a helix);
* :mod:`~cryosse.dataset.quality`: helix cylinder score, |precision - recall|, bins;
* :mod:`~cryosse.dataset.crop`: the padded box, its crop, the contour level;
* :mod:`~cryosse.dataset.labels`: voxel labels from the nearest CA;
* :mod:`~cryosse.dataset.pairs`: one pair (its checks, files and record);
* :mod:`~cryosse.dataset.entry`: one entry's pairs, and the dataset tables of all entries;
* :mod:`~cryosse.dataset.cli`: ``cryosse build-pair``.
"""
