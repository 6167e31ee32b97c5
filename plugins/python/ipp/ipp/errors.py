"""The errors the IPP endpoints answer with: a status, an error name and a message."""


class HttpError(Exception):
    def __init__(self, status: int, error: str, message: str, extra=None):
        super().__init__(message)
        self.status = status
        self.error = error
        self.message = message
        self.extra = extra or {}

    def body(self) -> dict:
        body = {"error": self.error, "message": self.message}
        body.update(self.extra)
        return body

    @classmethod
    def from_host(cls, e) -> "HttpError":
        """A failed host call: a 500 naming the host's error, as the Rust plugin answers."""
        f = e.to_failure()
        return cls(500, "InternalError", f"{f.error}: {f.cause}")
