"""The course: experiments (``reproduce``, ``sweep``), figures, widgets, exercise checkers and the
student notebooks. Depends on every other part; nothing depends on it."""
