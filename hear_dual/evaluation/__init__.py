"""`hear-dual evaluate` and `hear-dual make-task`, one concern per module.

    tasks       HEAR task folders (hearpreprocess's layout): read, check, fold rotations
    embeddings  heareval's embedding step, cached in chunks (resumable)
    events      frames <-> events: frame targets, median filter, thresholds, minimum duration
    scores      heareval's scores: top-1, mAP, d', AUC, event onset F-measure, segment error rate
    protocol    heareval's downstream MLP: grid, early stopping, seeds, row order
    run         one module on one task, end to end
    report      results JSON, markdown tables, event plots
    maketask    a labelled folder or audio + events CSV -> a HEAR task folder
    models      what is evaluated: a module by import name, or a named reference
    labelled    the shallow-probe evaluation on labelled folders (`--task`, FSDD presets)

docs/guide/evaluate.md lists every place where the protocol differs from heareval 2021.1.3.
"""
