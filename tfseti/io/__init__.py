"""Bottom layer shared by every stage: filesystems, the Kaggle-layout reader, the record schema,
and shard folders: reading them (``shards``: shard names and globs, ``manifest.json`` and the
completeness check ``open_shard_folder`` that every reader of shards makes) and writing them
(``shard_writer``: atomic publication locally or on ``gs://``, checksums, sizing, fold and shard
assignment, the manifest document; used by ``tfseti convert`` and ``tfseti pseudo``).

Data flows one way (Kaggle files -> ``tfseti convert`` -> tfseti.data -> tfseti.models ->
tfseti.train -> export/predict); everything those stages both need lives here, once, and this
package imports none of them.
"""
