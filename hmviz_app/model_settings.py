"""Model settings in the app: one ``KEY=VALUE`` per line, as ``--set`` on the command line (``train``,
``ablate``), read by :func:`hmviz.models.parse_settings` and checked against the data's bins and marks
before anything runs. Used by the Train and Ablation pages."""

from __future__ import annotations

import dataclasses
from types import SimpleNamespace
from typing import Any

import streamlit as st

from hmviz.errors import HmvizError
from hmviz_app import state
from hmviz_app.text import escape_md, in_page_words


def model_settings(family: str, dataset, key: str, own_controls: dict[str, str], disabled: bool = False
                   ) -> tuple[dict[str, Any], Any, str | None]:
    """An expander with the settings box of ``family`` (kept per family under ``key``); returns
    ``(overrides, config, problem)``: the settings read, the config they give on ``dataset`` (the family's
    defaults when they do not give one) and, when they are wrong, the message to show (Markdown, the user's
    text escaped; training must not start). ``own_controls`` maps the settings that have a control of their
    own on the page to its label: a line for one of them is refused (it would be ignored)."""
    from hmviz.models import MODEL_REGISTRY, parse_settings

    config_cls = MODEL_REGISTRY[family].config_cls
    fields = [f for f in dataclasses.fields(config_cls) if f.name not in ("n_marks", "n_bins", *own_controls)]
    with st.expander("Model settings (architecture and training, as `--set` on the command line)"):
        text = st.text_area(
            "One setting per line, KEY=VALUE (empty: the family's defaults)", key=state.sticky(f"{key}_{family}", ""),
            placeholder="e.g. dropout=0.2", disabled=disabled,
            help=f"{family}'s settings, with their defaults: "
                 + ", ".join(f"{f.name}={f.default}" for f in fields if f.default is not dataclasses.MISSING)
                 + ". The model card records every value used.")
    try:
        overrides = parse_settings(family, [line.strip() for line in text.splitlines() if line.strip()])
        if clash := sorted(set(overrides) & set(own_controls)):
            raise HmvizError(f"{clash[0]} has its own control on this page: set it with {own_controls[clash[0]]}, not "
                             "in Model settings.")
        shape = {"n_marks": dataset.n_marks, "n_bins": dataset.n_bins}
        config = config_cls.from_dict({**shape, **overrides}, saved=False)
        if overrides:  # on PyTorch's meta device, in milliseconds: an oversized model is refused here, not in its job
            from hmviz.model_size import check_model_size

            check_model_size(family, {**shape, **overrides}, "Model settings")
        return overrides, config, None
    except HmvizError as exc:
        defaults = SimpleNamespace(**{f.name: f.default for f in dataclasses.fields(config_cls)
                                      if f.default is not dataclasses.MISSING})
        return {}, defaults, escape_md(in_page_words(str(exc)))
