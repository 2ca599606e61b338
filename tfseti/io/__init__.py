"""Bottom layer shared by every stage: filesystems, the Kaggle-layout reader, the record schema,
and shard folders (``shards``: shard names and globs, ``manifest.json`` and the completeness check
``open_shard_folder`` that every reader of shards makes).

Data flows one way (Kaggle files -> tfrecords_tools -> tfseti.data -> tfseti.models ->
tfseti.train -> export/predict); everything those stages both need lives here, once, and this
package imports none of them.
"""
