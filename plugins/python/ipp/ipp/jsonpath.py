"""Reading nested JSON the way serde_json's `doc["a"]["b"]` does: a missing key or a
wrong type is None, never an exception."""


def at(doc, *path):
    for key in path:
        if isinstance(key, int):
            doc = doc[key] if isinstance(doc, list) and -1 < key < len(doc) else None
        else:
            doc = doc.get(key) if isinstance(doc, dict) else None
    return doc


def text(doc, *path):
    v = at(doc, *path)
    return v if isinstance(v, str) else None


def unsigned(doc, *path):
    v = at(doc, *path)
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else None
