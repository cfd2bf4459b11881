"""Streamlit pages and widgets. The only package that imports streamlit."""
