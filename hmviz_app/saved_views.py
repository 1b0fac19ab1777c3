"""A saved view (:class:`hmviz.views.report.SavedView`) read back on the page it was saved from: the file
is checked (format, page, the data in use by content, the model) before anything on the page changes.
Reading one never runs code from it."""

from __future__ import annotations

from hmviz.errors import DataError
from hmviz.views.report import SavedView


def read_view(raw: bytes, file_name: str, page: str, data_name: str, data_fingerprint: str,
              model_keys) -> SavedView:
    """The view in ``raw`` (an uploaded file called ``file_name``), refused with a message naming the file
    when it was saved on another page, on other data (by content), or with a model this app does not hold."""
    view = SavedView.from_json(raw, name=file_name)
    if view.page != page:
        raise DataError(f"{file_name}: is a view of the {view.page.replace('_', ' ')} page; open it there.")
    try:
        view.check_data(data_fingerprint, data_name)
    except DataError as exc:
        raise DataError(f"{file_name}: {exc}") from None
    if view.model is not None and view.model not in set(model_keys):
        raise DataError(f"{file_name}: names the model '{view.model}', which this app does not hold. Load or "
                        "train it on the Train page first (a session's models are not shared between users).")
    return view
