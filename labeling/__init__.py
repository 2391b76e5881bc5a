"""driftloop.labeling: the Argilla side of the loop (dataset schema, push, sync, aggregation,
and the embedded Argilla server launcher). It calls the platform; the platform never calls it.
"""
