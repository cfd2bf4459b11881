"""The explainer chat (issue #6): answers from the vetted bank only. See chat.py."""
