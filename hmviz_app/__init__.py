"""The Streamlit app's session helpers (the library, ``hmviz``, never imports streamlit)."""
