"""Catalog fragments: each module defines MESSAGES = {key: (english, chinese)}."""
