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


def open_view(page: str, data, key: str) -> SavedView | None:
    """An "Open a saved view" panel on ``page`` (its uploader has the widget key ``key``): the view of a
    newly uploaded file once it passes :func:`read_view` on the data in use ``data`` and this app's models
    (the page then applies its choices and reruns), else None; a refused file is shown as an error."""
    import streamlit as st

    from hmviz.errors import HmvizError
    from hmviz_app import state

    with st.expander("Open a saved view"):
        upload = st.file_uploader("A view saved from this page (JSON)", type=["json"], key=key)
    if upload is None or st.session_state.get(f"_{key}_read") == (upload.name, upload.size):
        return None
    st.session_state[f"_{key}_read"] = (upload.name, upload.size)
    try:
        view = read_view(upload.getvalue(), upload.name, page, data.name, data.fingerprint,
                         [m.key for m in state.all_models()])
    except HmvizError as exc:
        state.show_error(exc)
        return None
    if view.model:
        state.select_model(view.model)
    return view


def save_view_button(view: SavedView, file_name: str, key: str, page_title: str, disabled_why: str = "") -> None:
    """A button that downloads ``view`` as ``file_name`` (JSON); ``disabled_why`` disables it and says why."""
    import streamlit as st

    st.download_button("Save this view (JSON)", data=view.to_json(), file_name=file_name, mime="application/json",
                       key=key, on_click="ignore", icon=":material/bookmark:", disabled=bool(disabled_why),
                       help=disabled_why or "A small file naming the data (by content), the model and the choices; "
                            f"open it on the {page_title} page of an hmviz holding the same data to see this view again.")
