"""The command line, ``hmviz <verb>`` / ``python -m hmviz <verb>``.

* :mod:`hmviz.cli.main`: the entry (:func:`hmviz.cli.main.main`): one parser, errors as one ``error:`` line.
* :mod:`hmviz.cli.registry`: the verb registry, below the verbs (:func:`~hmviz.cli.registry.verb`).
* one module per group of verbs: ``data`` (validate, convert), ``tracks`` (build-table), ``model``
  (train, evaluate, models, baselines), ``explain``, ``ablate``, ``perturb``, ``study``.
"""
