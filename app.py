"""hmviz app: the router. ``streamlit run app.py``.

One page per task in ``pages/``; this file only sets up navigation and the shared sidebar (the
current dataset and model, running jobs, the figure download format).
"""

from hmviz.runtime import configure_openmp
from hmviz_app.timing import clock

_run_started = clock()  # HMVIZ_PAGE_TIMES: each run's time from here (hmviz_app/timing.py)

configure_openmp()  # before anything imports torch: OpenMP reads its wait policy when torch loads it

import streamlit as st  # noqa: E402

from hmviz_app import jobs, layout, state, timing  # noqa: E402
from hmviz_app.text import escape_md  # noqa: E402

st.set_page_config(page_title="hmviz: why is this gene expressed?", page_icon=":material/genetics:", layout="wide")
layout.fit_text()  # long gene names and numbers wrap instead of being cut (hmviz_app/layout.py)

PAGES = [
    st.Page("pages/data.py", title="Data", icon=":material/dataset:", url_path="data", default=True),
    st.Page("pages/train.py", title="Train", icon=":material/model_training:", url_path="train"),
    st.Page("pages/evaluate.py", title="Evaluate", icon=":material/analytics:", url_path="evaluate"),
    st.Page("pages/gene_pairs.py", title="Gene pairs", icon=":material/compare_arrows:", url_path="gene_pairs"),
    st.Page("pages/gene_view.py", title="Gene view", icon=":material/timeline:", url_path="gene_view"),
    st.Page("pages/heatmap.py", title="Heatmap", icon=":material/view_list:", url_path="heatmap"),
    st.Page("pages/attributions.py", title="Attributions", icon=":material/grid_on:", url_path="attributions"),
    st.Page("pages/edit_marks.py", title="Edit marks", icon=":material/edit_note:", url_path="edit_marks"),
    st.Page("pages/attention.py", title="Attention", icon=":material/visibility:", url_path="attention"),
    st.Page("pages/ablation.py", title="Ablation", icon=":material/filter_alt:", url_path="ablation"),
]


page = st.navigation(PAGES)
jobs.page_shown()  # a browser on this machine draws the page before training takes the CPU back
state.apply_model_param()

with st.sidebar:
    data = state.current_data()
    st.markdown(f"**Dataset**  \n{data.shown_name}  \n:gray[{data.describe()}]")
    models = state.all_models()
    if models:
        current = state.current_model()
        labels = {m.key: m.label for m in models}
        st.session_state["model_select"] = current.key
        st.selectbox("Model", list(labels), format_func=labels.__getitem__, key="model_select",
                     on_change=lambda: state.select_model(st.session_state["model_select"]),
                     help="Bundled models come with hmviz; models you train here are listed too (Train page).")
        if not state.fits(current, data):
            st.caption(f":orange[This model does not fit the current dataset (cells, marks or window).] "
                       f"{state.misfit_advice(data)}")
    else:
        st.info("No model yet: the bundled models are missing. Train one on the Train page.")
    for job in jobs.jobs().values():
        if job.queued:
            st.caption(f":blue[{escape_md(job.title)}: waiting, number {job.position} in the queue]")
        elif job.running:
            st.caption(f":blue[{escape_md(job.title)}: running for {job.seconds:.0f} s]")
    st.radio("Figure downloads", ["png", "svg"], horizontal=True, key=state.sticky("image_format", "png"),
             format_func=str.upper, help="The camera button above each figure saves it in this format.")

with timing.timed(page.url_path or "data", since=_run_started):
    page.run()
state.prewarm()
