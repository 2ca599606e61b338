"""Bottom layer shared by every stage: filesystems, the Kaggle-layout reader, the record schema.

Data flows one way (Kaggle files -> tfrecords_tools -> tfseti.data -> tfseti.models ->
tfseti.train -> export/predict); everything those stages both need lives here, once, and this
package imports none of them.
"""
