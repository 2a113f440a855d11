"""From a Ray DAG (``f.bind(...)``) to a workflow graph: stable task ids, options, pickled calls.

Used on the driver (submission) and on workers (a continuation's sub-DAG). ``_pickle`` loads
graphs stored by earlier versions, whose classes lived at other module paths.
"""
